package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Real sockets on loopback: the sidecar's whole job is kernel state. The socket table is a fake
// the test sets before each poll, so every poll is one call and nothing waits on a clock.

type records struct {
	mu    sync.Mutex
	lines []map[string]any
}

func (r *records) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		var record map[string]any
		if err := json.Unmarshal([]byte(line), &record); err != nil {
			return 0, err
		}
		r.lines = append(r.lines, record)
	}
	return len(p), nil
}

// statesOf lists the state field of each record about port, in order.
func (r *records) statesOf(port int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var states []string
	for _, record := range r.lines {
		if record["port"] == float64(port) && record["state"] != nil {
			states = append(states, record["state"].(string))
		}
	}
	return states
}

type fakeTable struct {
	ports portSet
	err   error
}

func (f *fakeTable) set(err error, ports ...int) {
	f.ports.clear()
	for _, p := range ports {
		f.ports.add(p)
	}
	f.err = err
}

func (f *fakeTable) read() (*portSet, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &f.ports, nil
}

func newTestChecker(t *testing.T, opts options) (*checker, *fakeTable, *records) {
	t.Helper()
	if opts.mode == "" {
		opts.mode = modeTCP
	}
	out := &records{}
	table := &fakeTable{}
	c := newChecker(opts, &logger{out: out, now: func() int64 { return 1_700_000_000_000 }}, table.read)
	t.Cleanup(c.stop)
	return c, table, out
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// probe is what a TCP health checker sees: "accepted" or "refused".
func probe(t *testing.T, port int, host string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), time.Second)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return "refused"
		}
		return err.Error()
	}
	defer conn.Close()
	// The sidecar closes at once: the read ends with EOF, never with data or a timeout.
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		return "left open: " + errString(err)
	}
	return "accepted"
}

func errString(err error) string {
	if err == nil {
		return "data"
	}
	return err.Error()
}

func TestTCPModeFollowsTheSocketTable(t *testing.T) {
	port := freePort(t)
	c, table, out := newTestChecker(t, options{ports: []int{port}})
	c.poll()
	if got := probe(t, port, "127.0.0.1"); got != "refused" {
		t.Errorf("nothing listens before the UDP app binds: %s", got)
	}
	table.set(nil, port)
	c.poll()
	if got := probe(t, port, "127.0.0.1"); got != "accepted" {
		t.Errorf("accepted once bound, then closed by the sidecar: %s", got)
	}
	if l, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		l.Close()
		if got := probe(t, port, "::1"); got != "accepted" {
			t.Errorf("dual-stack: IPv6 too: %s", got)
		}
	}
	table.set(nil)
	c.poll()
	if got := probe(t, port, "127.0.0.1"); got != "refused" {
		t.Errorf("refused once the UDP socket is gone: %s", got)
	}
	table.set(nil, port)
	c.poll()
	if got := probe(t, port, "127.0.0.1"); got != "accepted" {
		t.Errorf("the port reopens at once after a close (no EADDRINUSE from the old socket): %s", got)
	}
	if got := strings.Join(out.statesOf(port), ","); got != "udp-unbound,listening,udp-unbound,listening" {
		t.Errorf("one log line per change: %s", got)
	}
}

func TestLoggingAndPolling(t *testing.T) {
	port := freePort(t)
	c, table, out := newTestChecker(t, options{ports: []int{port}, procRoot: "/proc"})
	eacces := &pathError{path: []byte("/proc/net/udp\x00"), err: syscall.EACCES}
	steps := []func(){
		func() { table.set(nil) },
		func() { table.set(nil) },
		func() { table.set(nil, port) },
		func() { table.set(nil, port, 9) },
		func() { table.set(eacces) },
		func() { table.set(eacces) },
		func() { table.set(nil, port) },
		func() { table.set(nil) },
	}
	for _, step := range steps {
		step()
		if !c.poll() {
			t.Fatal("poll reported stopped")
		}
	}
	var got []string
	for _, record := range out.lines {
		if state, ok := record["state"].(string); ok {
			got = append(got, state)
		} else {
			got = append(got, record["msg"].(string))
		}
	}
	want := "udp-unbound,listening,cannot read the UDP socket table,reading the UDP socket table again,udp-unbound"
	if strings.Join(got, ",") != want {
		t.Errorf("one line per state change; a read failure is logged once and keeps the last answer:\n got %q\nwant %q", strings.Join(got, ","), want)
	}
	failure := out.lines[2]
	if failure["level"] != float64(levelError) || failure["err"].(map[string]any)["code"] != "EACCES" || failure["time"] != float64(1_700_000_000_000) {
		t.Errorf("the read failure: %v", failure)
	}
	c.stop()
	if c.poll() {
		t.Error("poll after stop reports stopped")
	}
	c.stop()
}

func TestBusyPortIsRetriedWithoutLeaking(t *testing.T) {
	busy, free := freePort(t), freePort(t)
	squatter, err := net.Listen("tcp", ":"+strconv.Itoa(busy))
	if err != nil {
		t.Fatal(err)
	}
	c, table, out := newTestChecker(t, options{ports: []int{busy, free}})
	table.set(nil, busy, free)
	c.poll()
	fds := openDescriptors(t)
	// A DNS server that also listens on TCP 53 keeps the port busy for good (issue 13): every poll
	// tries again, and none may hold a descriptor or memory.
	if allocs := testing.AllocsPerRun(500, func() { c.poll() }); allocs != 0 {
		t.Errorf("a poll with a busy port allocates %v times; want 0", allocs)
	}
	if after := openDescriptors(t); after != fds {
		t.Errorf("open descriptors %d before 500 polls, %d after", fds, after)
	}
	if got := strings.Join(out.statesOf(busy), ","); got != "tcp-port-busy" {
		t.Errorf("busy logged once over 500 polls: %s", got)
	}
	for _, record := range out.lines {
		if record["state"] == "tcp-port-busy" && (record["level"] != float64(levelWarn) || record["err"].(map[string]any)["code"] != "EADDRINUSE") {
			t.Errorf("busy record: %v", record)
		}
	}
	if got := probe(t, free, "127.0.0.1"); got != "accepted" {
		t.Errorf("the other port is still answered: %s", got)
	}
	squatter.Close()
	c.poll()
	if got := probe(t, busy, "127.0.0.1"); got != "accepted" {
		t.Errorf("taken over on the first poll after it is freed: %s", got)
	}
	if got := strings.Join(out.statesOf(busy), ","); got != "tcp-port-busy,listening" {
		t.Errorf("states: %s", got)
	}
}

func TestAnIdlePollAllocatesNothing(t *testing.T) {
	port := freePort(t)
	c, table, _ := newTestChecker(t, options{ports: []int{port}})
	table.set(nil, port)
	c.poll()
	if allocs := testing.AllocsPerRun(200, func() { c.poll() }); allocs != 0 {
		t.Errorf("a poll that changes nothing allocates %v times; want 0", allocs)
	}
	real := &socketTable{procRoot: "/proc"}
	real.read()
	if allocs := testing.AllocsPerRun(50, func() { real.read() }); allocs != 0 {
		t.Errorf("reading /proc/net/udp{,6} allocates %v times; want 0", allocs)
	}
}

func TestStopClosesEveryListener(t *testing.T) {
	port := freePort(t)
	c, table, _ := newTestChecker(t, options{ports: []int{port}})
	table.set(nil, port)
	c.poll()
	if got := probe(t, port, "127.0.0.1"); got != "accepted" {
		t.Fatalf("before stop: %s", got)
	}
	c.stop()
	if got := probe(t, port, "127.0.0.1"); got != "refused" {
		t.Errorf("after stop: %s", got)
	}
	c.poll()
	if got := probe(t, port, "127.0.0.1"); got != "refused" {
		t.Errorf("no poll reopens it after stop: %s", got)
	}
}

func openDescriptors(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func get(t *testing.T, method, url string) (int, string, http.Header) {
	t.Helper()
	request, _ := http.NewRequest(method, url, strings.NewReader(map[bool]string{true: "x"}[method == "POST"]))
	response, err := (&http.Client{Timeout: 5 * time.Second}).Do(request)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer response.Body.Close()
	body, _ := io.ReadAll(response.Body)
	return response.StatusCode, string(body), response.Header
}

func TestHTTPMode(t *testing.T) {
	a, b, httpPort := freePort(t), freePort(t), freePort(t)
	c, table, out := newTestChecker(t, options{ports: []int{a, b}, mode: modeHTTP, httpPort: httpPort})
	table.set(nil, a, b)
	c.poll()
	url := "http://127.0.0.1:" + strconv.Itoa(httpPort) + "/anything"

	if code, body, header := get(t, "GET", url); code != 200 || body != "ok\n" || header.Get("Content-Type") != "text/plain; charset=utf-8" || header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET: %d %q %v", code, body, header)
	}
	if code, body, _ := get(t, "HEAD", url); code != 200 || body != "" {
		t.Errorf("HEAD answers like GET, without a body: %d %q", code, body)
	}
	if code, _, header := get(t, "POST", url); code != 405 || header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", code, header.Get("Allow"))
	}
	table.set(nil, a)
	c.poll()
	if code, body, _ := get(t, "GET", url); code != 503 || body != "no UDP socket bound on port "+strconv.Itoa(b)+"\n" {
		t.Errorf("503 naming the missing port: %d %q", code, body)
	}
	if got := probe(t, a, "127.0.0.1"); got != "refused" {
		t.Errorf("http mode opens no TCP port per UDP port: %s", got)
	}
	if got := strings.Join(out.statesOf(b), ","); got != "udp-bound,udp-unbound" {
		t.Errorf("states of %d: %s", b, got)
	}
	if got := strings.Join(out.statesOf(httpPort), ","); got != "listening" {
		t.Errorf("states of the HTTP port: %s", got)
	}
}

func TestHTTPModeAnswersBadAndSlowClients(t *testing.T) {
	httpPort := freePort(t)
	c, table, _ := newTestChecker(t, options{ports: []int{httpPort}, mode: modeHTTP, httpPort: httpPort})
	table.set(nil, httpPort)
	c.poll()
	send := func(request string) string {
		conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(httpPort))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, _ = conn.Write([]byte(request))
		line, _ := bufio.NewReader(conn).ReadString('\n')
		return strings.TrimSpace(line)
	}
	if got := send("nonsense\r\n\r\n"); got != "HTTP/1.1 400 Bad Request" {
		t.Errorf("a line that is no request: %q", got)
	}
	if got := send("GET / HTTP/1.1\n\n"); got != "HTTP/1.1 200 OK" {
		t.Errorf("bare LF line ends (RFC 9112 §2.2): %q", got)
	}
	if got := send("GET / HTTP/1.1\r\nX: " + strings.Repeat("a", maxRequestHead) + "\r\n\r\n"); got != "HTTP/1.1 431 Request Header Fields Too Large" {
		t.Errorf("an oversized head: %q", got)
	}
}

func TestHTTPPortBusyIsRetried(t *testing.T) {
	port, httpPort := freePort(t), freePort(t)
	squatter, err := net.Listen("tcp", ":"+strconv.Itoa(httpPort))
	if err != nil {
		t.Fatal(err)
	}
	c, _, out := newTestChecker(t, options{ports: []int{port}, mode: modeHTTP, httpPort: httpPort})
	for i := 0; i < 3; i++ {
		c.poll()
	}
	if got := strings.Join(out.statesOf(httpPort), ","); got != "tcp-port-busy" {
		t.Errorf("busy logged once: %s", got)
	}
	squatter.Close()
	c.poll()
	if code, body, _ := get(t, "GET", "http://127.0.0.1:"+strconv.Itoa(httpPort)+"/"); code != 503 || body != "no UDP socket bound on port "+strconv.Itoa(port)+"\n" {
		t.Errorf("answers once the port is free: %d %q", code, body)
	}
}

func TestLoggerLine(t *testing.T) {
	var out strings.Builder
	l := &logger{out: &out, now: func() int64 { return 1_700_000_000_000 }}
	l.log(levelWarn, "busy \"x\"\n", num("port", 5060), str("state", "tcp-port-busy"), ints("ports", []int{1, 2}), errField(&pathError{path: []byte("/p\x00"), err: syscall.EADDRINUSE}))
	want := `{"level":40,"time":1700000000000,"msg":"busy \"x\"\u000a","port":5060,"state":"tcp-port-busy","ports":[1,2],"err":{"code":"EADDRINUSE","message":"address already in use: /p"}}` + "\n"
	if out.String() != want {
		t.Errorf("got  %s\nwant %s", out.String(), want)
	}
	var decoded map[string]any
	if err := json.Unmarshal([]byte(out.String()), &decoded); err != nil || decoded["msg"] != "busy \"x\"\n" {
		t.Errorf("not valid JSON: %v %v", err, decoded)
	}
}
