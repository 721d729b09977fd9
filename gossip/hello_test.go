package gossip

import (
	"slices"
	"testing"
	"time"
)

// helloNet is a net of catch-up cores with a hello timeout of 10 s.
func helloNet(t *testing.T) *testNet {
	cfg := catchUpConfig()
	cfg.NeighborHelloTimeout = 10 * time.Second
	return newTestNet(t, cfg, 1)
}

// silentReports returns the SilentNeighbor reports in rd.
func silentReports(rd Ready) []string {
	var out []string
	for _, mb := range rd.Misbehaviour {
		if mb.Reason == SilentNeighbor {
			out = append(out, mb.Peer)
		}
	}
	return out
}

// Both ends greet a new neighbour at once; each hears the other's hello, lists it as greeted,
// and nobody is reported, however long the link stays quiet afterwards.
func TestHelloBothEnds(t *testing.T) {
	n := helloNet(t)
	a, b := n.add("a"), n.add("b")
	a.NeighborUp("b")
	b.NeighborUp("a")
	hellos := map[string]Message{}
	for _, c := range []*Core{a, b} {
		rd := c.Ready()
		if len(rd.Messages) != 1 || rd.Messages[0].Msg.Type != Digest {
			t.Fatalf("%s greeted with %+v, want one Digest", c.cfg.Self, rd.Messages)
		}
		hellos[c.cfg.Self] = rd.Messages[0].Msg
	}
	if err := b.Step("a", hellos["a"]); err != nil {
		t.Fatal(err)
	}
	if err := a.Step("b", hellos["b"]); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Core{a, b} {
		rd := c.Ready()
		if len(rd.Greeted) != 1 {
			t.Errorf("%s: greeted %v, want its neighbour once", c.cfg.Self, rd.Greeted)
		}
		// The smaller end does not answer the larger end's hello; the larger end answers
		// nothing either, as the histories are equal (both empty).
		if len(rd.Messages) != 0 {
			t.Errorf("%s answered a hello with %+v", c.cfg.Self, rd.Messages)
		}
	}
	for _, c := range []*Core{a, b} {
		c.Tick(time.Second)
		if s := silentReports(c.Ready()); len(s) != 0 || c.Stats().SilentNeighbors != 0 {
			t.Errorf("%s reported %v as silent", c.cfg.Self, s)
		}
	}
}

// A quiet link stays up: each end sends a keepalive after NeighborKeepalive of sending
// nothing, so neither is judged silent however long the link carries nothing else. A zombie
// link, which one end dropped without a DISCONNECT, falls silent at the other end and is
// reported once, NeighborSilenceTimeout after its last frame.
func TestHelloKeepaliveAndZombie(t *testing.T) {
	n := helloNet(t)
	// Without catch-up's periodic Digests, only the keepalives keep the link from silence.
	n.cfg.CatchUpWindow = 0
	a, b := n.add("a"), n.add("b")
	n.link("a", "b")
	n.settle(5 * time.Minute)
	for _, c := range []*Core{a, b} {
		s := c.Stats()
		if s.SilentNeighbors != 0 || s.Keepalives < 10 {
			t.Errorf("%s: %d silent, %d keepalives in 5 quiet minutes (want 0, and one every 20 s)", c.cfg.Self, s.SilentNeighbors, s.Keepalives)
		}
	}
	// b drops the link quietly: a hears nothing more.
	b.NeighborDown("a")
	b.Ready()
	start := n.now
	var at time.Duration
	for n.now < start+3*time.Minute {
		n.tick(time.Second)
		n.queue = n.queue[:0] // b no longer reads a's link
		if at == 0 && a.Stats().SilentNeighbors == 1 {
			at = n.now - start
		}
	}
	if s := a.Stats().SilentNeighbors; s != 1 || at == 0 || at > time.Minute {
		t.Errorf("zombie link: %d reports, the first %v after b went quiet (want 1, within NeighborSilenceTimeout)", s, at)
	}
}

// A neighbour that sends nothing is reported once, exactly when its hello is overdue, and the
// core's deadline says when that is.
func TestHelloSilentNeighbourReported(t *testing.T) {
	n := helloNet(t)
	a := n.add("a")
	a.Tick(time.Second)
	a.NeighborUp("s")
	a.Ready()
	if at, ok := a.NextDeadline(); !ok || at > 11*time.Second {
		t.Fatalf("NextDeadline %v %v: want the hello deadline (11s) or earlier", at, ok)
	}
	a.Tick(11*time.Second - time.Millisecond)
	if s := silentReports(a.Ready()); len(s) != 0 {
		t.Fatalf("reported %v before the timeout", s)
	}
	a.Tick(11 * time.Second)
	if s := silentReports(a.Ready()); !slices.Equal(s, []string{"s"}) {
		t.Fatalf("silent reports %v, want [s]", s)
	}
	a.Tick(time.Hour)
	if s := silentReports(a.Ready()); len(s) != 0 || a.Stats().SilentNeighbors != 1 {
		t.Fatalf("reported again: %v (%d in all)", s, a.Stats().SilentNeighbors)
	}
}

// A frame that arrives just before the local NeighborUp (the other end came up first) counts
// as the hello; a neighbour that leaves before its deadline is not judged; a frame that
// breaks the rules proves nothing.
func TestHelloEarlyFrameAndDown(t *testing.T) {
	n := helloNet(t)
	a := n.add("a")
	// z's hello overtakes a's NeighborUp.
	if err := a.Step("z", Message{Type: Digest, Salt: 1, Spans: []Span{{From: 0, To: 1}}}); err != nil {
		t.Fatal(err)
	}
	a.NeighborUp("z")
	if rd := a.Ready(); !slices.Equal(rd.Greeted, []string{"z"}) {
		t.Errorf("greeted %v, want [z]: the early hello counts", rd.Greeted)
	}
	a.NeighborUp("gone")
	a.NeighborUp("bad")
	// A Digest without spans is refused: it does not greet.
	if err := a.Step("bad", Message{Type: Digest}); err == nil {
		t.Fatal("a Digest without spans was accepted")
	}
	a.NeighborDown("gone")
	a.Ready()
	// Past the hello timeout, short of z's silence timeout, ticked as a driver that is not
	// away would tick (a single late Tick would start the judgments over).
	for now := time.Second; now <= 30*time.Second; now += time.Second {
		a.Tick(now)
	}
	if s := silentReports(a.Ready()); !slices.Equal(s, []string{"bad"}) {
		t.Errorf("silent reports %v, want [bad] (z greeted early, gone left)", s)
	}
}

// A node with catch-up off still greets (a Digest of the last millisecond) and judges; a
// node with catch-up answers that hello with nothing, and greets back with its own Digest.
func TestHelloWithoutCatchUp(t *testing.T) {
	cfg := catchUpConfig()
	cfg.NeighborHelloTimeout = 10 * time.Second
	n := newTestNet(t, cfg, 1)
	with := n.add("b")
	cfg.CatchUpWindow = 0
	n.cfg = cfg
	off := n.add("a")
	off.Tick(time.Second)
	with.Tick(time.Second)
	off.NeighborUp("b")
	with.NeighborUp("a")
	ho, hw := off.Ready(), with.Ready()
	if len(ho.Messages) != 1 || ho.Messages[0].Msg.Type != Digest || len(hw.Messages) != 1 {
		t.Fatalf("hellos: without catch-up %+v, with %+v", ho.Messages, hw.Messages)
	}
	// Drivers tell the check's hellos from catch-up's Digests, which always have a salt.
	if !IsHello(&ho.Messages[0].Msg) || IsHello(&hw.Messages[0].Msg) {
		t.Errorf("IsHello: %v for the hello, %v for catch-up's link-up Digest; want true, false",
			IsHello(&ho.Messages[0].Msg), IsHello(&hw.Messages[0].Msg))
	}
	if err := with.Step("a", ho.Messages[0].Msg); err != nil {
		t.Fatal(err)
	}
	if err := off.Step("b", hw.Messages[0].Msg); err != nil {
		t.Fatal(err)
	}
	if rd := with.Ready(); len(rd.Messages) != 0 || !slices.Equal(rd.Greeted, []string{"a"}) {
		t.Errorf("with catch-up: answered %+v, greeted %v", rd.Messages, rd.Greeted)
	}
	if rd := off.Ready(); len(rd.Messages) != 0 || !slices.Equal(rd.Greeted, []string{"b"}) {
		t.Errorf("without catch-up: answered %+v, greeted %v", rd.Messages, rd.Greeted)
	}
	off.Tick(time.Minute)
	with.Tick(time.Minute)
	if s := append(silentReports(off.Ready()), silentReports(with.Ready())...); len(s) != 0 {
		t.Errorf("reported %v as silent", s)
	}
}

// With the timeout at 0 (as DisableDefences sets it), nobody is judged.
func TestHelloOff(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"timeout 0":   func(c *Config) { c.NeighborHelloTimeout = 0 },
		"no defences": func(c *Config) { c.DisableDefences() },
	} {
		cfg := catchUpConfig()
		cfg.NeighborHelloTimeout = 10 * time.Second
		mutate(&cfg)
		n := newTestNet(t, cfg, 1)
		a := n.add("a")
		a.NeighborUp("s")
		a.Ready()
		a.Tick(time.Hour)
		if s := silentReports(a.Ready()); len(s) != 0 {
			t.Errorf("%s: reported %v", name, s)
		}
	}
	cfg := catchUpConfig()
	cfg.NeighborHelloTimeout = -time.Second
	if _, err := New(func() Config { cfg.Self = "a"; return cfg }()); err == nil {
		t.Error("a negative NeighborHelloTimeout was accepted")
	}
}

// A node that was away (paused, asleep) does not blame its neighbours for its own absence:
// a Tick long after the judgments were due starts them over, so a neighbour whose frames
// wait unread is not reported; one that stays silent afterwards still is.
func TestHelloNodeAwayBlamesNobody(t *testing.T) {
	n := helloNet(t)
	a := n.add("a")
	a.NeighborUp("x")
	a.Ready()
	a.Tick(time.Hour) // the process was stopped for an hour
	if s := silentReports(a.Ready()); len(s) != 0 || a.Stats().HelloRestarts != 1 {
		t.Fatalf("after a pause: reported %v, %d restarts; want none reported, 1 restart", s, a.Stats().HelloRestarts)
	}
	if err := a.Step("x", Message{Type: Digest, Salt: 1, Spans: []Span{{From: 0, To: 1}}}); err != nil {
		t.Fatal(err)
	}
	a.NeighborUp("y") // y never greets
	a.Ready()
	a.Tick(time.Hour + 10*time.Second)
	if s := silentReports(a.Ready()); !slices.Equal(s, []string{"y"}) {
		t.Errorf("reported %v; want y, silent after the pause, and not x, whose frame was read", s)
	}
}
