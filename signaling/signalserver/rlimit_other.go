//go:build !unix

package signalserver

// processFileLimit is 0 (unknown): this system has no RLIMIT_NOFILE.
func processFileLimit() int { return 0 }
