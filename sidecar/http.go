package main

import "syscall"

/*
 * The HTTP health check, by hand: one request per connection, answered and closed. net/http would
 * triple the binary; the NLB sends `GET path HTTP/1.1` with a few headers and reads the status.
 */

const (
	// A health check is one small request: a slow or silent client must not hold a connection long.
	httpTimeoutSeconds = 5
	// Request line and headers; a larger head is refused (Node's limit is 16 KiB, the NLB's request
	// is a few hundred bytes).
	maxRequestHead = 8 << 10
)

var statusText = map[int]string{200: "OK", 400: "Bad Request", 405: "Method Not Allowed", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}

// answerHTTP reads one request head from conn, writes the answer and closes conn.
func answerHTTP(conn int, status func() (int, string)) {
	defer syscall.Close(conn)
	timeout := syscall.Timeval{Sec: httpTimeoutSeconds}
	_ = syscall.SetsockoptTimeval(conn, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &timeout)
	_ = syscall.SetsockoptTimeval(conn, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &timeout)

	var buffer [maxRequestHead]byte
	size := 0
	for headEnd(buffer[:size]) < 0 {
		if size == len(buffer) {
			writeAnswer(conn, 431, "request head too large\n", "", false)
			return
		}
		n, err := syscall.Read(conn, buffer[size:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n == 0 {
			// Timed out (EAGAIN after SO_RCVTIMEO), reset, or closed before a whole request.
			return
		}
		size += n
	}
	method, ok := requestMethod(buffer[:size])
	switch {
	case !ok:
		writeAnswer(conn, 400, "bad request\n", "", false)
	case method != "GET" && method != "HEAD":
		// RFC 9110 §9.1: a general-purpose server answers GET and HEAD; 405 names them (§15.5.6).
		writeAnswer(conn, 405, "method not allowed\n", "GET, HEAD", false)
	default:
		code, body := status()
		writeAnswer(conn, code, body, "", method == "HEAD")
	}
	// Closing with unread request bytes (a POST body) would send a reset that can destroy the answer
	// before the client reads it: end our side, then read what is left, bounded by the timeout.
	_ = syscall.Shutdown(conn, syscall.SHUT_WR)
	for drained := 0; drained < 64<<10; {
		n, err := syscall.Read(conn, buffer[:])
		if err != nil || n == 0 {
			return
		}
		drained += n
	}
}

func writeAnswer(conn int, code int, body, allow string, head bool) {
	answer := "HTTP/1.1 " + itoa(code) + " " + statusText[code] + "\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Length: " + itoa(len(body)) + "\r\n" +
		"Cache-Control: no-store\r\n" +
		"Connection: close\r\n"
	if allow != "" {
		answer += "Allow: " + allow + "\r\n"
	}
	answer += "\r\n"
	if !head {
		answer += body
	}
	for data := []byte(answer); len(data) > 0; {
		n, err := syscall.Write(conn, data)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		data = data[n:]
	}
}

// headEnd is the index after the blank line that ends the head (CRLF CRLF, or LF LF as RFC 9112
// §2.2 lets a server accept), or -1.
func headEnd(b []byte) int {
	for i := range b {
		if b[i] != '\n' {
			continue
		}
		if i >= 1 && b[i-1] == '\n' {
			return i + 1
		}
		if i >= 2 && b[i-1] == '\r' && b[i-2] == '\n' {
			return i + 1
		}
	}
	return -1
}

// requestMethod is the method of a request line `METHOD SP target SP HTTP/1.x`.
func requestMethod(head []byte) (string, bool) {
	end := indexByte(head, '\n')
	if end < 0 {
		return "", false
	}
	line := head[:end]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	space := indexByte(line, ' ')
	if space <= 0 {
		return "", false
	}
	rest := line[space+1:]
	second := indexByte(rest, ' ')
	if second <= 0 || len(rest)-second-1 < 8 || string(rest[second+1:second+6]) != "HTTP/" {
		return "", false
	}
	for _, c := range line[:space] {
		if c < 'A' || c > 'Z' {
			return "", false
		}
	}
	return string(line[:space]), true
}
