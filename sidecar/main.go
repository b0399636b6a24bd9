// nlb-guard-healthcheck answers an AWS NLB's TCP or HTTP health check for a UDP application in the
// same pod: an NLB health check is TCP, HTTP or HTTPS, never UDP, so a UDP target without an
// answer never becomes healthy. It answers only while the application has a UDP socket the load
// balancer can reach, read from /proc/net/udp and /proc/net/udp6.
//
// Standard library only, built static (CGO_ENABLED=0): the image is this one file. Its resident
// memory is mostly its own pages, so it stays small by leaving out fmt, net, net/http and
// encoding/json, and allocates nothing per poll or per probe.
package main

import (
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseArgs(args)
	if err == errHelp {
		_, _ = io.WriteString(stdout, usage)
		return 0
	}
	if err != nil {
		_, _ = io.WriteString(stderr, programName+": "+err.Error()+"\n\n"+usage)
		return 2
	}
	log := &logger{out: stderr, now: time.Now}

	// Before anything starts, so a signal during start-up is not lost. As the container's PID 1 the
	// process gets no default action for SIGTERM from the kernel: this is what ends it.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	table := &socketTable{procRoot: opts.procRoot}
	c := newChecker(opts, log, table.read)
	// The first poll before "started", so ports bound at start are answered once that line is out.
	c.poll()
	started := []field{str("mode", opts.mode), ints("ports", opts.ports)}
	if opts.mode == modeHTTP {
		started = append(started, num("httpPort", opts.httpPort))
	}
	log.log(levelInfo, "healthcheck started", append(started, num("intervalMs", int(opts.interval/time.Millisecond)))...)
	go func() {
		for {
			time.Sleep(opts.interval)
			if !c.poll() {
				return
			}
		}
	}()

	received := <-signals
	c.stop()
	log.log(levelInfo, "healthcheck stopped", str("signal", signalName(received)))
	return 0
}

func signalName(s os.Signal) string {
	if s == syscall.SIGINT {
		return "SIGINT"
	}
	return "SIGTERM"
}
