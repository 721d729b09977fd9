package routing

import (
	"errors"
	"testing"
	"time"
)

func newRouter(t *testing.T, self string, neighbours ...string) *Router {
	t.Helper()
	r, err := New(self, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighbours {
		r.NeighborUp(n)
	}
	r.Ready() // the VIEW announcements
	return r
}

func envelope(src, dst string) Message {
	return Message{Type: Routed, Source: src, Target: dst, Kind: KindSignal, Body: []byte("offer")}
}

// A walk's reverse path, recorded at every hop, carries an envelope back to the walk's start.
func TestReversePathRetracesWalk(t *testing.T) {
	// Walk: a -> b -> c -> d (a's walk). Each hop learns "a via previous hop".
	b := newRouter(t, "b", "a", "c")
	c := newRouter(t, "c", "b", "d")
	d := newRouter(t, "d", "c")
	b.Learn(0, "a", "a", 1) // a neighbour: a no-op route, still fine
	c.Learn(0, "a", "b", 2)
	d.Learn(0, "a", "c", 3)

	if err := d.Send(time.Second, envelope("d", "a")); err != nil {
		t.Fatalf("d.Send: %v", err)
	}
	rd := d.Ready()
	max := DefaultConfig().MaxHops
	if len(rd.Messages) != 1 || rd.Messages[0].To != "c" || rd.Messages[0].Msg.HopLimit != max {
		t.Fatalf("d sent %+v, want one envelope to c with hop limit %d", rd.Messages, max)
	}
	hop := func(r *Router, from string, m Message) Envelope {
		t.Helper()
		if err := r.Step(time.Second, from, m); err != nil {
			t.Fatal(err)
		}
		rd := r.Ready()
		if len(rd.Messages) != 1 {
			t.Fatalf("%s: %d messages, want 1", r.self, len(rd.Messages))
		}
		return rd.Messages[0]
	}
	e := hop(c, "d", rd.Messages[0].Msg)
	if e.To != "b" || e.Msg.HopLimit != max-1 {
		t.Fatalf("c forwarded %+v, want to b with hop limit %d", e, max-1)
	}
	e = hop(b, "c", e.Msg)
	if e.To != "a" || e.Msg.HopLimit != max-2 {
		t.Fatalf("b forwarded %+v, want to a with hop limit %d", e, max-2)
	}
	a := newRouter(t, "a", "b")
	if err := a.Step(time.Second, "b", e.Msg); err != nil {
		t.Fatal(err)
	}
	if rd := a.Ready(); len(rd.Deliveries) != 1 || string(rd.Deliveries[0].Body) != "offer" || rd.Deliveries[0].Source != "d" {
		t.Fatalf("a got %+v, want the offer from d delivered", rd)
	}
	// The envelope taught c and b the way back to d: the answer needs no walk.
	if !b.Known(time.Second, "d") || !c.Known(time.Second, "d") {
		t.Fatal("relays did not learn the reverse path to the source")
	}
}

func TestViewGivesTwoHopRoutes(t *testing.T) {
	r := newRouter(t, "a", "b")
	if r.Known(0, "x") {
		t.Fatal("x known before b's view")
	}
	if err := r.Step(0, "b", Message{Type: View, Nodes: []string{"a", "x"}}); err != nil {
		t.Fatal(err)
	}
	if !r.Known(0, "x") {
		t.Fatal("x not known after b's view named it")
	}
	r.NeighborDown("b")
	if r.Known(0, "x") {
		t.Fatal("x still known after b left")
	}
	// A neighbour change is announced to every neighbour.
	r.NeighborUp("c")
	r.NeighborUp("d")
	rd := r.Ready()
	if len(rd.Messages) != 2 || rd.Messages[0].Msg.Type != View || len(rd.Messages[0].Msg.Nodes) != 2 {
		t.Fatalf("Ready after two NeighborUp: %+v, want a VIEW of 2 to each", rd.Messages)
	}
}

func TestRoutesExpireAndDieWithTheirNeighbour(t *testing.T) {
	r := newRouter(t, "a", "b", "c")
	r.Learn(0, "x", "b", 3)
	if !r.Known(time.Second, "x") {
		t.Fatal("x not known")
	}
	if r.Known(DefaultConfig().EntryTTL, "x") {
		t.Fatal("x still known after EntryTTL")
	}
	r.Learn(0, "y", "c", 3)
	r.NeighborDown("c")
	if r.Known(time.Second, "y") {
		t.Fatal("y known through a neighbour that left")
	}
	r.Learn(0, "z", "q", 2) // q is no neighbour: nothing learnt
	if r.Known(0, "z") {
		t.Fatal("route through a non-neighbour accepted")
	}
}

// A hint sends the envelope toward the node that knows the target, which routes it on.
func TestHintWaypoint(t *testing.T) {
	a := newRouter(t, "a", "b")
	a.Learn(0, "w", "b", 2)
	a.Hint(0, "x", "w")
	if err := a.Send(time.Second, envelope("a", "x")); err != nil {
		t.Fatal(err)
	}
	m := a.Ready().Messages[0]
	if m.To != "b" || m.Msg.Via != "w" {
		t.Fatalf("a sent %+v, want to b with waypoint w", m)
	}
	b := newRouter(t, "b", "a", "w")
	if err := b.Step(time.Second, "a", m.Msg); err != nil {
		t.Fatal(err)
	}
	m = b.Ready().Messages[0]
	if m.To != "w" {
		t.Fatalf("b sent %+v, want to w", m)
	}
	w := newRouter(t, "w", "b", "x")
	if err := w.Step(time.Second, "b", m.Msg); err != nil {
		t.Fatal(err)
	}
	m = w.Ready().Messages[0]
	if m.To != "x" || m.Msg.Via != "" {
		t.Fatalf("w sent %+v, want to x with the waypoint cleared", m)
	}
}

func TestRelayBounds(t *testing.T) {
	r := newRouter(t, "r", "a", "b")
	// Hop limit spent: dropped.
	m := envelope("a", "b")
	m.HopLimit = 0
	if err := r.Step(0, "a", m); err != nil {
		t.Fatal(err)
	}
	if rd := r.Ready(); len(rd.Messages) != 0 || r.Stats().Dropped[DropHopLimit] != 1 {
		t.Fatalf("an envelope without hops left was forwarded: %+v", rd)
	}
	// Unroutable: dropped silently.
	m = envelope("a", "nowhere")
	m.HopLimit = 3
	if err := r.Step(0, "a", m); err != nil || r.Stats().Dropped[DropNoRoute] != 1 {
		t.Fatalf("unroutable: err %v, stats %+v", err, r.Stats())
	}
	// This node's own envelope coming back (a loop of stale routes) is dropped, not an
	// error: honest relays cause it.
	m = envelope("r", "b")
	m.HopLimit = 3
	if err := r.Step(0, "a", m); err != nil || len(r.Ready().Messages) != 0 || r.Stats().Dropped[DropLoop] != 1 {
		t.Fatalf("own envelope back: err %v, stats %+v", err, r.Stats())
	}
	// Never back where it came from.
	m = envelope("a", "a2")
	m.HopLimit = 3
	r.Learn(0, "a2", "a", 2)
	if err := r.Step(0, "a", m); err != nil || len(r.Ready().Messages) != 0 {
		t.Fatalf("an envelope went back to the neighbour it came from (err %v)", err)
	}
	// Rate per source: a burst, then one every 1/SourceRate.
	cfg := DefaultConfig()
	forwarded := 0
	for range cfg.SourceBurst + 10 {
		m := envelope("a", "b")
		m.HopLimit = 3
		_ = r.Step(0, "a", m)
		forwarded += len(r.Ready().Messages)
	}
	// Two tokens went to the unroutable and the looping envelopes above.
	if forwarded != cfg.SourceBurst-2 {
		t.Fatalf("forwarded %d of a burst, want %d", forwarded, cfg.SourceBurst-2)
	}
	if r.Stats().Dropped[DropRate] == 0 {
		t.Fatal("no rate drops counted")
	}
	m = envelope("a", "b")
	m.HopLimit = 3
	_ = r.Step(time.Second, "a", m)
	if len(r.Ready().Messages) != 1 {
		t.Fatal("the bucket did not refill")
	}
}

func TestStepRefusesMalformed(t *testing.T) {
	r := newRouter(t, "r", "a")
	for _, m := range []Message{
		{Type: 9},
		{Type: Routed, Target: "x", Kind: KindSignal},
		{Type: Routed, Source: "a", Target: "x", Kind: 7},
		{Type: Routed, Source: "a", Target: "x", Kind: KindDirect, HopLimit: 200},
		{Type: Routed, Source: "a", Target: "x", Kind: KindDirect, HopLimit: 1, Waypoints: 3},
		{Type: View, Nodes: make([]string, 17)},
	} {
		if err := r.Step(0, "a", m); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("Step(%+v) = %v, want ErrInvalidMessage", m, err)
		}
	}
}

func TestTableAndQueueBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxEntries, cfg.MaxQueue = 4, 3
	r, err := New("r", cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.NeighborUp("a")
	r.Ready()
	for i := range 10 {
		r.Learn(time.Duration(i), string(rune('k'+i)), "a", 2)
	}
	if s := r.Stats(); s.Entries != 4 {
		t.Fatalf("%d entries, want MaxEntries 4", s.Entries)
	}
	if !r.Known(10, "t") || r.Known(10, "k") {
		t.Fatal("the table kept old entries over new ones")
	}
	sent := 0
	for range 5 {
		if r.Send(10, envelope("r", "a")) == nil {
			sent++
		}
	}
	if sent != 3 || r.Stats().Dropped[DropQueue] != 2 {
		t.Fatalf("sent %d with MaxQueue 3 (stats %+v)", sent, r.Stats())
	}
}

func TestDisabledRoutesNothing(t *testing.T) {
	r, err := New("r", Config{})
	if err != nil {
		t.Fatal(err)
	}
	r.NeighborUp("a")
	if r.HasReady() || r.Send(0, envelope("r", "a")) != ErrNoRoute {
		t.Fatal("a disabled router routed")
	}
}

func TestSendErrors(t *testing.T) {
	r := newRouter(t, "r", "a")
	if err := r.Send(0, envelope("r", "zz")); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("Send to an unknown target: %v, want ErrNoRoute", err)
	}
	if err := r.Send(0, envelope("x", "a")); err == nil {
		t.Fatal("Send with a foreign source accepted")
	}
	if _, err := New("r", Config{Enabled: true}); err == nil {
		t.Fatal("zero bounds accepted")
	}
}

// Two nodes that traded samples hint at each other for the same target: the envelope takes
// at most MaxWaypoints waypoints and is then dropped, instead of bouncing until its hop limit.
func TestWaypointsBounded(t *testing.T) {
	a := newRouter(t, "a", "b")
	a.Hint(0, "x", "b")
	if err := a.Send(0, envelope("a", "x")); err != nil {
		t.Fatal(err)
	}
	m := a.Ready().Messages[0].Msg
	if m.Via != "b" || m.Waypoints != 1 {
		t.Fatalf("a sent %+v, want waypoint b, 1 waypoint", m)
	}
	b := newRouter(t, "b", "a")
	b.Hint(0, "x", "a") // b's own hint points back at a
	if err := b.Step(0, "a", m); err != nil {
		t.Fatal(err)
	}
	// The waypoint may not send it back where it came from, and has nowhere else to go.
	if out := b.Ready().Messages; len(out) != 0 {
		t.Fatalf("b sent %+v", out)
	}
	// Through a third node, the second waypoint is taken, the third is not.
	c := newRouter(t, "c", "a", "d")
	c.Hint(0, "x", "d")
	m.Via = "c"
	if err := c.Step(0, "a", m); err != nil {
		t.Fatal(err)
	}
	m = c.Ready().Messages[0].Msg
	if m.Via != "d" || m.Waypoints != 2 {
		t.Fatalf("c sent %+v, want waypoint d, 2 waypoints", m)
	}
	d := newRouter(t, "d", "c", "e")
	d.Hint(0, "x", "e")
	if err := d.Step(0, "c", m); err != nil {
		t.Fatal(err)
	}
	if out := d.Ready().Messages; len(out) != 0 || d.Stats().Dropped[DropNoRoute] != 1 {
		t.Fatalf("a third waypoint was taken: %+v", out)
	}
}

func TestNextHopSendsNothing(t *testing.T) {
	r := newRouter(t, "a", "b")
	r.Learn(0, "x", "b", 3)
	if next, ok := r.NextHop(0, "x"); !ok || next != "b" {
		t.Fatalf("NextHop(x) = %q, %v; want b", next, ok)
	}
	if _, ok := r.NextHop(0, "nowhere"); ok {
		t.Fatal("NextHop found a route to an unknown node")
	}
	if r.HasReady() || r.Stats().Sent != 0 {
		t.Fatal("NextHop queued or counted something")
	}
}

// The table's hash index finds exactly what a scan of every slot finds, through replacements,
// first-in-first-out evictions and the removals a neighbour's departure makes (the index's
// backward-shift deletion is the part worth checking), at table sizes that fill the index
// to different loads.
func TestTableIndexMatchesScan(t *testing.T) {
	scan := func(r *Router, target string, hint bool) int {
		for i, e := range r.entries {
			if e.target == target && e.hint == hint {
				return i
			}
		}
		return -1
	}
	for _, size := range []int{1, 7, 8, 13, 64} {
		cfg := DefaultConfig()
		cfg.MaxEntries = size
		r, err := New("self", cfg)
		if err != nil {
			t.Fatal(err)
		}
		vias := []string{"v0", "v1", "v2", "v3"}
		for _, v := range vias {
			r.NeighborUp(v)
		}
		rng := uint64(size)
		next := func(n int) int {
			rng = rng*6364136223846793005 + 1442695040888963407
			return int((rng >> 33) % uint64(n))
		}
		for step := range 20000 {
			target := "t" + string(rune('a'+next(26))) + string(rune('a'+next(26)))
			via := vias[next(len(vias))]
			switch next(10) {
			case 0:
				r.NeighborDown(via)
				r.NeighborUp(via)
			case 1, 2, 3:
				r.Hint(time.Duration(step), target, via)
			default:
				r.Learn(time.Duration(step), target, via, 2)
			}
			probe := "t" + string(rune('a'+next(26))) + string(rune('a'+next(26)))
			for _, hint := range []bool{false, true} {
				if got, want := r.find(probe, hint), scan(r, probe, hint); got != want {
					t.Fatalf("MaxEntries %d, step %d: find(%q, hint %v) = %d, a scan finds %d", size, step, probe, hint, got, want)
				}
			}
		}
		if len(r.entries) != size {
			t.Fatalf("MaxEntries %d: %d entries after 20,000 insertions", size, len(r.entries))
		}
	}
	// A cell holds a slot in 16 bits.
	cfg := DefaultConfig()
	cfg.MaxEntries = 1 << 16
	if _, err := New("self", cfg); err == nil {
		t.Error("MaxEntries 65,536 accepted; an index cell holds at most 65,535 slots")
	}
}
