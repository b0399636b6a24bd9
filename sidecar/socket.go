package main

import (
	"syscall"
	"unsafe"
)

/*
 * Sockets through the syscall package rather than net: net and its resolver would add 600 KB to a
 * binary whose pages are most of its resident memory, and a listener here only ever accepts.
 */

// listenTCP opens a listening socket on every address: one dual-stack [::] socket where the kernel
// has IPv6, else 0.0.0.0, which is what a pod with or without IPv6 needs. On failure the socket it
// made is closed, so a retry every poll holds nothing (issue 13: the old sidecar leaked here).
func listenTCP(port int) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	ipv6 := err == nil
	if err == syscall.EAFNOSUPPORT {
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return -1, err
	}
	// SO_REUSEADDR as every server sets it (Go's net, libuv): a restart binds while old
	// connections sit in TIME_WAIT. It does not let two listeners share a port.
	err = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err == nil && ipv6 {
		err = syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0)
	}
	if err == nil {
		err = bindAny(fd, port, ipv6)
	}
	if err == nil {
		err = syscall.Listen(fd, syscall.SOMAXCONN)
	}
	if err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

// listener is a listening socket whose accept loop runs on its own goroutine (blocked in accept(2),
// so on its own thread while it waits).
type listener struct {
	fd   int
	done chan struct{}
}

// serve accepts until close(); handle owns each accepted descriptor.
func serve(fd int, handle func(conn int), onError func(error)) *listener {
	l := &listener{fd: fd, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		defer syscall.Close(fd)
		for {
			conn, err := accept(fd)
			switch err {
			case nil:
				handle(conn)
			case syscall.EINTR, syscall.ECONNABORTED, syscall.EAGAIN:
			case syscall.EINVAL, syscall.EBADF:
				// shutdown(2) by close(): done.
				return
			default:
				// accept failing while listening (EMFILE, ENFILE) must not end the program.
				onError(err)
			}
		}
	}()
	return l
}

// close stops accepting and waits until the port is released: shutdown(2) wakes the blocked
// accept, whose goroutine then closes the socket, so a listen right after it finds the port free.
func (l *listener) close() {
	_ = syscall.Shutdown(l.fd, syscall.SHUT_RDWR)
	<-l.done
}

// accept is accept4(2) without the peer's address: syscall.Accept4 allocates a Sockaddr for every
// connection, and a probe must cost no memory.
func accept(fd int) (int, error) {
	conn, _, errno := syscall.Syscall6(syscall.SYS_ACCEPT4, uintptr(fd), 0, 0, syscall.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(conn), nil
}

// bindAny binds to the wildcard address with bind(2) directly: syscall.Bind allocates the address
// on every call, and a busy port is tried again every poll.
func bindAny(fd, port int, ipv6 bool) error {
	var errno syscall.Errno
	network := [2]byte{byte(port >> 8), byte(port)}
	if ipv6 {
		address := syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Port: *(*uint16)(unsafe.Pointer(&network))}
		_, _, errno = syscall.Syscall(syscall.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&address)), unsafe.Sizeof(address))
	} else {
		address := syscall.RawSockaddrInet4{Family: syscall.AF_INET, Port: *(*uint16)(unsafe.Pointer(&network))}
		_, _, errno = syscall.Syscall(syscall.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&address)), unsafe.Sizeof(address))
	}
	if errno != 0 {
		return errno
	}
	return nil
}
