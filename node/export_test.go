package node

// NewUnsigned starts a node whose broadcasts are neither signed nor verified: the baseline of
// BenchmarkDeliveredOverOneLink. Only the package's tests can reach it.
func NewUnsigned(cfg Config) (*Node, error) { return newNode(cfg, false) }

// IsIdleCloseByPeer exposes isIdleCloseByPeer to the tests.
var IsIdleCloseByPeer = isIdleCloseByPeer
