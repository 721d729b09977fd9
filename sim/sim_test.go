package sim

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
)

func TestCalendarQueueOrder(t *testing.T) {
	q := newCalendarQueue()
	// Same millisecond: insertion order. Far events: by time, then insertion.
	q.push(event{at: 5, to: 1})
	q.push(event{at: 3, to: 2})
	q.push(event{at: 5, to: 3})
	q.push(event{at: ringSize + 10, to: 4})
	q.push(event{at: ringSize + 10, to: 5})
	q.push(event{at: 2 * ringSize, to: 6})
	var got []int32
	for q.len() > 0 {
		next, ok := q.nextTime()
		if !ok {
			t.Fatal("queue has events but no next time")
		}
		q.advance(next)
		q.runBucket(func(ev *event) {
			if ev.at != next {
				t.Fatalf("event for %d due at %d popped at %d", ev.to, ev.at, next)
			}
			got = append(got, ev.to)
			// An event scheduled for the current millisecond while the bucket runs runs too,
			// after the ones already there, even across chunk boundaries.
			if ev.to == 2 {
				for k := range chunkSize + 1 {
					q.push(event{at: next, to: int32(100 + k)})
				}
			}
		})
	}
	want := []int32{2}
	for k := range chunkSize + 1 {
		want = append(want, int32(100+k))
	}
	want = append(want, 1, 3, 4, 5, 6)
	if len(got) != len(want) {
		t.Fatalf("popped %v, want %v", got, want)
	}
	for k := range want {
		if got[k] != want[k] {
			t.Fatalf("popped %v, want %v", got, want)
		}
	}
	// An event scheduled in the past runs now.
	q.push(event{at: 1, to: 7})
	if next, _ := q.nextTime(); next != q.now {
		t.Errorf("past event scheduled at %d, want now (%d)", next, q.now)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"latency below resolution": func(c *Config) { c.LatencyMin = 0 },
		"latency max below min":    func(c *Config) { c.LatencyMax = c.LatencyMin - time.Millisecond },
		"loss of one":              func(c *Config) { c.Loss = 1 },
		"negative heartbeat":       func(c *Config) { c.HeartbeatTimeout = -1 },
		"no detection":             func(c *Config) { c.DetectionDelay = 0 },
		"no contacts":              func(c *Config) { c.ContactCount = 0 },
		"membership template":      func(c *Config) { c.Membership.ActiveSize = 0 },
		"gossip template":          func(c *Config) { c.Gossip.MaxPayload = 0 },
	} {
		c := DefaultConfig()
		mutate(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
	for name, mutate := range map[string]func(*Experiment){
		"one node":         func(e *Experiment) { e.Nodes = 1 },
		"unknown protocol": func(e *Experiment) { e.Protocol = "gossipsub" },
		"fail everything":  func(e *Experiment) { e.FailFraction = 1 },
		"churn no rounds":  func(e *Experiment) { e.Churn, e.ChurnRounds = 5, 0 },
		"zero window":      func(e *Experiment) { e.MessageWindow = 0 },
	} {
		e := DefaultExperiment(100)
		mutate(&e)
		if _, err := Run(e); err == nil {
			t.Errorf("%s: Run accepted the experiment", name)
		}
	}
}

func smallExperiment(p Protocol) Experiment {
	e := DefaultExperiment(500)
	e.Protocol = p
	e.Messages = 50
	e.StabilizationRounds = 10
	e.Config.Seed = 7
	return e
}

// TestDeterministic runs the same experiment twice: every figure except the machine's effort
// must be identical, byte for byte.
func TestDeterministic(t *testing.T) {
	for _, p := range []Protocol{Plumtree, Flood} {
		e := smallExperiment(p)
		e.FailFraction = 0.3
		var outs [2][]byte
		for k := range outs {
			r, err := Run(e)
			if err != nil {
				t.Fatal(err)
			}
			r.WallSeconds, r.PeakHeapBytes = 0, 0
			outs[k], err = json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("%s: two runs of seed %d differ:\n%s\n%s", p, e.Config.Seed, outs[0], outs[1])
		}
		e.Config.Seed++
		r, err := Run(e)
		if err != nil {
			t.Fatal(err)
		}
		r.WallSeconds, r.PeakHeapBytes = 0, 0
		other, _ := json.Marshal(r)
		if bytes.Equal(outs[0], other) {
			t.Errorf("%s: seeds %d and %d gave identical runs; the seed is not used", p, e.Config.Seed-1, e.Config.Seed)
		}
	}
}

// TestSmallNetwork checks the simulator's bookkeeping on a network small enough to reason about.
func TestSmallNetwork(t *testing.T) {
	s, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := s.AddNode(); err != nil {
			t.Fatal(err)
		}
		s.RunFor(100 * time.Millisecond)
	}
	s.RunFor(10 * time.Second)
	g := s.Graph(0)
	if !g.Connected || g.Isolated != 0 || g.AsymmetricLinks != 0 {
		t.Fatalf("20 nodes after 10 s: %+v", g)
	}
	// Node IDs resolve to their index; anything else does not.
	if j, ok := s.lookup(nodeID(13)); !ok || j != 13 {
		t.Errorf("lookup(%q) = %d, %v", nodeID(13), j, ok)
	}
	for _, id := range []string{"", "n", nodeID(20), nodeID(-1), "x0000013", "n00000a3", "n000000013"} {
		if j, ok := s.lookup(id); ok {
			t.Errorf("lookup(%q) = %d for a node that does not exist", id, j)
		}
	}
	// Latencies are fixed per link and symmetric.
	if s.latency(3, 7) != s.latency(7, 3) || s.latency(3, 7) != s.latency(3, 7) {
		t.Error("link latency is not a fixed, symmetric function of the pair")
	}
	lo, hi := ms(DefaultConfig().LatencyMin), ms(DefaultConfig().LatencyMax)
	for a := int32(0); a < 20; a++ {
		for b := a + 1; b < 20; b++ {
			if l := s.latency(a, b); l < lo || l > hi {
				t.Fatalf("latency %d ms outside [%d, %d]", l, lo, hi)
			}
		}
	}
	// A broadcast reaches every node once; a crashed node's neighbours find out by sending.
	id, err := s.Broadcast(0, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	s.RunFor(5 * time.Second)
	r, err := s.Measure(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Reached != 20 || r.Eligible != 20 || r.Reliability != 1 {
		t.Fatalf("broadcast over 20 nodes: %+v", r)
	}
	// A message stays followed until Forget: measured again, it reads the same.
	if again, err := s.Measure(id, 0); err != nil || again != r {
		t.Errorf("measured again: %+v, %v; want %+v", again, err, r)
	}
	s.Forget(id)
	if _, err := s.Measure(id, 0); err == nil {
		t.Error("measuring a forgotten message succeeded")
	}
	s.Crash(5)
	if _, err := s.Broadcast(5, nil); err == nil {
		t.Error("a crashed node broadcast")
	}
	before := s.Counters().SendsToCrashed
	for k := range 5 {
		id, err := s.Broadcast(int32(k*3%20), []byte("after crash"))
		if err != nil {
			t.Fatal(err)
		}
		s.RunFor(5 * time.Second)
		if _, err := s.Measure(id, 0); err != nil {
			t.Fatal(err)
		}
	}
	if s.Counters().SendsToCrashed == before {
		t.Error("no send to the crashed node was noticed")
	}
	s.RunFor(5 * time.Second)
	g = s.Graph(0)
	if g.LiveNodes != 19 || g.DeadLinks != 0 || !g.Connected {
		t.Errorf("after the crash and repairs: %+v", g)
	}
	c := s.Counters()
	if c.StepErrors != 0 || c.DuplicateDeliveries != 0 || c.MessagesToUnknownAddresses != 0 {
		t.Errorf("counters: %+v", c)
	}
}

func BenchmarkSim1000Nodes(b *testing.B) {
	for b.Loop() {
		e := DefaultExperiment(1000)
		e.Messages = 100
		e.StabilizationRounds = 10
		if _, err := Run(e); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPartition cuts a 1,000-node network in two: no message crosses, each side repairs
// itself into a connected overlay of its own, and broadcasts reach every node of their side.
func TestPartition(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Seed = 11
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	round := cfg.Membership.ShuffleInterval
	for i := range n {
		s.RunUntil(time.Duration(i) * 5 * round / n)
		if _, err := s.AddNode(); err != nil {
			t.Fatal(err)
		}
	}
	s.RunFor(10 * round)
	var left, right []int32
	for i := int32(0); i < n; i++ {
		if i%2 == 0 {
			left = append(left, i)
		} else {
			right = append(right, i)
		}
	}
	s.Partition(left) // the right half is the other group
	s.RunFor(5 * round)
	// A link is one-sided for a moment while its JOIN or NEIGHBOR handshake is in flight;
	// only one that lasts is a fault. Handshakes take a round trip (at most 100 ms here).
	g := s.Graph(0)
	for try := 0; try < 10 && g.AsymmetricLinks > 0; try++ {
		s.RunFor(50 * time.Millisecond)
		g = s.Graph(0)
	}
	if g.Components != 2 || g.Isolated != 0 || g.AsymmetricLinks != 0 {
		t.Fatalf("after the partition: %d components, %d isolated, %d asymmetric links; want 2, 0, 0", g.Components, g.Isolated, g.AsymmetricLinks)
	}
	for _, side := range [][]int32{left, right} {
		id, err := s.Broadcast(side[0], []byte("one side"))
		if err != nil {
			t.Fatal(err)
		}
		s.RunFor(5 * time.Second)
		b := s.track[id]
		delivered := func(i int32) bool { return b.delivered[i/64]&(1<<(uint(i)%64)) != 0 }
		reached := 0
		for _, i := range side {
			if delivered(i) {
				reached++
			}
		}
		crossed := b.count - reached
		if reached != len(side) || crossed != 0 {
			t.Errorf("broadcast from %d: reached %d of its %d side, %d across the partition", side[0], reached, len(side), crossed)
		}
		if _, err := s.Measure(id, 0); err != nil {
			t.Fatal(err)
		}
	}
	// HyParView has no mechanism to merge two overlays that each repaired on their own: after
	// Heal the halves join again only where a passive view still names a node of the other
	// side and a repair happens to pick it. Report what happened rather than assume it.
	s.Heal()
	s.RunFor(10 * round)
	g = s.Graph(0)
	t.Logf("10 rounds after healing: %d components, largest %d of %d", g.Components, g.LargestComponent, g.LiveNodes)
	if c := s.Counters(); c.StepErrors != 0 || c.DuplicateDeliveries != 0 {
		t.Errorf("counters: %+v", c)
	}
}

// Small stable overlays, like the demo's, must not keep reshuffling their links: every
// neighbour change opens or closes a real link and costs the broadcast tree an edge. With an
// odd total of active slots (11 nodes × 5) one slot is always free and moves around through
// the escalation in membership's retryRepair; that costs a bounded trickle of changes, and
// otherwise a stable overlay does not change at all.
func TestSmallOverlayIsCalm(t *testing.T) {
	for _, tc := range []struct {
		nodes int
		max   float64 // neighbour changes per node per simulated minute
	}{{8, 0}, {10, 0}, {11, 3}, {20, 0}, {50, 0}} {
		e := DefaultExperiment(tc.nodes)
		e.Messages = 60
		res, err := Run(e)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d nodes: %.2f neighbour changes per node-minute, reliability %.3f", tc.nodes, res.NeighborChangesPerNodeMinute, res.Reliability)
		if res.NeighborChangesPerNodeMinute > tc.max || res.Reliability != 1 {
			t.Errorf("%d nodes: %.2f neighbour changes per node-minute (max %.0f), reliability %.3f",
				tc.nodes, res.NeighborChangesPerNodeMinute, tc.max, res.Reliability)
		}
	}
}

// TestCatchUpLateJoiner: a node that joins after a broadcast gets it by catch-up as long as
// the message is within the gossip CatchUpWindow; one that joins later than the window after
// it cannot get it, by design, and lowers the eventual figure.
func TestCatchUpLateJoiner(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Seed = 5
	cfg.Gossip.CatchUpWindow = 30 * time.Second
	cfg.Gossip.SeenMaxAge = SeenMaxAgeFor(cfg.Gossip)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 30 {
		if _, err := s.AddNode(); err != nil {
			t.Fatal(err)
		}
		s.RunFor(200 * time.Millisecond)
	}
	s.RunFor(30 * time.Second)
	id, err := s.Broadcast(0, []byte("before the late joiners"))
	if err != nil {
		t.Fatal(err)
	}
	s.RunFor(5 * time.Second)
	soon, err := s.AddNode() // 5 s after the message: within the window
	if err != nil {
		t.Fatal(err)
	}
	s.RunFor(60 * time.Second)
	late, err := s.AddNode() // 65 s after it: outside the 30 s window
	if err != nil {
		t.Fatal(err)
	}
	s.RunFor(30 * time.Second)
	r, err := s.Measure(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Eventual(&r); err != nil {
		t.Fatal(err)
	}
	b := s.track[id]
	if !b.has(soon) || b.has(late) {
		t.Errorf("joined 5 s after the message: delivered %v (want true); joined 65 s after with a 30 s window: delivered %v (want false)", b.has(soon), b.has(late))
	}
	if r.EventualAlive != 32 || r.EventualReached != 31 {
		t.Errorf("eventual: %d of %d alive nodes delivered it; want 31 of 32", r.EventualReached, r.EventualAlive)
	}
	if r.Eligible != 30 || r.Reached != 30 {
		t.Errorf("immediate (nodes there before the message): %d of %d; want 30 of 30", r.Reached, r.Eligible)
	}
	if c := s.Counters(); c.HistoryDeliveries != 1 || c.DuplicateDeliveries != 0 || c.StepErrors != 0 {
		t.Errorf("counters: %d deliveries by catch-up (want 1), %d duplicates, %d step errors", c.HistoryDeliveries, c.DuplicateDeliveries, c.StepErrors)
	}
}

// TestEventualAfterMassFailure is TestPaperMassFailureEventual's 80% case on 1,000 nodes:
// the tree loses broadcasts right after the crash, catch-up brings each to every survivor.
func TestEventualAfterMassFailure(t *testing.T) {
	e := DefaultExperiment(1000)
	e.Messages, e.StabilizationRounds, e.FailFraction, e.SkipHealing = 100, 10, 0.8, true
	e.Config.Seed = 42
	r, err := Run(e)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("1,000 nodes, 80%% crashed: immediate %.4f (min %.4f), eventual %.4f (min %.4f), %d deliveries by catch-up",
		r.Reliability, r.ReliabilityMin, r.EventualReliability, r.EventualReliabilityMin, r.HistoryDeliveries)
	if r.EventualReliability != 1 || r.EventualReliabilityMin != 1 || r.DuplicateDeliveries != 0 || r.StepErrors != 0 {
		t.Errorf("eventual reliability %.5f (min %.5f), %d duplicates, %d step errors; want 1, 1, 0, 0",
			r.EventualReliability, r.EventualReliabilityMin, r.DuplicateDeliveries, r.StepErrors)
	}
	if r.Reliability == 1 {
		t.Error("the tree lost nothing: this seed no longer tests catch-up")
	}
}

// atRest is the at-rest catch-up experiment: a stable overlay, one 256-byte broadcast a
// second.
func atRest(nodes, rounds int) Experiment {
	e := DefaultExperiment(nodes)
	e.Messages, e.StabilizationRounds, e.PayloadSize = 100, rounds, 256
	e.Config.Seed = 42
	return e
}

// TestCatchUpAtRest: over a stable overlay nothing is missed, so catch-up costs only its
// summary Digests, at most 5% of the payload bytes (deterministic counts, not time).
func TestCatchUpAtRest(t *testing.T) {
	r, err := Run(atRest(1000, 10))
	if err != nil {
		t.Fatal(err)
	}
	ratio := r.CatchUpBytesPerNodeRound / r.PayloadBytesPerNodeRound
	t.Logf("1,000 nodes at rest: %.1f catch-up bytes per node-round, %.0f payload bytes: %.2f%%", r.CatchUpBytesPerNodeRound, r.PayloadBytesPerNodeRound, 100*ratio)
	if ratio > 0.05 || r.HistoryDeliveries != 0 || r.EventualReliabilityMin != 1 {
		t.Errorf("at rest: catch-up %.2f%% of the payload bytes, %d deliveries by catch-up, eventual min %.5f; want <= 5%%, 0, 1",
			100*ratio, r.HistoryDeliveries, r.EventualReliabilityMin)
	}
}

// BenchmarkCatchUpAtRest reports catch-up's overhead over a stable 10,000-node overlay with
// one 256-byte broadcast a second (go test -run '^$' -bench CatchUpAtRest ./sim): catch-up
// and payload bytes per node and membership round, and their ratio in percent. The figures
// are deterministic; only the time varies.
func BenchmarkCatchUpAtRest(b *testing.B) {
	var r Result
	for b.Loop() {
		var err error
		if r, err = Run(atRest(10000, 50)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(r.CatchUpBytesPerNodeRound, "catchup-B/node-round")
	b.ReportMetric(r.PayloadBytesPerNodeRound, "payload-B/node-round")
	b.ReportMetric(100*r.CatchUpBytesPerNodeRound/r.PayloadBytesPerNodeRound, "catchup-%")
}

// TestWireSize: catch-up messages are counted at the size the runtime sends them, with
// times in Unix milliseconds (a summary Digest: 30 or 31 bytes, as package wire documents).
func TestWireSize(t *testing.T) {
	id := gossip.MessageID{1}
	for _, c := range []struct {
		m        gossip.Message
		min, max int
	}{
		{gossip.Message{Type: gossip.Digest, Salt: 7, Spans: []gossip.Span{{From: 12_000, To: 60_000, Count: 48, Hash: 99}}}, 30, 31},
		{gossip.Message{Type: gossip.Pull, Refs: []gossip.MessageRef{{Time: 12_000, ID: id}, {Time: 12_500, ID: id}}}, 3 + 1 + 2*17 + 6, 3 + 1 + 2*18 + 6},
		{gossip.Message{Type: gossip.History, ID: id, Origin: nodeID(3), Hops: 2, Seq: 1, Time: 12_000, Payload: make([]byte, 256)},
			3 + 16 + 9 + 1 + 1 + 6 + 2 + 256 + 1, 3 + 16 + 9 + 1 + 1 + 6 + 2 + 256 + 1},
	} {
		size, _, ok := wireSize(nil, &c.m)
		if !ok || size < c.min || size > c.max {
			t.Errorf("%v: %d bytes (ok %v), want %d to %d", c.m.Type, size, ok, c.min, c.max)
		}
	}
	if _, _, ok := wireSize(nil, &gossip.Message{Type: gossip.Pull}); ok {
		t.Error("a Pull without refs, which wire refuses, was counted")
	}
}
