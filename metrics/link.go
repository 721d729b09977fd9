package metrics

import "github.com/prometheus/client_golang/prometheus"

// LinkProofSource is what LinkProofCollector reads: *rtcnode.Node provides it (from its
// WebRTC links' counters), so this package needs no WebRTC.
type LinkProofSource interface {
	// LinkProofsRefused returns how many links were closed because the peer's link proof was
	// missing or bad, and because its proven key lacked the proof of work required, and the
	// difficulty now required of peers (0 when none).
	LinkProofsRefused() (badProof, insufficientWork uint64, powBits int)
}

// LinkProofCollector exports what a node's links refused at the link proof: the defence
// against impersonation and, where identities cost work, against Sybils that skipped it.
type LinkProofCollector struct {
	src             LinkProofSource
	refused, powBit *prometheus.Desc
}

// NewLinkProofCollector returns a collector reading s at every scrape.
func NewLinkProofCollector(s LinkProofSource) *LinkProofCollector {
	return &LinkProofCollector{
		src: s,
		refused: newDesc("link", "proofs_refused_total",
			"Links closed at the link proof, by reason: bad_proof (missing, malformed or forged) or insufficient_work (the peer's key lacks the proof of work required).", "reason"),
		powBit: newDesc("link", "pow_difficulty", "Proof-of-work difficulty, in bits, required of link peers' identity keys (0: none)."),
	}
}

// Describe implements prometheus.Collector.
func (c *LinkProofCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.refused
	ch <- c.powBit
}

// Collect implements prometheus.Collector.
func (c *LinkProofCollector) Collect(ch chan<- prometheus.Metric) {
	bad, work, bits := c.src.LinkProofsRefused()
	ch <- counter(c.refused, bad, "bad_proof")
	ch <- counter(c.refused, work, "insufficient_work")
	ch <- gauge(c.powBit, float64(bits))
}
