package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// Captured from a machine's /proc/net/udp{,6} with sockets bound, then trimmed (test/fixtures/proc-net):
// udp: 0.0.0.0:10000 (07), 127.0.0.1:43609 connected to 127.0.0.53:53 (01), 10.0.3.15:123, 127.0.0.1:5060;
// udp6: [::1]:3478, [::]:5353, [::]:10000.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "test", "fixtures", "proc-net", name))
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func portsOf(s *portSet) []int {
	var ports []int
	for port := 0; port < 65536; port++ {
		if s.has(port) {
			ports = append(ports, port)
		}
	}
	return ports
}

func reachable(text string) []int {
	var s portSet
	addReachableUDPPorts([]byte(text), &s)
	return portsOf(&s)
}

func TestReachableUDPPortsFixtures(t *testing.T) {
	var s portSet
	addReachableUDPPorts(fixture(t, "udp"), &s)
	if got := portsOf(&s); !slices.Equal(got, []int{123, 10000}) {
		t.Errorf("IPv4 table: got %v, want [123 10000]: the wildcard and the pod address count, loopback-only and connected do not", got)
	}
	s.clear()
	addReachableUDPPorts(fixture(t, "udp6"), &s)
	if got := portsOf(&s); !slices.Equal(got, []int{5353, 10000}) {
		t.Errorf("IPv6 table: got %v, want [5353 10000]: [::1] does not count", got)
	}
}

func TestReachableUDPPortsCases(t *testing.T) {
	const header = "  sl  local_address rem_address   st\n"
	cases := []struct {
		name string
		text string
		want []int
	}{
		{"empty file", "", nil},
		{"header only (no UDP sockets)", header, nil},
		{"the first line is skipped even if it looks like a socket", "    0: 00000000:13C4 00000000:0000 07\n    1: 00000000:13C5 00000000:0000 07\n", []int{5061}},
		{"malformed rows are ignored", header + " 1: garbage\n 2: 00000000:XYZW 00000000:0000 07\n 3: 00000000 00000000:0000 07\n 4:\n 5: 00000000:13C4 00000000:0000 ZZ\n", nil},
		{"port 0 is not a bound port", header + " 1: 00000000:0000 00000000:0000 07\n", nil},
		{"lower-case hex and CRLF", "header\r\n 1: 0f03000a:13c4 00000000:0000 07\r\n", []int{5060}},
		{"highest port", header + " 1: 00000000:FFFF 00000000:0000 07\n", []int{65535}},
		{"the pod's own IPv4 address counts", header + " 1: 0F03000A:13C4 00000000:0000 07\n", []int{5060}},
		{"IPv4 loopback only (127.0.0.1) does not", header + " 1: 0100007F:13C4 00000000:0000 07\n", nil},
		{"all of 127/8 is loopback", header + " 1: 0200007F:13C4 00000000:0000 07\n", nil},
		{"connected (ESTABLISHED, a peer) does not", header + " 1: 0F03000A:13C4 0100000A:0035 01\n", nil},
		{"a peer address without the state does not either", header + " 1: 00000000:13C4 0100000A:0035 07\n", nil},
		{"IPv6 wildcard counts", header + " 1: 00000000000000000000000000000000:13C4 00000000000000000000000000000000:0000 07\n", []int{5060}},
		{"IPv6 ::1 does not", header + " 1: 00000000000000000000000001000000:13C4 00000000000000000000000000000000:0000 07\n", nil},
		{"IPv4-mapped 127.0.0.1 in udp6 does not", header + " 1: 0000000000000000FFFF00000100007F:13C4 00000000000000000000000000000000:0000 07\n", nil},
		{"IPv4-mapped pod address in udp6 counts", header + " 1: 0000000000000000FFFF00000F03000A:13C4 00000000000000000000000000000000:0000 07\n", []int{5060}},
		{"a global IPv6 address counts", header + " 1: 000000FD000000000000000005000000:13C4 00000000000000000000000000000000:0000 07\n", []int{5060}},
		{"connected IPv6 does not", header + " 1: 00000000000000000000000000000000:13C4 000000FD000000000000000005000000:0035 01\n", nil},
		{"one reachable socket among unreachable ones on the same port counts", header + " 1: 0100007F:13C4 00000000:0000 07\n 2: 00000000:13C4 00000000:0000 07\n", []int{5060}},
	}
	for _, c := range cases {
		if got := reachable(c.text); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	if !littleEndian {
		t.Log("big-endian CPU: the fixtures above are little-endian text, as x86 and arm64 print it")
	}
}

func procRoot(t *testing.T, files map[string]string, dirs ...string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(root, "net", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range dirs {
		if err := os.Mkdir(filepath.Join(root, "net", dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestSocketTableReadsBothFiles(t *testing.T) {
	table := socketTable{procRoot: procRoot(t, map[string]string{"udp": string(fixture(t, "udp")), "udp6": string(fixture(t, "udp6"))})}
	ports, err := table.read()
	if err != nil {
		t.Fatal(err)
	}
	if got := portsOf(ports); !slices.Equal(got, []int{123, 5353, 10000}) {
		t.Errorf("got %v", got)
	}
	// The same buffer and set serve the next read: a socket that went away is gone from it.
	if err := os.WriteFile(filepath.Join(table.procRoot, "net", "udp6"), []byte("header\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ports, _ = table.read()
	if got := portsOf(ports); !slices.Equal(got, []int{123, 10000}) {
		t.Errorf("second read: got %v", got)
	}
}

func TestSocketTableGrowsItsBuffer(t *testing.T) {
	text := "header\n"
	for i := 1; i <= 2000; i++ {
		text += " 1: 00000000:" + string("0123456789ABCDEF"[i>>12&15]) + string("0123456789ABCDEF"[i>>8&15]) + string("0123456789ABCDEF"[i>>4&15]) + string("0123456789ABCDEF"[i&15]) + " 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 5738 2 000000004671f5f0 0\n"
	}
	table := socketTable{procRoot: procRoot(t, map[string]string{"udp": text})}
	ports, err := table.read()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(portsOf(ports)); got != 2000 {
		t.Errorf("a table larger than the first buffer: %d ports, want 2000", got)
	}
}

func TestSocketTableErrors(t *testing.T) {
	missing6 := socketTable{procRoot: procRoot(t, map[string]string{"udp": string(fixture(t, "udp"))})}
	if ports, err := missing6.read(); err != nil || !slices.Equal(portsOf(ports), []int{123, 10000}) {
		t.Errorf("a missing net/udp6 (kernel without IPv6) is not an error: %v %v", err, ports)
	}
	missing4 := socketTable{procRoot: procRoot(t, map[string]string{"udp6": string(fixture(t, "udp6"))})}
	if _, err := missing4.read(); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("a missing net/udp is an error (wrong proc root): %v", err)
	}
	unreadable6 := socketTable{procRoot: procRoot(t, map[string]string{"udp": string(fixture(t, "udp"))}, "udp6")}
	if _, err := unreadable6.read(); !errors.Is(err, syscall.EISDIR) || errorCode(err) != "EISDIR" {
		t.Errorf("an unreadable net/udp6 is an error, not silently IPv4-only: %v", err)
	}
}

func TestLiveSockets(t *testing.T) {
	table := socketTable{procRoot: "/proc"}
	wildcard, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer wildcard.Close()
	loopback, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer loopback.Close()
	connected, err := net.DialUDP("udp4", nil, loopback.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer connected.Close()

	ports, err := table.read()
	if err != nil {
		t.Fatal(err)
	}
	if !ports.has(wildcard.LocalAddr().(*net.UDPAddr).Port) {
		t.Error("a socket bound to 0.0.0.0 is reachable")
	}
	if ports.has(loopback.LocalAddr().(*net.UDPAddr).Port) {
		t.Error("a socket bound to 127.0.0.1 only is not")
	}
	if ports.has(connected.LocalAddr().(*net.UDPAddr).Port) {
		t.Error("a connected socket is not")
	}
	if v6, err := net.ListenPacket("udp6", "[::]:0"); err == nil {
		defer v6.Close()
		ports, _ = table.read()
		if !ports.has(v6.LocalAddr().(*net.UDPAddr).Port) {
			t.Error("a socket bound to [::] is reachable (read from net/udp6)")
		}
	} else {
		t.Log("no IPv6 here: net/udp6 not checked with a live socket")
	}
}
