package main

import (
	"syscall"
	_ "unsafe" // for go:linkname
)

/*
 * What this program needs from the runtime that os, os/signal and time wrap: the command line,
 * signal delivery and sleeping. The kernel maps nearly every page of the binary, so its size is its
 * memory: those packages, with strconv and internal/godebug that they bring, were 0.2 MiB of the
 * resident memory (2.10 -> 1.89 MiB) in a program whose target is 2 MiB. So it takes these from the
 * runtime directly, by the names the runtime provides them under (runtime/runtime.go,
 * runtime/sigqueue.go, runtime/time.go: pushed with go:linkname, which the linker lets a program
 * reference). runtime.s, empty, lets these declarations have no body.
 */

//go:linkname runtimeArgs os.runtime_args
func runtimeArgs() []string

//go:linkname signalEnable os/signal.signal_enable
func signalEnable(sig uint32)

//go:linkname signalRecv os/signal.signal_recv
func signalRecv() uint32

//go:linkname sleep time.Sleep
func sleep(d duration)

// duration is nanoseconds, as time.Duration.
type duration int64

const millisecond duration = 1_000_000

// epochMillis is the wall clock in milliseconds since the Unix epoch, for log lines.
func epochMillis() int64 {
	var now syscall.Timeval
	_ = syscall.Gettimeofday(&now)
	return now.Sec*1000 + now.Usec/1000
}

// notify starts delivering the given signals, as signal.Notify does, on a channel that receives
// each one the runtime queues.
func notify(signals ...syscall.Signal) <-chan syscall.Signal {
	for _, s := range signals {
		signalEnable(uint32(s))
	}
	received := make(chan syscall.Signal, 1)
	go func() {
		for {
			received <- syscall.Signal(signalRecv())
		}
	}()
	return received
}
