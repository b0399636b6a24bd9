package main

import "errors"

const programName = "nlb-guard-healthcheck"

const (
	modeTCP  = "tcp"
	modeHTTP = "http"
)

const (
	defaultIntervalMs = 1000
	// Fast enough that a test or an impatient operator sees the change, slow enough to stay idle;
	// the NLB itself probes every 5–300 s (HealthCheckIntervalSeconds).
	minIntervalMs = 10
	maxIntervalMs = 60_000
)

const usage = `Usage: nlb-guard-healthcheck --port P [--port Q]... [options]

Answers an AWS NLB's TCP or HTTP health check for a UDP application in the same pod: a port counts
as up while a UDP socket the load balancer can reach is bound to it (the wildcard or a non-loopback
address, not connected), read from /proc/net/udp and /proc/net/udp6.

Options:
  --port P          UDP port to answer for (1-65535); repeat for more ports (required)
  --mode tcp|http   tcp: listen on TCP port P while UDP port P is bound (default)
                    http: GET on --http-port answers 200 when every port is bound, else 503
  --http-port H     HTTP port in http mode (default: the first --port)
  --interval-ms N   how often to look at the UDP sockets, 10-60000 (default 1000)
  --proc-root DIR   where procfs is mounted (default /proc)
  -h, --help        print this help
`

type options struct {
	// UDP ports to answer for; in tcp mode each is also the TCP port the health check connects to.
	ports    []int
	mode     string
	httpPort int
	interval duration
	// Where procfs is mounted; net/udp and net/udp6 are read under it.
	procRoot string
}

var errHelp = errors.New("help")

// parseArgs takes GNU-style options as `nlb-guard healthcheck` did: `--name value`, `--name=value`,
// repeated --port. The flag package is not used: its errors and `-h` handling differ, and it would
// bring fmt and reflection into a binary whose size is its memory.
func parseArgs(args []string) (options, error) {
	var ports []string
	values := map[string]string{}
	help := false
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "-h" || arg == "--help" {
			help = true
			continue
		}
		if len(arg) < 3 || arg[:2] != "--" {
			return options{}, errors.New("unexpected argument " + quote(arg) + ": options start with --")
		}
		name, value, inline := cut(arg[2:], '=')
		switch name {
		case "port", "mode", "http-port", "interval-ms", "proc-root":
		default:
			return options{}, errors.New("unknown option " + quote("--"+name))
		}
		if !inline {
			if i+1 >= len(args) {
				return options{}, errors.New("option --" + name + " needs a value")
			}
			i++
			value = args[i]
		}
		if name == "port" {
			ports = append(ports, value)
		} else {
			values[name] = value
		}
	}
	// After the loop: an unknown option wins over --help.
	if help {
		return options{}, errHelp
	}

	opts := options{mode: modeTCP, interval: defaultIntervalMs * millisecond, procRoot: "/proc"}
	for _, text := range ports {
		port, ok := integerIn(text, 1, 65535)
		if !ok {
			return options{}, errors.New("--port must be an integer from 1 to 65535, got " + quote(text))
		}
		if !contains(opts.ports, port) {
			opts.ports = append(opts.ports, port)
		}
	}
	if len(opts.ports) == 0 {
		return options{}, errors.New("at least one --port is required")
	}
	if mode, set := values["mode"]; set {
		if mode != modeTCP && mode != modeHTTP {
			return options{}, errors.New("--mode must be tcp or http, got " + quote(mode))
		}
		opts.mode = mode
	}
	opts.httpPort = opts.ports[0]
	if text, set := values["http-port"]; set {
		if opts.mode != modeHTTP {
			return options{}, errors.New("--http-port applies only to --mode http")
		}
		port, ok := integerIn(text, 1, 65535)
		if !ok {
			return options{}, errors.New("--http-port must be an integer from 1 to 65535, got " + quote(text))
		}
		opts.httpPort = port
	}
	if text, set := values["interval-ms"]; set {
		ms, ok := integerIn(text, minIntervalMs, maxIntervalMs)
		if !ok {
			return options{}, errors.New("--interval-ms must be an integer from 10 to 60000, got " + quote(text))
		}
		opts.interval = duration(ms) * millisecond
	}
	if root, set := values["proc-root"]; set {
		if root == "" {
			return options{}, errors.New("--proc-root must not be empty")
		}
		opts.procRoot = root
	}
	return opts, nil
}

// integerIn accepts plain decimal digits only: no sign, no spaces, no 0x, at most six digits.
func integerIn(text string, min, max int) (int, bool) {
	if len(text) == 0 || len(text) > 6 {
		return 0, false
	}
	for _, r := range text {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	value := 0
	for _, r := range text {
		value = value*10 + int(r-'0')
	}
	return value, value >= min && value <= max
}

func cut(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func contains(list []int, value int) bool {
	for _, v := range list {
		if v == value {
			return true
		}
	}
	return false
}

func quote(s string) string { return "\"" + s + "\"" }
