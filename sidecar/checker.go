package main

import (
	"sync"
	"syscall"
)

// checker polls the UDP socket table and opens or closes what the health check connects to.
type checker struct {
	opts      options
	log       *logger
	readTable func() (*portSet, error)

	mu      sync.Mutex
	stopped bool
	// tcp mode: one listener per UDP port that is bound and whose TCP port could be opened.
	listeners map[int]*listener
	// http mode: the listener, the ports it reports missing, and the connections being answered.
	http        *listener
	missing     []int
	httpClients int
	// The last state logged per key, so each change is one line, never one per poll. One entry per
	// port: it does not grow.
	logged     map[stateKey]loggedState
	readFailed bool
}

type loggedState struct{ state, code string }

// stateKey is a UDP port, or the HTTP port (which may equal one of the UDP ports).
type stateKey struct {
	port int
	http bool
}

func newChecker(opts options, log *logger, readTable func() (*portSet, error)) *checker {
	return &checker{
		opts: opts, log: log, readTable: readTable,
		listeners: map[int]*listener{}, logged: map[stateKey]loggedState{}, missing: append([]int(nil), opts.ports...),
	}
}

// poll reads the socket table once and brings the listeners in line with it. It never fails: a
// busy port or an unreadable table is logged (once per change) and tried again next poll. It
// returns false once the checker is stopped.
func (c *checker) poll() bool {
	// Read outside the lock: stop() never waits for a read.
	bound, err := c.readTable()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false
	}
	if err != nil {
		// Keep the last answer rather than flap: procfs reads do not fail transiently, so this is a
		// misconfiguration (a wrong --proc-root) that one line explains; at start nothing is up yet.
		if !c.readFailed {
			c.readFailed = true
			c.log.log(levelError, "cannot read the UDP socket table", str("procRoot", c.opts.procRoot), errField(err))
		}
		return true
	}
	if c.readFailed {
		c.readFailed = false
		c.log.log(levelInfo, "reading the UDP socket table again", str("procRoot", c.opts.procRoot))
	}
	if c.opts.mode == modeTCP {
		for _, port := range c.opts.ports {
			c.syncTCP(port, bound.has(port))
		}
	} else {
		c.syncHTTP(bound)
	}
	return true
}

// syncTCP: TCP port P accepts connections exactly while UDP port P is reachable.
func (c *checker) syncTCP(port int, udpBound bool) {
	key := stateKey{port: port}
	l, listening := c.listeners[port]
	if !udpBound {
		if listening {
			l.close()
			delete(c.listeners, port)
		}
		c.state(key, levelInfo, "no UDP socket bound; TCP port closed", port, "udp-unbound", nil)
		return
	}
	if listening {
		return
	}
	fd, err := listenTCP(port)
	if err != nil {
		c.state(key, levelWarn, "UDP socket bound but the TCP port cannot be opened; retrying every poll", port, listenFailure(err), err)
		return
	}
	// The handshake is all a TCP health check asks: close at once, read nothing, keep nothing.
	c.listeners[port] = serve(fd, func(conn int) { syscall.Close(conn) }, c.acceptFailed(port))
	c.state(key, levelInfo, "UDP socket bound; accepting TCP", port, "listening", nil)
}

// syncHTTP: one HTTP server; any GET answers 200 when every port is bound, else 503.
func (c *checker) syncHTTP(bound *portSet) {
	c.missing = c.missing[:0]
	for _, port := range c.opts.ports {
		key := stateKey{port: port}
		if bound.has(port) {
			c.state(key, levelInfo, "UDP socket bound", port, "udp-bound", nil)
		} else {
			c.missing = append(c.missing, port)
			c.state(key, levelInfo, "no UDP socket bound", port, "udp-unbound", nil)
		}
	}
	if c.http != nil {
		return
	}
	// Its own key: --http-port may equal one of the UDP ports, whose state is logged above.
	key := stateKey{port: c.opts.httpPort, http: true}
	fd, err := listenTCP(c.opts.httpPort)
	if err != nil {
		c.state(key, levelWarn, "the HTTP port cannot be opened; retrying every poll", c.opts.httpPort, listenFailure(err), err)
		return
	}
	c.http = serve(fd, c.startHTTP, c.acceptFailed(c.opts.httpPort))
	c.state(key, levelInfo, "HTTP health check listening", c.opts.httpPort, "listening", nil)
}

// At most this many HTTP connections are answered at once; more are closed unanswered. The NLB
// probes from one node per zone, a few connections at a time: this bounds what a flood can hold.
const maxHTTPClients = 16

func (c *checker) startHTTP(conn int) {
	c.mu.Lock()
	admitted := c.httpClients < maxHTTPClients
	if admitted {
		c.httpClients++
	}
	c.mu.Unlock()
	if !admitted {
		syscall.Close(conn)
		return
	}
	go func() {
		answerHTTP(conn, c.httpStatus)
		c.mu.Lock()
		c.httpClients--
		c.mu.Unlock()
	}()
}

// httpStatus is the answer to a GET now: 200, or 503 naming the ports without a UDP socket.
func (c *checker) httpStatus() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.missing) == 0 {
		return 200, "ok\n"
	}
	body := "no UDP socket bound on port "
	for i, port := range c.missing {
		if i > 0 {
			body += ", "
		}
		body += itoa(port)
	}
	return 503, body + "\n"
}

func (c *checker) acceptFailed(port int) func(error) {
	return func(err error) {
		c.log.log(levelWarn, "TCP server error", num("port", port), errField(err))
		// Until descriptors are free again, a pause keeps the accept loop from spinning.
		sleep(100 * millisecond)
	}
}

// stop closes every listener; polls after it change nothing.
func (c *checker) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	for port, l := range c.listeners {
		l.close()
		delete(c.listeners, port)
	}
	if c.http != nil {
		c.http.close()
		c.http = nil
	}
}

// state logs a record only when it differs from the last one logged for the key. The error code is
// part of the state: EACCES turning into EADDRINUSE is news worth a line.
func (c *checker) state(key stateKey, level int, msg string, port int, state string, err error) {
	fingerprint := loggedState{state: state}
	if err != nil {
		fingerprint.code = errorCode(err)
	}
	// Compared before any field is built: a poll that changes nothing allocates nothing.
	if c.logged[key] == fingerprint {
		return
	}
	c.logged[key] = fingerprint
	fields := []field{num("port", port), str("state", state)}
	if err != nil {
		fields = append(fields, errField(err))
	}
	c.log.log(level, msg, fields...)
}

func listenFailure(err error) string {
	if err == syscall.EADDRINUSE {
		return "tcp-port-busy"
	}
	return "tcp-listen-failed"
}
