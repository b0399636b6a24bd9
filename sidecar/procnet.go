package main

import (
	"syscall"
	"unsafe"
)

/*
 * The kernel prints one socket per line after a header (net/ipv4/udp.c udp4_format_sock,
 * net/ipv6/datagram.c __ip6_dgram_sock_seq_show):
 *
 *	sl  local_address rem_address   st ...
 *	 0: 0100007F:13C4 00000000:0000 07 ...
 *
 * An address is its raw bytes printed as 32-bit words with %08X, so each word reads back in this
 * CPU's byte order (0100007F is 127.0.0.1 on x86 and arm64); the port after the colon was already
 * converted with ntohs(), so 13C4 is 5060 on every CPU. `st` is a TCP state number: an unconnected
 * UDP socket shows TCP_CLOSE (07), a connect()ed one TCP_ESTABLISHED (01).
 */

const stateEstablished = 0x01

// portSet is a set of ports as a bitmap: filling it every poll allocates nothing, so the program's
// memory does not move while it runs.
type portSet [65536 / 64]uint64

func (s *portSet) add(port int)      { s[port>>6] |= 1 << (port & 63) }
func (s *portSet) has(port int) bool { return s[port>>6]&(1<<(port&63)) != 0 }
func (s *portSet) clear()            { *s = portSet{} }

// addReachableUDPPorts adds the local UDP ports in the text of a /proc/net/udp or /proc/net/udp6
// file that a load balancer can reach: bound to the wildcard or to a non-loopback address, and not
// connected. A loopback-only socket never sees the load balancer's packets, and a connected one
// accepts datagrams from its one peer only.
func addReachableUDPPorts(text []byte, into *portSet) {
	first := true
	for len(text) > 0 {
		line := text
		if end := indexByte(text, '\n'); end >= 0 {
			line, text = text[:end], text[end+1:]
		} else {
			text = nil
		}
		// The first line is the header (seq_file's SEQ_START_TOKEN).
		if first {
			first = false
			continue
		}
		// sl, local_address, rem_address, st
		var fields [4][]byte
		n := 0
		for n < len(fields) {
			line = trimLeftSpace(line)
			if len(line) == 0 {
				break
			}
			end := 0
			for end < len(line) && !isSpace(line[end]) {
				end++
			}
			fields[n], line = line[:end], line[end:]
			n++
		}
		if n < len(fields) {
			continue
		}
		local, localPort, ok := parseSocketAddress(fields[1])
		if !ok || localPort == 0 {
			continue
		}
		remote, remotePort, ok := parseSocketAddress(fields[2])
		if !ok {
			continue
		}
		state, ok := parseHex(fields[3])
		if !ok {
			continue
		}
		connected := state == stateEstablished || remotePort != 0 || remote != [16]byte{}
		if connected || isLoopback(local, len(fields[1]) == 13) {
			continue
		}
		into.add(localPort)
	}
}

// parseSocketAddress reads `HEX:PORT` with an 8-digit (IPv4) or 32-digit (IPv6) address, returning
// the address's bytes in network order (IPv4 in the first four).
func parseSocketAddress(text []byte) (address [16]byte, port int, ok bool) {
	if len(text) != 13 && len(text) != 37 || text[len(text)-5] != ':' {
		return address, 0, false
	}
	p, ok := parseHex(text[len(text)-4:])
	if !ok {
		return address, 0, false
	}
	hexAddress := text[:len(text)-5]
	for word := 0; word*8 < len(hexAddress); word++ {
		value, ok := parseHex(hexAddress[word*8 : word*8+8])
		if !ok {
			return address, 0, false
		}
		putNative(address[word*4:word*4+4], uint32(value))
	}
	return address, int(p), true
}

func isLoopback(address [16]byte, ipv4 bool) bool {
	if ipv4 {
		return address[0] == 127
	}
	var v4mapped = [12]byte{10: 0xff, 11: 0xff}
	if [12]byte(address[:12]) == v4mapped {
		return address[12] == 127
	}
	return address == [16]byte{15: 1}
}

func parseHex(text []byte) (uint64, bool) {
	if len(text) == 0 || len(text) > 8 {
		return 0, false
	}
	var value uint64
	for _, c := range text {
		switch {
		case c >= '0' && c <= '9':
			value = value<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			value = value<<4 | uint64(c-'a'+10)
		case c >= 'A' && c <= 'F':
			value = value<<4 | uint64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return value, true
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

func trimLeftSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	return b
}

// socketTable reads net/udp and net/udp6 under a proc root into one reused buffer: in a pod, the
// network namespace every container shares, since /proc/net links to /proc/self/net. A read
// allocates nothing once the buffer has grown to the table's size.
type socketTable struct {
	procRoot string
	paths    [2][]byte // NUL-terminated, made once
	buffer   []byte
	ports    portSet
}

// read returns the reachable UDP ports. net/udp6 is missing when the kernel has no IPv6 (built
// without it, or booted with ipv6.disable=1): then only IPv4 sockets exist. net/udp missing is an
// error: the proc root is the wrong one.
func (t *socketTable) read() (*portSet, error) {
	if t.paths[0] == nil {
		t.paths[0] = append([]byte(t.procRoot+"/net/udp"), 0)
		t.paths[1] = append([]byte(t.procRoot+"/net/udp6"), 0)
	}
	t.ports.clear()
	if err := t.readFile(t.paths[0], false); err != nil {
		return nil, err
	}
	if err := t.readFile(t.paths[1], true); err != nil {
		return nil, err
	}
	return &t.ports, nil
}

func (t *socketTable) readFile(path []byte, optional bool) error {
	// openat(2) directly: syscall.Open copies the path into a new C string on every call.
	r, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(&path[0])), syscall.O_RDONLY|syscall.O_CLOEXEC, 0, 0, 0)
	if errno == syscall.ENOENT && optional {
		return nil
	}
	if errno != 0 {
		return &pathError{path: path, err: errno}
	}
	fd := int(r)
	defer syscall.Close(fd)
	if t.buffer == nil {
		t.buffer = make([]byte, 64<<10)
	}
	size := 0
	for {
		if size == len(t.buffer) {
			// One socket is ~128 bytes a line (~170 in udp6): 64 KiB holds ~500 sockets, and a pod with
			// more makes the buffer grow once, then it is reused.
			t.buffer = append(t.buffer, make([]byte, len(t.buffer))...)
		}
		n, err := syscall.Read(fd, t.buffer[size:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &pathError{path: path, err: asErrno(err)}
		}
		if n == 0 {
			break
		}
		size += n
	}
	addReachableUDPPorts(t.buffer[:size], &t.ports)
	return nil
}

// AT_FDCWD (-100) as the unsigned word the system call takes.
var atFDCWD = func() uintptr { fd := -100; return uintptr(fd) }()

type pathError struct {
	path []byte // NUL-terminated
	err  syscall.Errno
}

func (e *pathError) Error() string { return e.err.Error() + ": " + string(e.path[:len(e.path)-1]) }
func (e *pathError) Unwrap() error { return e.err }

// littleEndian is this CPU's byte order, which the kernel's %08X words are printed in.
var littleEndian = func() bool {
	one := uint16(1)
	return *(*byte)(unsafe.Pointer(&one)) == 1
}()

func putNative(b []byte, v uint32) {
	if littleEndian {
		b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	} else {
		b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
}
