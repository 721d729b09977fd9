//go:build unix

package signalserver

import (
	"math"
	"syscall"
)

// processFileLimit is the soft RLIMIT_NOFILE, or 0 if it is unknown or unlimited.
func processFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if uint64(rl.Cur) >= math.MaxInt32 {
		return 0
	}
	return int(rl.Cur)
}
