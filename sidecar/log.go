package main

import (
	"io"
	"sync"
	"syscall"
)

// Pino's numeric levels: the webhook logs with pino, so both programs' lines read the same way.
const (
	levelInfo  = 30
	levelWarn  = 40
	levelError = 50
)

// field is one key and its value, already encoded as JSON.
type field struct {
	key  string
	json []byte
}

func str(key, value string) field { return field{key, appendJSONString(nil, value)} }
func num(key string, v int) field { return field{key, appendInt(nil, int64(v))} }
func ints(key string, v []int) field {
	out := []byte{'['}
	for i, n := range v {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendInt(out, int64(n))
	}
	return field{key, append(out, ']')}
}

// errField is an error as {"code":"EADDRINUSE","message":"..."}: a stable code (the errno's name)
// and the message.
func errField(err error) field {
	out := []byte{'{'}
	if code := errorCode(err); code != "" {
		out = appendJSONString(append(out, `"code":`...), code)
		out = append(out, ',')
	}
	out = appendJSONString(append(out, `"message":`...), err.Error())
	return field{"err", append(out, '}')}
}

// logger writes one JSON line per record shaped like pino's: level, epoch-millisecond time, msg,
// then the fields. Encoding by hand keeps encoding/json and its reflection out of the binary.
type logger struct {
	mu  sync.Mutex
	out io.Writer
	// Milliseconds since the Unix epoch.
	now func() int64
}

func (l *logger) log(level int, msg string, fields ...field) {
	line := appendInt([]byte(`{"level":`), int64(level))
	line = appendInt(append(line, `,"time":`...), l.now())
	line = appendJSONString(append(line, `,"msg":`...), msg)
	for _, f := range fields {
		line = appendJSONString(append(line, ','), f.key)
		line = append(append(line, ':'), f.json...)
	}
	line = append(line, '}', '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.out.Write(line)
}

// appendJSONString quotes s as a JSON string (RFC 8259 §7): `"` and `\` escaped, control
// characters as \u00XX; everything else, UTF-8 included, as is.
func appendJSONString(out []byte, s string) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}

var errnoNames = map[syscall.Errno]string{
	syscall.EACCES: "EACCES", syscall.EADDRINUSE: "EADDRINUSE", syscall.EADDRNOTAVAIL: "EADDRNOTAVAIL",
	syscall.EAFNOSUPPORT: "EAFNOSUPPORT", syscall.EISDIR: "EISDIR", syscall.EMFILE: "EMFILE",
	syscall.ENFILE: "ENFILE", syscall.ENOBUFS: "ENOBUFS", syscall.ENOENT: "ENOENT", syscall.ENOMEM: "ENOMEM",
	syscall.ENOTDIR: "ENOTDIR", syscall.EPERM: "EPERM",
}

// errorCode is the errno's name, as Node reports `err.code`, or "" when the error carries none.
func errorCode(err error) string {
	for err != nil {
		if errno, ok := err.(syscall.Errno); ok {
			if name, known := errnoNames[errno]; known {
				return name
			}
			return "errno " + itoa(int(errno))
		}
		unwrapper, ok := err.(interface{ Unwrap() error })
		if !ok {
			return ""
		}
		err = unwrapper.Unwrap()
	}
	return ""
}

func asErrno(err error) syscall.Errno {
	if errno, ok := err.(syscall.Errno); ok {
		return errno
	}
	return syscall.EIO
}

// appendInt is strconv.AppendInt in base 10: strconv would add its code to every page kept resident.
func appendInt(out []byte, v int64) []byte {
	if v < 0 {
		out = append(out, '-')
		// Negating the smallest int64 overflows; as uint64 it is the right magnitude.
		return appendUint(out, uint64(-v))
	}
	return appendUint(out, uint64(v))
}

func appendUint(out []byte, v uint64) []byte {
	var digits [20]byte
	i := len(digits)
	for {
		i--
		digits[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(out, digits[i:]...)
}

func itoa(v int) string { return string(appendInt(nil, int64(v))) }
