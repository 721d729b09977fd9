package gossip

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// inFlight is a message between two cores of a testNet.
type inFlight struct {
	from, to string
	msg      Message
}

// testNet holds cores by name and a single FIFO of messages between them: every link has zero
// latency and messages are delivered in the order they were sent, so a broadcast spreads in
// breadth-first order. Time moves only when the test says so.
type testNet struct {
	t     testing.TB
	cfg   Config
	seed  uint64
	cores map[string]*Core
	names []string // sorted
	now   time.Duration
	queue []inFlight

	// labels names message IDs m1, m2, ... in the order the harness first sees them, so that
	// golden output does not depend on random IDs.
	labels   map[MessageID]string
	byLabel  map[string]MessageID
	nextName int

	// out collects what the current command prints; mark is the queue length when the
	// command started, so that only the messages it queued are printed.
	out  strings.Builder
	mark int
	// gossipSent counts payload messages delivered per message ID (for RMR).
	gossipSent map[MessageID]int
	// delivered records which cores delivered each message, and how often.
	delivered map[MessageID]map[string]int
	// history records each core's deliveries that came by catch-up, in order.
	history map[string][]Delivery
	// sentBytes sums the estimated size of the messages each core sent, by type.
	sentBytes map[string]*[History + 1]int
}

func newTestNet(t testing.TB, cfg Config, seed uint64) *testNet {
	return &testNet{
		t: t, cfg: cfg, seed: seed,
		cores:      map[string]*Core{},
		labels:     map[MessageID]string{},
		byLabel:    map[string]MessageID{},
		gossipSent: map[MessageID]int{},
		delivered:  map[MessageID]map[string]int{},
		history:    map[string][]Delivery{},
		sentBytes:  map[string]*[History + 1]int{},
	}
}

// testConfig is DefaultConfig with round numbers for scenarios, and without catch-up, whose
// Digests would fill every Plumtree script (catch-up has its own: see catchup_test.go).
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.CatchUpWindow = 0
	cfg.NeighborHelloTimeout = 0 // no hello Digests either (hello_test.go has its own)
	cfg.LazyFlushInterval = 100 * time.Millisecond
	cfg.LazyBatchMax = 4
	cfg.MissingTimeout = time.Second
	cfg.GraftRetryTimeout = 500 * time.Millisecond
	cfg.OptimizationThreshold = 0
	cfg.OptimizationQuiet = 0 // the paper's rule; the scripts that test the guard set quiet=
	cfg.CacheMaxMessages = 16
	cfg.CacheMaxAge = time.Minute
	cfg.SeenMaxIDs = 64
	cfg.SeenMaxAge = 10 * time.Minute
	cfg.MissingMaxIDs = 16
	cfg.MissingMaxAnnouncers = 4
	cfg.MaxPayload = 64
	return cfg
}

func (n *testNet) add(name string) *Core {
	if _, ok := n.cores[name]; ok {
		n.t.Fatalf("core %q exists", name)
	}
	cfg := n.cfg
	cfg.Self = name
	// Each core gets its own stream derived from the net's seed and its position.
	cfg.Rand = rand.New(rand.NewPCG(n.seed, uint64(len(n.names))+1))
	c, err := New(cfg)
	if err != nil {
		n.t.Fatalf("New(%q): %v", name, err)
	}
	c.Tick(n.now)
	n.cores[name] = c
	n.names = append(n.names, name)
	slices.Sort(n.names)
	return c
}

func (n *testNet) core(name string) *Core {
	c, ok := n.cores[name]
	if !ok {
		n.t.Fatalf("no core %q", name)
	}
	return c
}

func (n *testNet) label(id MessageID) string {
	if l, ok := n.labels[id]; ok {
		return l
	}
	n.nextName++
	l := fmt.Sprintf("m%d", n.nextName)
	n.labels[id] = l
	n.byLabel[l] = id
	return l
}

// idFor returns the ID labelled l, inventing one for a label not seen yet.
func (n *testNet) idFor(l string) MessageID {
	if id, ok := n.byLabel[l]; ok {
		return id
	}
	var id MessageID
	copy(id[:], "invented:"+l)
	n.labels[id] = l
	n.byLabel[l] = id
	return id
}

func (n *testNet) printf(format string, args ...any) { fmt.Fprintf(&n.out, format, args...) }

func (n *testNet) link(a, b string) {
	n.core(a).NeighborUp(b)
	n.core(b).NeighborUp(a)
	n.collect(a)
	n.collect(b)
}

func (n *testNet) unlink(a, b string) {
	n.core(a).NeighborDown(b)
	n.core(b).NeighborDown(a)
	n.collect(a)
	n.collect(b)
	// A closed link loses what was on it.
	n.queue = slices.DeleteFunc(n.queue, func(f inFlight) bool {
		return (f.from == a && f.to == b) || (f.from == b && f.to == a)
	})
}

func (n *testNet) broadcast(name string, payload []byte) MessageID {
	id, err := n.core(name).Broadcast(payload)
	if err != nil {
		n.t.Fatalf("Broadcast at %s: %v", name, err)
	}
	n.label(id)
	n.collect(name)
	return id
}

// collect takes a core's Ready: records and prints deliveries, queues messages.
func (n *testNet) collect(name string) {
	rd := n.core(name).Ready()
	for _, d := range rd.Deliveries {
		if n.delivered[d.ID] == nil {
			n.delivered[d.ID] = map[string]int{}
		}
		n.delivered[d.ID][name]++
		mark := ""
		if d.History {
			mark = " (history)"
			n.history[name] = append(n.history[name], d)
		}
		n.printf("  %s delivers %s origin=%s hops=%d payload=%q%s\n", name, n.label(d.ID), d.Origin, d.Hops, d.Payload, mark)
	}
	for _, e := range rd.Messages {
		n.queue = append(n.queue, inFlight{from: name, to: e.To, msg: e.Msg})
		if n.sentBytes[name] == nil {
			n.sentBytes[name] = new([History + 1]int)
		}
		n.sentBytes[name][e.Msg.Type] += estimateSize(&e.Msg)
	}
	for _, mb := range rd.Misbehaviour {
		if mb.Reason >= ExcessIHave {
			n.printf("  %s reports %s about %s: %v\n", name, mb.Peer, n.label(mb.ID), mb.Reason)
			continue
		}
		n.printf("  %s refuses %s origin=%s from %s: %v\n", name, n.label(mb.ID), mb.Origin, mb.Peer, mb.Reason)
	}
}

func (n *testNet) format(f inFlight) string {
	m := f.msg
	s := fmt.Sprintf("%s->%s %v", f.from, f.to, m.Type)
	switch m.Type {
	case Gossip:
		s += fmt.Sprintf(" %s origin=%s hops=%d", n.label(m.ID), m.Origin, m.Hops)
	case IHave:
		parts := make([]string, len(m.IHave))
		for i, a := range m.IHave {
			parts[i] = fmt.Sprintf("%s@%d", n.label(a.ID), a.Hops)
		}
		s += " [" + strings.Join(parts, " ") + "]"
	case History:
		s += fmt.Sprintf(" %s origin=%s hops=%d", n.label(m.ID), m.Origin, m.Hops)
	case Digest:
		counts := make([]string, len(m.Spans))
		for i, sp := range m.Spans {
			counts[i] = fmt.Sprint(sp.Count)
		}
		s += " counts=" + strings.Join(counts, ",")
	case Have, Pull:
		if m.Reply {
			s += " reply"
		}
		refs := make([]string, len(m.Refs))
		for i, r := range m.Refs {
			refs[i] = n.label(r.ID)
		}
		s += " [" + strings.Join(refs, " ") + "]"
	case Graft:
		if m.ID == (MessageID{}) {
			s += " (tree only)"
		} else {
			s += " " + n.label(m.ID)
		}
	}
	return s
}

// step delivers one in-flight message and collects the receiver's output.
func (n *testNet) step(f inFlight) {
	n.printf("%s\n", n.format(f))
	c, ok := n.cores[f.to]
	if !ok {
		n.printf("  (no core %s: lost)\n", f.to)
		return
	}
	if f.msg.Type == Gossip {
		n.gossipSent[f.msg.ID]++
	}
	if err := c.Step(f.from, f.msg); err != nil {
		n.printf("  error: %v\n", err)
	}
	n.collect(f.to)
}

// deliverAll delivers queued messages in FIFO order until none is left.
func (n *testNet) deliverAll() {
	for steps := 0; len(n.queue) > 0; steps++ {
		if steps > 10_000_000 {
			n.t.Fatalf("deliver: no quiescence")
		}
		f := n.queue[0]
		n.queue = n.queue[1:]
		n.step(f)
	}
}

// deliverOne delivers the first queued message from a to b.
func (n *testNet) deliverOne(from, to string) bool {
	for i, f := range n.queue {
		if f.from == from && f.to == to {
			n.queue = slices.Delete(n.queue, i, i+1)
			n.step(f)
			return true
		}
	}
	return false
}

// tick advances every core's clock by d, in name order.
func (n *testNet) tick(d time.Duration) {
	n.now += d
	for _, name := range n.names {
		n.cores[name].Tick(n.now)
		n.collect(name)
	}
}

// printQueue prints the in-flight messages from position start on.
func (n *testNet) printQueue(prefix string, start int) {
	for _, f := range n.queue[start:] {
		n.printf("%s%s\n", prefix, n.format(f))
	}
}

func (n *testNet) peers(names []string) {
	if len(names) == 0 {
		names = n.names
	}
	for _, name := range names {
		c := n.core(name)
		n.printf("%s: eager=%v lazy=%v\n", name, c.EagerPeers(), c.LazyPeers())
	}
}
