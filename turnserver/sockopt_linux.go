//go:build linux

package turnserver

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported says whether several UDP listener sockets can share one
// port (SO_REUSEPORT), the kernel spreading clients over them by their
// addresses.
const reusePortSupported = true

func setReusePort(c syscall.RawConn) error {
	var sockErr error
	if err := c.Control(func(fd uintptr) {
		sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return sockErr
}

// forceBuffer asks for a buffer above net.core.rmem_max/wmem_max with
// SO_RCVBUFFORCE/SO_SNDBUFFORCE, which needs CAP_NET_ADMIN; it reports false
// without it, and the caller falls back to the capped SO_RCVBUF/SO_SNDBUF.
func forceBuffer(c syscall.RawConn, read bool, size int) bool {
	opt := syscall.SO_SNDBUFFORCE
	if read {
		opt = syscall.SO_RCVBUFFORCE
	}
	var sockErr error
	if err := c.Control(func(fd uintptr) {
		sockErr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, size)
	}); err != nil {
		return false
	}
	return sockErr == nil
}

// socketBuffer is the buffer the kernel actually gave (Linux reports double
// the requested size, the other half being its bookkeeping).
func socketBuffer(c syscall.RawConn, read bool) int {
	opt := syscall.SO_SNDBUF
	if read {
		opt = syscall.SO_RCVBUF
	}
	size := 0
	_ = c.Control(func(fd uintptr) {
		size, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt)
	})
	return size / 2
}
