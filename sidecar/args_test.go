package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	opts, err := parseArgs([]string{"--port", "5060"})
	want := options{ports: []int{5060}, mode: modeTCP, httpPort: 5060, interval: 1000 * millisecond, procRoot: "/proc"}
	if err != nil || !reflect.DeepEqual(opts, want) {
		t.Errorf("defaults: %+v %v", opts, err)
	}
	if defaultIntervalMs > 2000 {
		t.Error("the default interval is at most 2 s")
	}
	opts, err = parseArgs([]string{"--port=5060", "--port", "10000", "--port", "5060", "--mode", "http", "--http-port", "8080", "--interval-ms", "250", "--proc-root", "/host/proc"})
	want = options{ports: []int{5060, 10000}, mode: modeHTTP, httpPort: 8080, interval: 250 * millisecond, procRoot: "/host/proc"}
	if err != nil || !reflect.DeepEqual(opts, want) {
		t.Errorf("repeated --port, duplicates dropped, every option: %+v %v", opts, err)
	}
	if opts, _ := parseArgs([]string{"--port", "53", "--mode", "http"}); opts.httpPort != 53 {
		t.Error("the http port defaults to the first --port")
	}
	if _, err := parseArgs([]string{"--help"}); err != errHelp {
		t.Error("--help")
	}
	if _, err := parseArgs([]string{"-h", "--bogus"}); err == nil || err == errHelp {
		t.Error("an unknown option wins over --help")
	}

	errors := []struct {
		args    []string
		message string
	}{
		{nil, "at least one --port"},
		{[]string{"--port", "0"}, `--port must be an integer from 1 to 65535, got "0"`},
		{[]string{"--port", "65536"}, `got "65536"`},
		{[]string{"--port", "abc"}, `got "abc"`},
		{[]string{"--port", "-1"}, `got "-1"`},
		{[]string{"--port", "1.5"}, `got "1.5"`},
		{[]string{"--port", "+53"}, `got "+53"`},
		{[]string{"--port", "5060", "--mode", "udp"}, `--mode must be tcp or http, got "udp"`},
		{[]string{"--port", "5060", "--http-port", "8080"}, "--http-port applies only to --mode http"},
		{[]string{"--port", "5060", "--mode", "http", "--http-port", "0"}, "--http-port must be an integer"},
		{[]string{"--port", "5060", "--interval-ms", "5"}, `--interval-ms must be an integer from 10 to 60000, got "5"`},
		{[]string{"--port", "5060", "--interval-ms", "60001"}, `got "60001"`},
		{[]string{"--port", "5060", "--proc-root", ""}, "--proc-root must not be empty"},
		{[]string{"--port", "5060", "--proc-root="}, "--proc-root must not be empty"},
		{[]string{"--port", "5060", "--verbose"}, `unknown option "--verbose"`},
		{[]string{"--port", "5060", "extra"}, `unexpected argument "extra"`},
		{[]string{"--port"}, "option --port needs a value"},
		{[]string{"healthcheck", "--port", "5060"}, `unexpected argument "healthcheck"`},
	}
	for _, c := range errors {
		_, err := parseArgs(c.args)
		if err == nil || err == errHelp || !strings.Contains(err.Error(), c.message) {
			t.Errorf("%q: got %v, want an error containing %q", c.args, err, c.message)
		}
	}
}

func TestRunHelpAndUsageErrors(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run([]string{"--help"}, &stdout, &stderr); code != 0 || stdout.String() != usage || stderr.Len() != 0 {
		t.Errorf("--help: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"--port", "70000"}, &stdout, &stderr); code != 2 || stdout.Len() != 0 ||
		!strings.HasPrefix(stderr.String(), "nlb-guard-healthcheck: --port must be an integer from 1 to 65535, got \"70000\"\n\nUsage: ") {
		t.Errorf("usage error: exit %d, stderr %q", code, stderr.String())
	}
}
