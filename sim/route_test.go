package sim

import (
	"testing"
)

// After stabilisation, at most 10% of the links honest nodes open need the signaling server:
// the rest find a route through the overlay (issue 14, "Must show"). 10,000 nodes, or 2,000
// under -short. The figure after a mass failure is logged beside it (it is reported, not
// bounded: half the routes die with the nodes on them, and a NEIGHBOR to a crashed passive
// peer has no route by nature).
func TestServerSignalFraction(t *testing.T) {
	n := paperNodes
	if testing.Short() {
		n = 2000
	}
	e := DefaultExperiment(n)
	e.Config.Seed = 42
	e.Messages = 30
	e.SkipHealing = true
	r, err := Run(e)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d nodes at rest: %d link setups, %d needed the server: server_signal_fraction %.4f",
		n, r.LinkSetups, r.ServerSignals, r.ServerSignalFraction)
	if r.LinkSetups < uint64(n) {
		t.Fatalf("only %d link setups counted in %d rounds of %d nodes: each node's shuffle reply is one",
			r.LinkSetups, e.Messages/10, n)
	}
	if r.ServerSignalFraction > 0.10 {
		t.Errorf("server_signal_fraction %.4f at rest, want at most 0.10", r.ServerSignalFraction)
	}
	if r.StepErrors != 0 {
		t.Errorf("%d step errors", r.StepErrors)
	}

	// Without routing every setup needs the server: the counter measures routing, nothing else.
	off := DefaultExperiment(500)
	off.Messages, off.SkipHealing = 20, true
	off.Config.Routing.Enabled = false
	r, err = Run(off)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkSetups == 0 || r.ServerSignals != r.LinkSetups {
		t.Errorf("routing off: %d of %d setups needed the server, want all", r.ServerSignals, r.LinkSetups)
	}
}
