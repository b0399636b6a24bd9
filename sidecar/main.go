// nlb-guard-healthcheck answers an AWS NLB's TCP or HTTP health check for a UDP application in the
// same pod: an NLB health check is TCP, HTTP or HTTPS, never UDP, so a UDP target without an
// answer never becomes healthy. It answers only while the application has a UDP socket the load
// balancer can reach, read from /proc/net/udp and /proc/net/udp6.
//
// Standard library only, built static (CGO_ENABLED=0): the image is this one file. Its resident
// memory is mostly its own pages (the kernel maps the binary's file pages around each one it
// touches, so nearly all of it is resident), so it stays small by leaving out fmt, net, net/http,
// encoding/json, os and os/signal, and allocates nothing per poll or per probe.
package main

import (
	"io"
	"syscall"
)

func main() {
	syscall.Exit(run(runtimeArgs()[1:], fdWriter(1), fdWriter(2)))
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
	log := &logger{out: stderr, now: epochMillis}

	// Before anything starts, so a signal during start-up is not lost. As the container's PID 1 the
	// process gets no default action for SIGTERM from the kernel: this is what ends it.
	signals := notify(syscall.SIGTERM, syscall.SIGINT)

	table := &socketTable{procRoot: opts.procRoot}
	c := newChecker(opts, log, table.read)
	// The first poll before "started", so ports bound at start are answered once that line is out.
	c.poll()
	started := []field{str("mode", opts.mode), ints("ports", opts.ports)}
	if opts.mode == modeHTTP {
		started = append(started, num("httpPort", opts.httpPort))
	}
	log.log(levelInfo, "healthcheck started", append(started, num("intervalMs", int(opts.interval/millisecond)))...)
	go func() {
		for {
			sleep(opts.interval)
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

func signalName(s syscall.Signal) string {
	if s == syscall.SIGINT {
		return "SIGINT"
	}
	return "SIGTERM"
}

// fdWriter writes to a file descriptor with write(2): os.Stdout would bring the os package, 300 KiB
// of resident memory here.
type fdWriter int

func (fd fdWriter) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		n, err := syscall.Write(int(fd), b[written:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}
