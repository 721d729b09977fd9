package membership

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchCore returns a core with full views (5 active, 30 passive), as in a settled overlay.
func benchCore(b *testing.B) *Core {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Self = "self"
	cfg.Rand = rand.New(rand.NewPCG(1, 1))
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	c.Tick(0)
	for i := range cfg.ActiveSize {
		c.active = append(c.active, fmt.Sprintf("active-%d", i))
		c.activeSince = append(c.activeSince, 0)
	}
	for i := range cfg.PassiveSize {
		c.addPassive(fmt.Sprintf("passive-%d", i))
	}
	c.joined = true
	return c
}

// BenchmarkStep measures Step on the messages a settled overlay carries (shuffle walks and
// replies, join walks, refused low-priority requests), with full views.
func BenchmarkStep(b *testing.B) {
	c := benchCore(b)
	sample := []string{"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"}
	type in struct {
		from string
		msg  Message
	}
	mix := []in{
		{"active-0", Message{Type: Shuffle, Node: "far", TTL: 5, Nodes: sample}},      // forward
		{"active-1", Message{Type: Shuffle, Node: "far", TTL: 0, Nodes: sample}},      // reply + merge
		{"replier", Message{Type: ShuffleReply, Nodes: sample}},                       // merge
		{"active-2", Message{Type: ForwardJoin, Node: "joiner", TTL: 4}},              // forward
		{"active-3", Message{Type: ForwardJoin, Node: "joiner2", TTL: 3}},             // forward + passive
		{"stranger", Message{Type: Neighbor}},                                         // refused
		{"active-4", Message{Type: Shuffle, Node: "far2", TTL: 3, Nodes: sample[:4]}}, // forward
		{"passive-3", Message{Type: NeighborReply}},                                   // refusal, ignored
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := &mix[i%len(mix)]
		if err := c.Step(m.from, m.msg); err != nil {
			b.Fatal(err)
		}
		c.Ready()
	}
}

// BenchmarkOverlayRound runs shuffle rounds of a settled 1,000-node overlay through the
// test network and reports the cost per delivered message (Step plus the harness).
func BenchmarkOverlayRound(b *testing.B) {
	n := randomRun(b, 9, 1000, nil)
	b.ReportAllocs()
	b.ResetTimer()
	start := n.delivered
	for i := 0; i < b.N; i++ {
		if !n.advance(n.cfg.ShuffleInterval, 10_000_000) {
			b.Fatal("not quiet")
		}
	}
	b.StopTimer()
	msgs := n.delivered - start
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(msgs), "ns/msg")
	b.ReportMetric(float64(msgs)/float64(b.N)/float64(len(n.liveNames())), "msgs/node/round")
}
