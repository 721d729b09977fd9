package gossip

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// catchUpConfig is testConfig with catch-up on, over a 5 minute window.
func catchUpConfig() Config {
	cfg := testConfig()
	cfg.CatchUpWindow = 5 * time.Minute
	cfg.CacheMaxMessages = 4096
	cfg.SeenMaxIDs = 4096
	return cfg
}

// settle delivers everything and lets catch-up run for d, in steps of a second.
func (n *testNet) settle(d time.Duration) {
	n.deliverAll()
	for range int(d / time.Second) {
		n.tick(time.Second)
		n.deliverAll()
	}
}

// A late joiner gets what was broadcast before it came, flagged as history, in the order of
// sending, with the origin's time; even when the holder lists at most 8 messages per Have,
// so that it takes several exchanges and the detailed Digest.
func TestCatchUpLateJoinerManyMessages(t *testing.T) {
	cfg := catchUpConfig()
	cfg.CatchUpMaxRefs = 8
	n := newTestNet(t, cfg, 1)
	n.add("a")
	n.add("b")
	n.link("a", "b")
	var want []MessageID
	for i := range 40 {
		want = append(want, n.broadcast("a", []byte(fmt.Sprintf("line %d", i))))
		n.tick(100 * time.Millisecond)
	}
	n.settle(5 * time.Second)
	n.add("c")
	n.link("b", "c")
	n.out.Reset()
	n.settle(2 * time.Minute)
	if testing.Verbose() {
		t.Log(n.out.String())
	}
	got := n.history["c"]
	if len(got) != len(want) {
		t.Fatalf("c delivered %d messages as history, want %d", len(got), len(want))
	}
	received := map[MessageID]bool{}
	for i, d := range got {
		received[d.ID] = true
		if i > 0 && d.Time < got[i-1].Time {
			t.Errorf("history delivery %d (time %d) came before an older one (time %d)", i, d.Time, got[i-1].Time)
		}
		if d.Origin != "a" || d.Seq == 0 {
			t.Errorf("history delivery %d: origin %q seq %d", i, d.Origin, d.Seq)
		}
	}
	for i, id := range want {
		if !received[id] {
			t.Errorf("line %d never reached c", i)
		}
	}
	if s := n.core("b").Stats(); s.Sent[Digest] == 0 {
		t.Error("b sent no Digest")
	}
}

// h is a hostile neighbour that asks a for its whole history again and again; a sends h no
// more than the budget allows: the burst, plus the rate over the time elapsed.
func TestCatchUpAnswersAreBudgeted(t *testing.T) {
	cfg := catchUpConfig()
	cfg.CatchUpPeerRate = 2000
	cfg.CatchUpPeerBurst = 4000
	n := newTestNet(t, cfg, 1)
	a := n.add("a")
	n.add("h")
	n.link("a", "h")
	for i := range 200 {
		n.broadcast("a", []byte(fmt.Sprintf("payload %03d of forty bytes, or so", i)))
	}
	n.queue = nil
	n.tick(5 * time.Second)
	n.queue = nil
	from, to := a.digestRange()
	var refs []MessageRef
	for _, e := range a.entries(from, to) {
		if len(refs) == cfg.CatchUpMaxRefs {
			break
		}
		refs = append(refs, MessageRef{Time: e.time, ID: e.id})
	}
	before := n.sentBytes["a"]
	start := *before
	const seconds = 10
	for range seconds {
		for range 50 {
			// "I hold nothing in the window": a answers with its list of what h lacks.
			if err := a.Step("h", Message{Type: Have, Spans: []Span{{From: from, To: to}}}); err != nil {
				t.Fatal(err)
			}
			// "Send me all of it".
			if err := a.Step("h", Message{Type: Pull, Refs: refs}); err != nil {
				t.Fatal(err)
			}
			// "Compare with this" (a summary that never matches).
			if err := a.Step("h", Message{Type: Digest, Salt: 1, Spans: []Span{{From: from, To: to, Count: 1}}}); err != nil {
				t.Fatal(err)
			}
		}
		n.collect("a")
		n.queue = nil
		n.tick(time.Second)
		n.queue = nil
	}
	sent := 0
	for typ := Have; typ <= History; typ++ {
		sent += n.sentBytes["a"][typ] - start[typ]
	}
	sent += n.sentBytes["a"][Digest] - start[Digest]
	limit := cfg.CatchUpPeerBurst + seconds*cfg.CatchUpPeerRate
	// a's own periodic Digests (one every CatchUpInterval) are not answers.
	own := (seconds/int(cfg.CatchUpInterval/time.Second) + 1) * estimateSize(&Message{Type: Digest, Spans: make([]Span, 1)})
	t.Logf("a sent %d bytes to h in %d s (budget %d, own Digests %d); throttled %d answers", sent, seconds, limit, own, a.Stats().CatchUpThrottled)
	if sent > limit+own {
		t.Errorf("a sent %d bytes in answer to h, over the budget of %d", sent, limit)
	}
	if a.Stats().CatchUpThrottled == 0 {
		t.Error("no answer was throttled")
	}
}

// A History that answers no Pull is ignored before its proof is looked at, and a Pull of
// messages a does not hold is answered with nothing.
func TestCatchUpUnsolicited(t *testing.T) {
	n := newTestNet(t, catchUpConfig(), 1)
	a := n.add("a")
	n.add("m")
	n.link("a", "m")
	n.queue = nil
	h := Message{Type: History, ID: n.idFor("x"), Origin: "m", Hops: 1, Seq: 1, Time: 0, Payload: []byte("pushed")}
	if err := a.Step("m", h); err != nil {
		t.Fatal(err)
	}
	if err := a.Step("m", Message{Type: Pull, Refs: []MessageRef{{Time: 0, ID: n.idFor("y")}}}); err != nil {
		t.Fatal(err)
	}
	// m greeted a (its first frame as a neighbour); a must do nothing more.
	if rd := a.Ready(); len(rd.Messages)+len(rd.Deliveries)+len(rd.Misbehaviour) != 0 {
		t.Fatalf("a acted on an unsolicited History or a Pull of nothing: %+v", rd)
	}
	if s := a.Stats(); s.HistoryDelivered != 0 || s.HistoryMessages != 0 {
		t.Fatalf("stats after unsolicited history: %+v", s)
	}
}

// A Have naming more messages than a may pull at once costs one bounded Pull; after the pull
// timeout the same messages can be asked of someone else, a late answer is still taken, and
// the pulls nobody answers are forgotten.
func TestCatchUpPullsBounded(t *testing.T) {
	cfg := catchUpConfig()
	cfg.CatchUpMaxPulls = 100
	n := newTestNet(t, cfg, 1)
	a := n.add("a")
	n.add("m")
	n.add("b")
	n.link("a", "m")
	n.link("a", "b")
	n.queue = nil
	refs := make([]MessageRef, cfg.CatchUpMaxRefs)
	for i := range refs {
		refs[i] = MessageRef{Time: int64(-i), ID: n.idFor(fmt.Sprintf("fake%d", i))}
	}
	if err := a.Step("m", Message{Type: Have, Reply: true, Refs: refs}); err != nil {
		t.Fatal(err)
	}
	rd := a.Ready()
	if len(rd.Messages) != 1 || rd.Messages[0].Msg.Type != Pull || len(rd.Messages[0].Msg.Refs) != cfg.CatchUpMaxPulls {
		t.Fatalf("want one Pull of %d refs, got %+v", cfg.CatchUpMaxPulls, rd.Messages)
	}
	// The same list from b: all already asked for, or over the bound.
	if err := a.Step("b", Message{Type: Have, Reply: true, Refs: refs}); err != nil {
		t.Fatal(err)
	}
	if rd := a.Ready(); len(rd.Messages) != 0 {
		t.Fatalf("a pulled again before the timeout: %+v", rd.Messages)
	}
	// After the timeout the same messages may be asked of someone else.
	n.tick(cfg.CatchUpPullTimeout)
	n.queue = nil
	if err := a.Step("b", Message{Type: Have, Reply: true, Refs: refs}); err != nil {
		t.Fatal(err)
	}
	if rd := a.Ready(); len(rd.Messages) != 1 || rd.Messages[0].To != "b" || len(rd.Messages[0].Msg.Refs) != cfg.CatchUpMaxPulls {
		t.Fatalf("after the timeout a did not ask b for the same %d: %+v", cfg.CatchUpMaxPulls, rd.Messages)
	}
	// A late answer from m is still taken within twice the timeout...
	h := Message{Type: History, ID: refs[0].ID, Origin: "o", Hops: 1, Seq: 1, Time: refs[0].Time, Payload: []byte("late")}
	if err := a.Step("m", h); err != nil {
		t.Fatal(err)
	}
	if rd := a.Ready(); len(rd.Deliveries) != 1 || !rd.Deliveries[0].History {
		t.Fatalf("a late answer was not delivered: %+v", rd)
	}
	// ... and the pulls that nobody answered are forgotten after twice the timeout.
	n.tick(2 * cfg.CatchUpPullTimeout)
	if p := a.Stats().PendingPulls; p != 0 {
		t.Fatalf("%d pulls pending after twice the timeout", p)
	}
}

// A node that restarted with the same ID gets its own messages from before the restart back
// as history (a reloaded browser tab shows what it said).
func TestCatchUpOwnMessagesAfterRestart(t *testing.T) {
	n := newTestNet(t, catchUpConfig(), 1)
	n.add("a")
	n.add("b")
	n.link("a", "b")
	id := n.broadcast("a", []byte("before the restart"))
	n.settle(5 * time.Second)
	// a restarts: a new core, same ID.
	cfg := n.cfg
	cfg.Self = "a"
	cfg.Rand = rand.New(rand.NewPCG(99, 99))
	fresh, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fresh.Tick(n.now)
	n.cores["a"] = fresh
	n.core("b").NeighborDown("a")
	n.collect("b")
	n.link("a", "b")
	n.settle(5 * time.Second)
	got := n.history["a"]
	if len(got) != 1 || got[0].ID != id || got[0].Origin != "a" {
		t.Fatalf("a's history after the restart: %+v", got)
	}
}

// A History older than the window is refused for its time, like any message that old.
func TestCatchUpTooOld(t *testing.T) {
	cfg := catchUpConfig()
	n := newTestNet(t, cfg, 1)
	a := n.add("a")
	n.add("m")
	n.link("a", "m")
	n.tick(time.Hour)
	n.queue = nil
	old := n.now - cfg.CatchUpWindow - time.Minute
	ref := MessageRef{Time: old.Milliseconds(), ID: n.idFor("old")}
	// a does not even ask for it.
	if err := a.Step("m", Message{Type: Have, Reply: true, Refs: []MessageRef{ref}}); err != nil {
		t.Fatal(err)
	}
	if rd := a.Ready(); len(rd.Messages) != 0 {
		t.Fatalf("a pulled a message older than its window: %+v", rd.Messages)
	}
	// Asked for (a ref with a recent time), the answer is checked against its real time.
	a.pulls = map[MessageID]time.Duration{ref.ID: n.now + time.Second}
	h := Message{Type: History, ID: ref.ID, Origin: "m", Hops: 1, Seq: 1, Time: ref.Time, Payload: []byte("old")}
	if err := a.Step("m", h); err != nil {
		t.Fatal(err)
	}
	rd := a.Ready()
	if len(rd.Deliveries) != 0 || len(rd.Misbehaviour) != 1 || rd.Misbehaviour[0].Reason != RefusedClock {
		t.Fatalf("a History older than the window: %+v", rd)
	}
}

// With two in sync, the periodic exchange is a summary Digest each way and nothing more, and
// it costs a few dozen bytes.
func TestCatchUpQuietAtRest(t *testing.T) {
	n := newTestNet(t, catchUpConfig(), 1)
	n.add("a")
	n.add("b")
	n.link("a", "b")
	for i := range 20 {
		n.broadcast("a", []byte(fmt.Sprint("message ", i)))
		n.broadcast("b", []byte(fmt.Sprint("message ", i)))
		n.settle(time.Second)
	}
	n.settle(10 * time.Second)
	before := *n.sentBytes["a"]
	n.settle(time.Minute)
	after := *n.sentBytes["a"]
	for typ := Have; typ <= History; typ++ {
		if after[typ] != before[typ] {
			t.Errorf("a sent %v at rest", typ)
		}
	}
	if d := after[Digest] - before[Digest]; d == 0 || d > 6*64 {
		t.Errorf("a sent %d bytes of Digests in a minute at rest, want a few dozen per interval", d)
	}
}

// FuzzCatchUpStep feeds a core that holds a history with arbitrary Digests, Haves and Pulls
// from a neighbour: Step refuses or answers, and never panics or answers beyond its bounds.
func FuzzCatchUpStep(f *testing.F) {
	f.Add(uint8(5), int64(0), int64(10), uint8(3), uint64(1), uint8(2), true)
	f.Add(uint8(6), int64(-1<<62), int64(1<<62), uint8(16), uint64(7), uint8(0), false)
	f.Add(uint8(7), int64(1000), int64(1), uint8(1), uint64(0), uint8(9), false)
	f.Fuzz(func(t *testing.T, typ uint8, from, width int64, spans uint8, salt uint64, refs uint8, reply bool) {
		cfg := catchUpConfig()
		n := newTestNet(t, cfg, 1)
		a := n.add("a")
		n.add("m")
		n.link("a", "m")
		for i := range 20 {
			n.broadcast("a", []byte{byte(i)})
			n.tick(time.Second)
		}
		n.queue = nil
		m := Message{Type: MessageType(5 + typ%3), Salt: salt, Reply: reply}
		for i := range int(spans % 20) {
			m.Spans = append(m.Spans, Span{From: from + int64(i)*width, To: from + int64(i+1)*width, Count: uint32(i), Hash: salt >> i})
		}
		for i := range int(refs) {
			m.Refs = append(m.Refs, MessageRef{Time: from + int64(i), ID: MessageID{byte(i), 1}})
		}
		_ = a.Step("m", m)
		rd := a.Ready()
		for _, e := range rd.Messages {
			if len(e.Msg.Refs) > cfg.CatchUpMaxRefs || len(e.Msg.Spans) > cfg.CatchUpSpans {
				t.Fatalf("answer beyond the bounds: %d refs, %d spans", len(e.Msg.Refs), len(e.Msg.Spans))
			}
			if e.Msg.Type == Digest || e.Msg.Type == Have || e.Msg.Type == Pull {
				if err := a.checkCatchUp(&e.Msg); err != nil {
					t.Fatalf("a sent a %v it would refuse: %v", e.Msg.Type, err)
				}
			}
		}
	})
}

// A genuine History refused as a replay (a message of an origin's run from before it
// restarted, say) is not pulled again at the next Digest.
func TestCatchUpRefusedNotPulledAgain(t *testing.T) {
	n := newTestNet(t, catchUpConfig(), 1)
	a := n.add("a")
	n.add("m")
	n.link("a", "m")
	n.tick(time.Minute)
	for seq := uint64(1); seq <= 3; seq++ {
		g := Message{Type: Gossip, ID: n.idFor(fmt.Sprint("live", seq)), Origin: "o", Hops: 1, Seq: seq, Time: n.now.Milliseconds(), Payload: []byte("x")}
		if err := a.Step("m", g); err != nil {
			t.Fatal(err)
		}
	}
	a.Ready()
	ref := MessageRef{Time: n.now.Milliseconds() - 1000, ID: n.idFor("old run")}
	if err := a.Step("m", Message{Type: Have, Reply: true, Refs: []MessageRef{ref}}); err != nil {
		t.Fatal(err)
	}
	if rd := a.Ready(); len(rd.Messages) != 1 || rd.Messages[0].Msg.Type != Pull {
		t.Fatalf("a did not pull: %+v", rd.Messages)
	}
	h := Message{Type: History, ID: ref.ID, Origin: "o", Hops: 1, Seq: 2, Time: ref.Time, Payload: []byte("old")}
	if err := a.Step("m", h); err != nil {
		t.Fatal(err)
	}
	if rd := a.Ready(); len(rd.Deliveries) != 0 || len(rd.Misbehaviour) != 1 || rd.Misbehaviour[0].Reason != RefusedReplay {
		t.Fatalf("want a refusal as a replay: %+v", rd)
	}
	n.tick(a.cfg.CatchUpPullTimeout)
	if err := a.Step("m", Message{Type: Have, Reply: true, Refs: []MessageRef{ref}}); err != nil {
		t.Fatal(err)
	}
	if rd := a.Ready(); len(rd.Messages) != 0 {
		t.Fatalf("a pulled a refused message again: %+v", rd.Messages)
	}
}

// When catch-up wins the race against the tree (a message pulled just before its Gossip
// arrives), the tree's copy is not taken for a duplicate: the link it came on is not pruned,
// and the message goes on down the tree.
func TestCatchUpDoesNotShapeTheTree(t *testing.T) {
	n := newTestNet(t, catchUpConfig(), 1)
	b := n.add("b")
	for _, p := range []string{"a", "c", "d"} {
		n.add(p)
		n.link("b", p)
	}
	n.queue = nil
	id := n.idFor("raced")
	m := Message{Type: Gossip, ID: id, Origin: "o", Hops: 3, Seq: 1, Time: n.now.Milliseconds(), Payload: []byte("raced")}
	if err := b.Step("c", Message{Type: Have, Reply: true, Refs: []MessageRef{{Time: m.Time, ID: id}}}); err != nil {
		t.Fatal(err)
	}
	b.Ready()
	h := m
	h.Type = History
	if err := b.Step("c", h); err != nil {
		t.Fatal(err)
	}
	if rd := b.Ready(); len(rd.Deliveries) != 1 || !rd.Deliveries[0].History {
		t.Fatalf("the History was not delivered: %+v", rd)
	}
	if err := b.Step("a", m); err != nil {
		t.Fatal(err)
	}
	rd := b.Ready()
	if len(rd.Deliveries) != 0 {
		t.Fatalf("delivered twice: %+v", rd.Deliveries)
	}
	forwarded := map[string]bool{}
	for _, e := range rd.Messages {
		if e.Msg.Type == Prune {
			t.Fatalf("b pruned %s for the tree's copy of a message it had by catch-up", e.To)
		}
		if e.Msg.Type == Gossip && e.Msg.ID == id {
			forwarded[e.To] = true
		}
	}
	if !forwarded["d"] || forwarded["a"] {
		t.Fatalf("the tree's copy went to %v, want d and not back to a", forwarded)
	}
	if !slices.Contains(b.EagerPeers(), "a") {
		t.Fatalf("a is no longer eager: %v", b.EagerPeers())
	}
	// A second copy is a duplicate as usual.
	if err := b.Step("d", m); err != nil {
		t.Fatal(err)
	}
	if rd := b.Ready(); len(rd.Messages) != 1 || rd.Messages[0].Msg.Type != Prune || rd.Messages[0].To != "d" {
		t.Fatalf("a second copy: %+v, want a Prune to d", rd.Messages)
	}
}

// A neighbour that lists messages for catch-up and then answers no Pull for them (a silent
// dropper that still takes part in catch-up) is reported, once per Pull, after twice
// CatchUpPullTimeout: UnansweredPull. One that answers is never reported.
func TestCatchUpUnansweredPullReported(t *testing.T) {
	for _, drops := range []bool{false, true} {
		n := newTestNet(t, catchUpConfig(), 1)
		n.add("a")
		n.add("b")
		n.link("a", "b")
		for i := range 5 {
			n.broadcast("a", []byte(fmt.Sprint("m", i)))
		}
		n.settle(5 * time.Second)
		c := n.add("c")
		n.link("b", "c")
		for range 60 {
			n.tick(time.Second)
			for len(n.queue) > 0 {
				f := n.queue[0]
				n.queue = n.queue[1:]
				if drops && f.from == "b" && f.to == "c" && f.msg.Type == History {
					continue
				}
				n.step(f)
			}
		}
		got := c.Stats().UnansweredPulls
		if drops && (got == 0 || len(n.history["c"]) != 0 || !strings.Contains(n.out.String(), "c reports b") ||
			!strings.Contains(n.out.String(), UnansweredPull.String())) {
			t.Errorf("b drops its History: %d unanswered pulls reported, %d delivered by catch-up; want reports, nothing delivered", got, len(n.history["c"]))
		}
		if !drops && (got != 0 || len(n.history["c"]) != 5) {
			t.Errorf("b answers: %d unanswered pulls reported, %d of 5 delivered by catch-up", got, len(n.history["c"]))
		}
	}
}
