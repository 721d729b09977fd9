//go:build !linux

package turnserver

import "syscall"

const reusePortSupported = false

func setReusePort(syscall.RawConn) error { return nil }

func forceBuffer(syscall.RawConn, bool, int) bool { return false }

func socketBuffer(syscall.RawConn, bool) int { return 0 }
