package gossip

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// victim returns a core "v" with neighbours "m" (hostile) and "h" (honest), started at one
// hour (so message times are positive), with cfg's bounds.
func victim(t *testing.T, cfg Config) *Core {
	t.Helper()
	cfg.Self = "v"
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Tick(time.Hour)
	c.NeighborUp("m")
	c.NeighborUp("h")
	c.Ready()
	return c
}

// idOf makes a distinct message ID from a number (never the zero ID).
func idOf(tag byte, i int) MessageID {
	var id MessageID
	id[0] = tag
	putUint64(id[8:], uint64(i+1))
	return id
}

// countReasons counts Ready.Misbehaviour by reason and peer.
func countReasons(rd Ready) map[string]int {
	n := map[string]int{}
	for _, mb := range rd.Misbehaviour {
		n[mb.Peer+" "+mb.Reason.String()]++
	}
	return n
}

// floodThroughLink sends n new Gossips from n different origins (Sybils) on link "m" at one
// instant, then one honest Gossip on link "h", and returns how many of the flood were
// delivered and forwarded, and whether the honest one was.
func floodThroughLink(t *testing.T, cfg Config, n int) (delivered, forwarded int, honest bool, rd Ready) {
	c := victim(t, cfg)
	for i := range n {
		m := Message{Type: Gossip, ID: idOf(1, i), Origin: "sybil" + string(rune('a'+i%26)) + strings.Repeat("x", i/26%4),
			Hops: 1, Seq: uint64(i + 1), Time: c.nowMillis(), Payload: []byte("flood")}
		if err := c.Step("m", m); err != nil {
			t.Fatal(err)
		}
		r := c.Ready()
		delivered += len(r.Deliveries)
		for _, e := range r.Messages {
			if e.Msg.Type == Gossip {
				forwarded++
			}
		}
		rd.Misbehaviour = append(rd.Misbehaviour, r.Misbehaviour...)
	}
	hm := Message{Type: Gossip, ID: idOf(2, 0), Origin: "honest", Hops: 1, Seq: 1, Time: c.nowMillis(), Payload: []byte("hi")}
	if err := c.Step("h", hm); err != nil {
		t.Fatal(err)
	}
	honest = len(c.Ready().Deliveries) == 1
	return delivered, forwarded, honest, rd
}

// TestAttackFloodThroughOneLink: one neighbour pushes 20,000 new messages at once (from many
// origins, so no origin budget applies). Without defences all are delivered and forwarded;
// with them, the link's burst is, the rest is refused and reported against the link, and an
// honest neighbour's message still goes through.
func TestAttackFloodThroughOneLink(t *testing.T) {
	const n = 20000
	off := validConfig("v")
	off.DisableDefences()
	dOff, fOff, _, _ := floodThroughLink(t, off, n)

	on := validConfig("v")
	on.OriginRate = 0 // isolate the link budget
	d, f, honest, rd := floodThroughLink(t, on, n)
	t.Logf("flood of %d messages through one link: delivered %d, forwarded %d without defences; delivered %d, forwarded %d with (LinkBurst %d)",
		n, dOff, fOff, d, f, on.LinkBurst)
	if dOff != n {
		t.Fatalf("without defences %d of %d delivered", dOff, n)
	}
	if d != on.LinkBurst || f != on.LinkBurst {
		t.Fatalf("with defences delivered %d, forwarded %d; want the burst, %d", d, f, on.LinkBurst)
	}
	if !honest {
		t.Fatal("the honest neighbour's message was refused")
	}
	reasons := countReasons(rd)
	if reasons["m link-rate"] == 0 || len(reasons) != 1 {
		t.Fatalf("misbehaviour reported: %v", reasons)
	}
}

// TestLinkBudgetRefills: after a second, LinkRate more messages are accepted.
func TestLinkBudgetRefills(t *testing.T) {
	cfg := validConfig("v")
	cfg.OriginRate = 0
	cfg.LinkRate, cfg.LinkBurst = 10, 10
	c := victim(t, cfg)
	accepted := 0
	for round := range 3 {
		for i := range 50 {
			m := Message{Type: Gossip, ID: idOf(byte(round+1), i), Origin: "o" + string(rune('a'+i)), Hops: 1, Seq: uint64(round + 1),
				Time: c.nowMillis(), Payload: []byte("x")}
			if err := c.Step("m", m); err != nil {
				t.Fatal(err)
			}
			accepted += len(c.Ready().Deliveries)
		}
		c.Tick(c.now + time.Second)
	}
	if accepted != 30 {
		t.Fatalf("accepted %d over three 1-second rounds at 10/s burst 10, want 30", accepted)
	}
	if s := c.Stats(); s.RefusedLinkRate != 120 {
		t.Fatalf("RefusedLinkRate = %d, want 120", s.RefusedLinkRate)
	}
}

// TestAttackFloodFromOneOrigin: one origin broadcasts far above its budget, its messages
// arriving on two links. Accepted: its burst and its bytes budget, whichever is smaller.
func TestAttackFloodFromOneOrigin(t *testing.T) {
	run := func(cfg Config) (delivered int, st Stats) {
		c := victim(t, cfg)
		payload := make([]byte, 60*1024)
		for i := range 3000 { // the flood: 3,000 broadcasts of 60 KB
			from := "m"
			if i%2 == 1 {
				from = "h"
			}
			m := Message{Type: Gossip, ID: idOf(3, i), Origin: "flooder", Hops: 2, Seq: uint64(i + 1), Time: c.nowMillis(), Payload: payload}
			if err := c.Step(from, m); err != nil {
				t.Fatal(err)
			}
			delivered += len(c.Ready().Deliveries)
		}
		return delivered, c.Stats()
	}
	off := validConfig("v")
	off.DisableDefences()
	dOff, sOff := run(off)
	on := validConfig("v")
	d, s := run(on)
	t.Logf("3,000 broadcasts of 60 KB from one origin: %d delivered, cache %d messages / %d MB without defences; %d delivered, cache %d MB with",
		dOff, sOff.CachedMessages, sOff.CacheBytes>>20, d, s.CacheBytes>>20)
	if dOff != 3000 {
		t.Fatalf("without defences %d delivered", dOff)
	}
	want := on.OriginByteBurst / (60 * 1024)
	if d != want {
		t.Fatalf("with defences %d delivered, want %d (OriginByteBurst / 60 KiB)", d, want)
	}
	// The links pay for every message that reaches the signature check, so once their byte
	// budget is spent the rest is refused for the link.
	if s.RefusedOriginRate == 0 || s.RefusedOriginRate+s.RefusedLinkRate != uint64(3000-want) {
		t.Fatalf("refused for origin %d, for link %d", s.RefusedOriginRate, s.RefusedLinkRate)
	}
}

// TestOriginBudgetNotSpentByForgers: messages claiming an origin with bad signatures do not
// spend its budget.
func TestOriginBudgetNotSpentByForgers(t *testing.T) {
	cfg := validConfig("v")
	cfg.Auth = testAuth{}
	cfg.OriginRate, cfg.OriginBurst = 1, 2
	c := victim(t, cfg)
	for i := range 100 {
		m := gossipFrom("o", "mallory", idOf(4, i), uint64(i+1), c.now, "forged")
		if err := c.Step("m", m); err != nil {
			t.Fatal(err)
		}
	}
	c.Ready()
	got := 0
	for i := range 2 {
		if err := c.Step("h", gossipFrom("o", "o", idOf(5, i), uint64(200+i), c.now, "real")); err != nil {
			t.Fatal(err)
		}
		got += len(c.Ready().Deliveries)
	}
	if got != 2 {
		t.Fatalf("the real origin got %d of its 2 messages through after a forged flood", got)
	}
}

// ihaveFlood is the attack: 80 IHaves of 64 fake IDs from neighbour "m", then one real
// announcement from "h"; after the timeouts it returns the Grafts sent and whether the real
// message was grafted from "h".
func ihaveFlood(t *testing.T, cfg Config) (st Stats, grafts int, realGrafted bool, rd Ready) {
	c := victim(t, cfg)
	c.moveToLazy("m")
	c.moveToLazy("h")
	for b := range 80 {
		anns := make([]Announcement, 64)
		for i := range anns {
			anns[i] = Announcement{ID: idOf(6, b*64+i), Hops: 1}
		}
		if err := c.Step("m", Message{Type: IHave, IHave: anns}); err != nil {
			t.Fatal(err)
		}
		rd.Misbehaviour = append(rd.Misbehaviour, c.Ready().Misbehaviour...)
	}
	real := idOf(7, 0)
	if err := c.Step("h", Message{Type: IHave, IHave: []Announcement{{ID: real, Hops: 1}}}); err != nil {
		t.Fatal(err)
	}
	st = c.Stats()
	// Grafts go out over the next seconds; each promise is judged PromiseTimeout after its
	// Graft.
	for start := c.now; c.now < start+cfg.MissingTimeout+cfg.PromiseTimeout+5*time.Second; {
		c.Tick(c.now + 250*time.Millisecond)
		r := c.Ready()
		for _, e := range r.Messages {
			if e.Msg.Type == Graft && e.Msg.ID != (MessageID{}) {
				grafts++
				if e.Msg.ID == real && e.To == "h" {
					realGrafted = true
				}
			}
		}
		rd.Misbehaviour = append(rd.Misbehaviour, r.Misbehaviour...)
	}
	st.BrokenPromises = c.Stats().BrokenPromises
	return st, grafts, realGrafted, rd
}

// TestAttackIHaveFlood: without defences the fake IDs fill the table (MissingMaxIDs), the real
// announcement is ignored and the victim sends 4,096 Grafts; with them, the attacker holds
// MissingMaxPerPeer entries, the real message is grafted, and the attacker is reported for
// the excess and for every promise it broke.
func TestAttackIHaveFlood(t *testing.T) {
	off := validConfig("v")
	off.DisableDefences()
	sOff, gOff, realOff, _ := ihaveFlood(t, off)
	on := validConfig("v")
	s, g, real, rd := ihaveFlood(t, on)
	t.Logf("80 IHaves of 64 fake IDs: without defences %d missing entries, %d Grafts in 16 s, real message grafted %v; with: %d entries, %d Grafts, real grafted %v",
		sOff.PendingMissing, gOff, realOff, s.PendingMissing, g, real)
	if sOff.PendingMissing != off.MissingMaxIDs || realOff || gOff != off.MissingMaxIDs {
		t.Fatalf("without defences: %d entries, %d Grafts, real grafted %v", sOff.PendingMissing, gOff, realOff)
	}
	if s.PendingMissing != on.MissingMaxPerPeer+1 || !real || g != on.MissingMaxPerPeer+1 {
		t.Fatalf("with defences: %d entries, %d Grafts, real grafted %v", s.PendingMissing, g, real)
	}
	if s.IHaveExcess != uint64(80*64-on.MissingMaxPerPeer) {
		t.Fatalf("IHaveExcess = %d", s.IHaveExcess)
	}
	// Every promise broke (h's too, as the test never delivers the real message):
	// Ready carries MaxMisbehaviourReports of them, Stats all.
	reasons := countReasons(rd)
	if reasons["m ihave-excess"] == 0 || reasons["m broken-promise"] == 0 || s.BrokenPromises != uint64(on.MissingMaxPerPeer+1) {
		t.Fatalf("misbehaviour reported: %v, BrokenPromises %d", reasons, s.BrokenPromises)
	}
}

// TestGraftsSentAreBudgeted: with many announcers of fake IDs (each within its own cap), the
// Grafts sent in one instant stop at GraftBurst, and the rest follow at GraftRate.
func TestGraftsSentAreBudgeted(t *testing.T) {
	cfg := validConfig("v")
	cfg.GraftRate, cfg.GraftBurst = 10, 20
	c := victim(t, cfg)
	peers := []string{"p1", "p2", "p3", "p4"}
	for _, p := range peers {
		c.NeighborUp(p)
		c.moveToLazy(p)
	}
	c.Ready()
	for pi, p := range peers {
		anns := make([]Announcement, 50)
		for i := range anns {
			anns[i] = Announcement{ID: idOf(8, pi*50+i), Hops: 1}
		}
		if err := c.Step(p, Message{Type: IHave, IHave: anns}); err != nil {
			t.Fatal(err)
		}
	}
	c.Tick(c.now + cfg.MissingTimeout)
	first := 0
	for _, e := range c.Ready().Messages {
		if e.Msg.Type == Graft {
			first++
		}
	}
	if first != 20 {
		t.Fatalf("%d Grafts at once, want GraftBurst 20", first)
	}
	if s := c.Stats(); s.GraftsThrottled != 180 {
		t.Fatalf("GraftsThrottled = %d, want 180", s.GraftsThrottled)
	}
}

// TestAttackGraftSpam: a neighbour asks for a cached 60 KB message 10,000 times. Without
// defences every Graft is answered (600 MB); with them, GraftAnswerBurst are, and the excess
// is reported.
func TestAttackGraftSpam(t *testing.T) {
	run := func(cfg Config) (answers int, rd Ready) {
		c := victim(t, cfg)
		payload := make([]byte, 60*1024)
		m := Message{Type: Gossip, ID: idOf(9, 0), Origin: "o", Hops: 1, Seq: 1, Time: c.nowMillis(), Payload: payload}
		if err := c.Step("h", m); err != nil {
			t.Fatal(err)
		}
		c.Ready()
		for range 10000 {
			if err := c.Step("m", Message{Type: Graft, ID: m.ID}); err != nil {
				t.Fatal(err)
			}
			r := c.Ready()
			answers += len(r.Messages)
			rd.Misbehaviour = append(rd.Misbehaviour, r.Misbehaviour...)
		}
		return answers, rd
	}
	off := validConfig("v")
	off.DisableDefences()
	aOff, _ := run(off)
	on := validConfig("v")
	a, rd := run(on)
	t.Logf("10,000 Grafts for a 60 KB message: %d answered (%d MB) without defences, %d (%d MB) with",
		aOff, aOff*60/1024, a, a*60/1024)
	if aOff != 10000 || a != on.GraftAnswerBurst {
		t.Fatalf("answered %d without defences, %d with (want %d)", aOff, a, on.GraftAnswerBurst)
	}
	if r := countReasons(rd); r["m graft-excess"] == 0 {
		t.Fatalf("misbehaviour reported: %v", r)
	}
}

// TestAttackCacheBytes: 4,096 messages of 60 KB (from many origins, over time, so no rate
// limit applies) would keep 240 MB in the Graft cache; CacheMaxBytes keeps it at 16 MiB.
func TestAttackCacheBytes(t *testing.T) {
	run := func(cfg Config) Stats {
		cfg.LinkRate, cfg.LinkByteRate, cfg.OriginRate, cfg.OriginByteRate = 0, 0, 0, 0
		c := victim(t, cfg)
		payload := make([]byte, 60*1024)
		for i := range 4096 {
			m := Message{Type: Gossip, ID: idOf(10, i), Origin: "o" + string(rune('a'+i%20)), Hops: 1, Seq: uint64(i + 1),
				Time: c.nowMillis(), Payload: payload}
			if err := c.Step("h", m); err != nil {
				t.Fatal(err)
			}
			c.Ready()
		}
		return c.Stats()
	}
	off := validConfig("v")
	off.DisableDefences()
	sOff := run(off)
	on := validConfig("v")
	s := run(on)
	t.Logf("4,096 messages of 60 KB: cache %d messages, %d MB without defences; %d messages, %d MB with",
		sOff.CachedMessages, sOff.CacheBytes>>20, s.CachedMessages, s.CacheBytes>>20)
	if sOff.CacheBytes != 4096*60*1024 {
		t.Fatalf("without defences the cache holds %d bytes", sOff.CacheBytes)
	}
	if s.CacheBytes > on.CacheMaxBytes || s.CachedMessages != on.CacheMaxBytes/(60*1024) {
		t.Fatalf("with defences the cache holds %d messages, %d bytes (max %d)", s.CachedMessages, s.CacheBytes, on.CacheMaxBytes)
	}
}

// TestSeenBytesBounded: the seen set holds at most SeenMaxBytes / 64 IDs.
func TestSeenBytesBounded(t *testing.T) {
	cfg := validConfig("v")
	cfg.DisableDefences()
	cfg.SeenMaxBytes = 64 * 100
	c := victim(t, cfg)
	for i := range 1000 {
		m := Message{Type: Gossip, ID: idOf(11, i), Origin: "o" + string(rune('a'+i%20)), Hops: 1, Seq: uint64(i + 1),
			Time: c.nowMillis(), Payload: []byte("x")}
		if err := c.Step("h", m); err != nil {
			t.Fatal(err)
		}
		c.Ready()
	}
	if s := c.Stats(); s.SeenIDs != 100 || s.SeenBytes != 6400 {
		t.Fatalf("seen set: %d IDs, %d bytes; want 100, 6400", s.SeenIDs, s.SeenBytes)
	}
}

// TestBrokenPromiseNotBlamedWhenDelivered: an announcer grafted for a message that then
// arrives (from it or anyone) is not reported.
func TestBrokenPromiseNotBlamedWhenDelivered(t *testing.T) {
	cfg := validConfig("v")
	cfg.NeighborHelloTimeout = 0 // the victim's other neighbour says nothing (hello_test.go)
	c := victim(t, cfg)
	c.moveToLazy("m")
	id := idOf(12, 0)
	if err := c.Step("m", Message{Type: IHave, IHave: []Announcement{{ID: id, Hops: 1}}}); err != nil {
		t.Fatal(err)
	}
	c.Tick(c.now + time.Second)
	c.Ready()
	if err := c.Step("m", Message{Type: Gossip, ID: id, Origin: "o", Hops: 2, Seq: 1, Time: c.nowMillis(), Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	c.Tick(c.now + 5*time.Second)
	if rd := c.Ready(); len(rd.Misbehaviour) != 0 {
		t.Fatalf("reported %+v", rd.Misbehaviour)
	}
	if d := c.Stats(); d.BrokenPromises != 0 {
		t.Fatalf("BrokenPromises = %d", d.BrokenPromises)
	}
}

// TestDeliveryFrom: deliveries name the link they came on.
func TestDeliveryFrom(t *testing.T) {
	c := victim(t, validConfig("v"))
	if err := c.Step("h", Message{Type: Gossip, ID: idOf(13, 0), Origin: "o", Hops: 1, Seq: 1, Time: c.nowMillis(), Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if rd := c.Ready(); len(rd.Deliveries) != 1 || rd.Deliveries[0].From != "h" {
		t.Fatalf("deliveries %+v", rd.Deliveries)
	}
	if _, err := c.Broadcast([]byte("own")); err != nil {
		t.Fatal(err)
	}
	if rd := c.Ready(); rd.Deliveries[0].From != "" {
		t.Fatalf("own delivery From = %q", rd.Deliveries[0].From)
	}
}

// TestDefenceConfigValidated: negative bounds and bursts too small for their rate are refused.
func TestDefenceConfigValidated(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"LinkRate":          func(c *Config) { c.LinkRate = -1 },
		"LinkBurst":         func(c *Config) { c.LinkBurst = 0 },
		"LinkByteBurst":     func(c *Config) { c.LinkByteBurst = c.MaxPayload - 1 },
		"OriginBurst":       func(c *Config) { c.OriginBurst = 0 },
		"OriginByteBurst":   func(c *Config) { c.OriginByteBurst = 10 },
		"MissingMaxPerPeer": func(c *Config) { c.MissingMaxPerPeer = -1 },
		"GraftBurst":        func(c *Config) { c.GraftBurst = 0 },
		"GraftAnswerBurst":  func(c *Config) { c.GraftAnswerBurst = 0 },
		"CacheMaxBytes":     func(c *Config) { c.CacheMaxBytes = 100 },
		"SeenMaxBytes":      func(c *Config) { c.SeenMaxBytes = 10 },
	} {
		cfg := validConfig("v")
		mod(&cfg)
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v", name, err)
		}
	}
	cfg := validConfig("v")
	cfg.DisableDefences()
	if _, err := New(cfg); err != nil {
		t.Fatalf("DisableDefences: %v", err)
	}
}

// TestBrokenPromiseBlamesTheGraftedPeer: when an announcer that was not grafted leaves, the
// blame for a missing payload still goes to the one that was.
func TestBrokenPromiseBlamesTheGraftedPeer(t *testing.T) {
	c := victim(t, validConfig("v"))
	c.NeighborUp("x")
	c.moveToLazy("m")
	c.moveToLazy("h")
	c.moveToLazy("x")
	id := idOf(14, 0)
	for _, p := range []string{"x", "m", "h"} {
		if err := c.Step(p, Message{Type: IHave, IHave: []Announcement{{ID: id, Hops: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	promise := validConfig("v").PromiseTimeout
	c.Tick(c.now + time.Second) // Graft to x
	c.Ready()
	c.Tick(c.now + 500*time.Millisecond) // x has not sent it in time; Graft to m
	if rd := c.Ready(); len(rd.Misbehaviour) != 0 {
		t.Fatalf("x blamed before its promise was due: %+v", rd.Misbehaviour)
	}
	c.NeighborDown("x") // the entry's cursor moves; m is still the one grafted
	c.Tick(c.now + 500*time.Millisecond)
	c.NeighborDown("h") // h was grafted next and left
	// PromiseTimeout after each Graft, the message has come from no one: x and m broke their
	// promises (x although it left since), h, grafted after m and gone before its retry, is
	// not blamed.
	c.Tick(c.now + promise)
	rd := c.Ready()
	var blamed []string
	for _, mb := range rd.Misbehaviour {
		blamed = append(blamed, mb.Peer)
	}
	if !slices.Equal(blamed, []string{"x", "m"}) {
		t.Fatalf("blamed %v, want [x m]", blamed)
	}
}

// TestPromiseKeptByALatePayload: an announcer whose payload comes after GraftRetryTimeout but
// within PromiseTimeout is not blamed, even when the payload is refused (here for its clock);
// one that never sends it is, once, at PromiseTimeout after its Graft.
func TestPromiseKeptByALatePayload(t *testing.T) {
	cfg := validConfig("v")
	c := victim(t, cfg)
	c.moveToLazy("m")
	c.moveToLazy("h")
	late, never := idOf(15, 0), idOf(15, 1)
	if err := c.Step("m", Message{Type: IHave, IHave: []Announcement{{ID: late, Hops: 1}, {ID: never, Hops: 1}}}); err != nil {
		t.Fatal(err)
	}
	c.Tick(c.now + cfg.MissingTimeout) // Grafts to m
	c.Tick(c.now + cfg.GraftRetryTimeout)
	c.Tick(c.now + time.Second)
	if err := c.Step("m", Message{Type: Gossip, ID: late, Origin: "o", Hops: 2, Seq: 1, Time: c.nowMillis() + 2*cfg.MaxClockSkew.Milliseconds(), Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	c.Tick(c.now + cfg.PromiseTimeout)
	var broken []MessageID
	for _, mb := range c.Ready().Misbehaviour {
		if mb.Reason == BrokenPromise {
			if mb.Peer != "m" {
				t.Fatalf("blamed %s", mb.Peer)
			}
			broken = append(broken, mb.ID)
		}
	}
	if !slices.Equal(broken, []MessageID{never}) || c.Stats().BrokenPromises != 1 || c.Stats().RefusedClock != 1 {
		t.Fatalf("broken promises %v (stats %+v), want only the one never sent", broken, c.Stats())
	}
}

// TestPromisesBounded: beyond MaxPromises waiting, the oldest are dropped unjudged.
func TestPromisesBounded(t *testing.T) {
	cfg := validConfig("v")
	cfg.MaxPromises = 3
	c := victim(t, cfg)
	c.moveToLazy("m")
	var batch []Announcement
	for i := range 5 {
		batch = append(batch, Announcement{ID: idOf(16, i), Hops: 1})
	}
	if err := c.Step("m", Message{Type: IHave, IHave: batch}); err != nil {
		t.Fatal(err)
	}
	c.Tick(c.now + cfg.MissingTimeout)
	c.Tick(c.now + cfg.GraftRetryTimeout)
	c.Tick(c.now + cfg.PromiseTimeout)
	if s := c.Stats(); s.BrokenPromises != 3 || s.PromisesDropped != 2 || len(c.promises) != 0 || len(c.promiseQ) != 0 {
		t.Fatalf("broken %d, dropped %d, waiting %d/%d; want 3, 2, 0/0", s.BrokenPromises, s.PromisesDropped, len(c.promises), len(c.promiseQ))
	}
}

// TestPromisesHoldAnnouncerSlots: a liar whose made-up announcements were all grafted and
// never delivered cannot announce again until its promises are judged: its waiting promises
// hold its MissingMaxPerPeer slots, so it costs MissingMaxPerPeer Grafts per PromiseTimeout.
func TestPromisesHoldAnnouncerSlots(t *testing.T) {
	cfg := validConfig("v")
	c := victim(t, cfg)
	c.moveToLazy("m")
	announce := func(round byte) {
		t.Helper()
		for from := 0; from < cfg.MissingMaxPerPeer; from += cfg.LazyBatchMax {
			batch := make([]Announcement, cfg.LazyBatchMax)
			for i := range batch {
				batch[i] = Announcement{ID: idOf(17+round, from+i), Hops: 1}
			}
			if err := c.Step("m", Message{Type: IHave, IHave: batch}); err != nil {
				t.Fatal(err)
			}
		}
	}
	grafts := func(d time.Duration) int {
		n := 0
		for end := c.now + d; c.now < end; {
			c.Tick(c.now + 100*time.Millisecond)
			for _, e := range c.Ready().Messages {
				if e.Msg.Type == Graft && e.Msg.ID != (MessageID{}) {
					n++
				}
			}
		}
		return n
	}
	announce(0)
	if g := grafts(cfg.MissingTimeout + cfg.GraftRetryTimeout); g != cfg.MissingMaxPerPeer {
		t.Fatalf("first round: %d Grafts, want %d", g, cfg.MissingMaxPerPeer)
	}
	excess := c.Stats().IHaveExcess
	announce(1) // every slot is held by a waiting promise
	if g := grafts(cfg.MissingTimeout + cfg.GraftRetryTimeout); g != 0 {
		t.Fatalf("while its promises wait: %d Grafts, want 0", g)
	}
	if got := c.Stats().IHaveExcess - excess; got != uint64(cfg.MissingMaxPerPeer) {
		t.Fatalf("%d announcements ignored while its promises wait, want %d", got, cfg.MissingMaxPerPeer)
	}
	grafts(cfg.PromiseTimeout)
	if s := c.Stats(); s.BrokenPromises != uint64(cfg.MissingMaxPerPeer) || c.announced["m"] != 0 {
		t.Fatalf("after PromiseTimeout: %d broken promises, %d slots held; want %d, 0", s.BrokenPromises, c.announced["m"], cfg.MissingMaxPerPeer)
	}
	announce(2)
	if g := grafts(cfg.MissingTimeout + cfg.GraftRetryTimeout); g != cfg.MissingMaxPerPeer {
		t.Fatalf("once judged: %d Grafts, want %d", g, cfg.MissingMaxPerPeer)
	}
}
