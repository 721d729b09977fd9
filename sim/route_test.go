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
	t.Logf("%d nodes at rest: %d link setups, %d needed the server, %d shuffle replies routed: server_signal_fraction %.4f",
		n, r.LinkSetups, r.ServerSignals, r.ShuffleRepliesRouted, r.ServerSignalFraction)
	exchanges := r.LinkSetups + r.ShuffleRepliesRouted
	if exchanges < uint64(n) {
		t.Fatalf("only %d exchanges with non-neighbours counted in %d rounds of %d nodes: each node's shuffle reply is one",
			exchanges, e.Messages/10, n)
	}
	// A shuffle reply retraces the walk that just brought the shuffle: nearly all of them go
	// through the overlay and open no link.
	if r.ShuffleRepliesRouted < exchanges*9/10 {
		t.Errorf("%d of %d exchanges were shuffle replies routed through the overlay, want at least 90%%", r.ShuffleRepliesRouted, exchanges)
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
	if r.LinkSetups == 0 || r.ServerSignals != r.LinkSetups || r.ShuffleRepliesRouted != 0 {
		t.Errorf("routing off: %d of %d setups needed the server, %d shuffle replies routed; want all, 0",
			r.ServerSignals, r.LinkSetups, r.ShuffleRepliesRouted)
	}
}

// With the signaling server gone at a crash of half the nodes, the survivors refill their
// active views through links signalled by the overlay alone; without routing they cannot. The
// nodes the crash left with no live neighbour stay cut off either way: no route reaches them,
// and only the server could (so the components are the same with and without routing).
func TestServerGoneRefillsViews(t *testing.T) {
	run := func(routing bool) Result {
		e := DefaultExperiment(500)
		e.Config.Seed, e.Messages, e.FailFraction, e.ServerGone = 42, 30, 0.5, true
		e.SkipHealing = true
		e.Config.Routing.Enabled = routing
		r, err := Run(e)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	on, off := run(true), run(false)
	t.Logf("server gone at a 50%% crash, 500 nodes: active view %.2f with routing, %.2f without; %d components (%d isolated) with, %d (%d) without; reliability %.4f / %.4f",
		on.ActiveViewAvg, off.ActiveViewAvg, on.Components, on.Isolated, off.Components, off.Isolated, on.Reliability, off.Reliability)
	if on.ActiveViewAvg < 4 {
		t.Errorf("active views %.2f on average with routing, want at least 4 of 5", on.ActiveViewAvg)
	}
	if off.ActiveViewAvg >= on.ActiveViewAvg {
		t.Errorf("active views %.2f without routing, %.2f with: routing did not help", off.ActiveViewAvg, on.ActiveViewAvg)
	}
	if on.LinkSetups == on.ServerSignals {
		t.Error("no setup found a route")
	}
}
