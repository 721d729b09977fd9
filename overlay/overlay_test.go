package overlay

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/scoring"
)

// peerAConfig is DefaultConfig for peer "a" with seeded random sources.
func peerAConfig() Config {
	c := DefaultConfig()
	c.Self = "a"
	c.Membership.Rand = rand.New(rand.NewPCG(1, 1))
	c.Gossip.Rand = rand.New(rand.NewPCG(1, 2))
	return c
}

// startedPeer is a Peer for c, ticked once at time 0.
func startedPeer(t *testing.T, c Config) *Peer {
	t.Helper()
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	p.Tick(0)
	return p
}

func TestConfigValidation(t *testing.T) {
	valid := peerAConfig
	if _, err := New(valid()); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	off := valid()
	off.DisableDefences()
	if _, err := New(off); err != nil || off.Scoring.Enabled || off.Gossip.LinkRate != 0 {
		t.Fatalf("DisableDefences: %v, %+v", err, off.Scoring)
	}
	shared := rand.New(rand.NewPCG(3, 3))
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		// Several faults at once: the first in field order is reported.
		{"no self, no rand", func(c *Config) { c.Self, c.Membership.Rand = "", nil }, "Config.Self is required"},
		{"no membership rand", func(c *Config) { c.Membership.Rand, c.Gossip.Rand = nil, nil }, "Config.Membership.Rand is required"},
		{"no gossip rand", func(c *Config) { c.Gossip.Rand = nil }, "Config.Gossip.Rand is required"},
		{"shared rand", func(c *Config) { c.Membership.Rand, c.Gossip.Rand = shared, shared }, "must be different sources"},
		{"membership field", func(c *Config) { c.Membership.ActiveSize = 0 }, "overlay: membership: Config.ActiveSize"},
		{"gossip field", func(c *Config) { c.Gossip.MaxPayload = 0 }, "overlay: gossip: invalid config: MaxPayload"},
		{"gossip defence", func(c *Config) { c.Gossip.LinkBurst = 0 }, "overlay: gossip: invalid config: defences: LinkBurst"},
		{"scoring field", func(c *Config) { c.Scoring.CoolingPeriod = 0 }, "overlay: scoring: invalid config: CoolingPeriod"},
	} {
		c := valid()
		tc.change(&c)
		_, err := New(c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// Self given once reaches both cores, whatever the templates said.
func TestSelfReachesBothCores(t *testing.T) {
	n := newTestNet(t, 1)
	n.cfg.Membership.Self, n.cfg.Gossip.Self = "stale", "stale"
	n.add("a")
	n.add("b", "a")
	n.deliver()
	id := n.broadcast("a", "hi")
	n.deliver()
	if got := n.missing(id); len(got) != 0 {
		t.Fatalf("not delivered at %v", got)
	}
	if v := n.peers["b"].ActiveView(); !slices.Equal(v, []string{"a"}) {
		t.Fatalf("b's active view %v, want [a]", v)
	}
}

// A join makes both ends neighbours in both cores, and the events reach the driver after the
// gossip core has them.
func TestJoinFeedsGossip(t *testing.T) {
	n := newTestNet(t, 2)
	a := n.add("a")
	b := n.add("b", "a")
	n.deliver()
	for name, p := range map[string]*Peer{"a": a, "b": b} {
		other := map[string]string{"a": "b", "b": "a"}[name]
		if !slices.Equal(p.EagerPeers(), []string{other}) || len(p.LazyPeers()) != 0 {
			t.Errorf("%s: eager %v lazy %v, want eager [%s]", name, p.EagerPeers(), p.LazyPeers(), other)
		}
		if ev := n.events[name]; len(ev) != 1 || ev[0] != (membership.Event{Type: membership.NeighborUp, Peer: other}) {
			t.Errorf("%s: events %v, want one NeighborUp %s", name, ev, other)
		}
	}
	id := n.broadcast("b", "hello")
	if n.delivered["b"][id] != 1 {
		t.Fatal("own broadcast not delivered at once")
	}
	n.deliver()
	if n.delivered["a"][id] != 1 {
		t.Fatal("broadcast not delivered at a")
	}
}

// PeerDown of a neighbour removes it from both cores in one Ready.
func TestPeerDownFeedsGossip(t *testing.T) {
	n := newTestNet(t, 3)
	n.add("a")
	n.add("b", "a")
	n.deliver()
	a := n.peers["a"]
	a.PeerDown(n.now, "b")
	rd := a.Ready()
	if len(rd.Events) == 0 || rd.Events[0] != (membership.Event{Type: membership.NeighborDown, Peer: "b"}) {
		t.Fatalf("events %v, want NeighborDown b first", rd.Events)
	}
	if len(a.EagerPeers())+len(a.LazyPeers()) != 0 {
		t.Fatalf("gossip still has neighbours %v %v", a.EagerPeers(), a.LazyPeers())
	}
}

// A node whose every contact failed reports NeedContacts; the driver's Join gets it back in.
func TestNeedContacts(t *testing.T) {
	n := newTestNet(t, 4)
	n.add("a")
	n.add("b", "a")
	n.deliver()
	n.add("c", "gone")
	n.deliver() // the JOIN to "gone" fails: PeerDown, then NeedContacts
	if !slices.ContainsFunc(n.events["c"], func(e membership.Event) bool { return e.Type == membership.NeedContacts }) {
		t.Fatalf("c's events %v: no NeedContacts", n.events["c"])
	}
	n.peers["c"].Join(n.now, "b")
	n.drain("c")
	n.deliver()
	if len(n.peers["c"].ActiveView()) == 0 {
		t.Fatal("c still isolated after Join")
	}
}

// NextDeadline is the earlier core's deadline; TickDue before it does nothing, at it fires.
func TestDeadlines(t *testing.T) {
	n := newTestNet(t, 5)
	n.build(8)
	p := n.peers[peerName(3)]
	at, ok := p.NextDeadline()
	if !ok {
		t.Fatal("no deadline: the shuffle round is always armed")
	}
	if at <= n.now || at > n.now+n.cfg.Membership.ShuffleInterval {
		t.Fatalf("deadline %v not within a round of %v", at, n.now)
	}
	p.TickDue(at - time.Millisecond)
	if p.HasReady() {
		t.Fatal("TickDue before the deadline produced output")
	}
	// A first broadcast prunes duplicate paths into lazy links; a broadcast from a peer with
	// lazy neighbours then arms the IHave batch: an earlier deadline.
	n.broadcast(peerName(0), "prune")
	n.runFor(time.Second)
	for _, name := range n.live() {
		if len(n.peers[name].LazyPeers()) > 0 {
			n.broadcast(name, "batch")
			// Catch-up's Digest timer may come first; the batch must not come later.
			if got, _ := n.peers[name].NextDeadline(); got <= n.now || got > n.now+n.cfg.Gossip.LazyFlushInterval {
				t.Fatalf("deadline %v after a broadcast, want at most the IHave batch at %v", got, n.now+n.cfg.Gossip.LazyFlushInterval)
			}
			return
		}
	}
	t.Fatal("no peer with a lazy neighbour after a broadcast")
}

// Every broadcast reaches every peer of a settled overlay, once.
func TestBroadcastReachesAll(t *testing.T) {
	n := newTestNet(t, 6)
	n.build(30)
	for i := range 10 {
		id := n.broadcast(peerName(i*3), "m")
		n.runFor(time.Second)
		if m := n.missing(id); len(m) != 0 {
			t.Fatalf("broadcast %d missed %v", i, m)
		}
	}
}

// After crashes the survivors repair their views (the invariants hold throughout) and
// broadcasts reach every live peer again.
func TestCrashAndRepair(t *testing.T) {
	n := newTestNet(t, 7)
	n.answerContacts = true
	n.build(30)
	for i := range 10 {
		n.crash(peerName(2*i + 1))
	}
	n.runFor(5 * n.cfg.Membership.ShuffleInterval)
	for _, name := range n.live() {
		for _, q := range n.peers[name].ActiveView() {
			if n.dead[q] {
				t.Errorf("%s still has crashed %s in its active view", name, q)
			}
		}
	}
	for _, origin := range []string{peerName(0), peerName(10), peerName(20)} {
		id := n.broadcast(origin, "after")
		n.runFor(2 * time.Second)
		if m := n.missing(id); len(m) != 0 {
			t.Fatalf("broadcast from %s missed %v", origin, m)
		}
	}
}

// Messages broadcast while two thirds of the overlay have just crashed, before it repaired, reach
// every survivor in the end through catch-up, and a peer that joins afterwards gets them all,
// flagged as history.
func TestCatchUpAfterCrash(t *testing.T) {
	n := newTestNet(t, 11)
	n.answerContacts = true
	n.build(30)
	for i := range 10 {
		n.crash(peerName(3*i + 1))
		n.crash(peerName(3*i + 2))
	}
	var ids []gossip.MessageID
	for i := range 10 {
		live := n.live()
		ids = append(ids, n.broadcast(live[i%len(live)], fmt.Sprintf("during repair %d", i)))
	}
	immediate := 0
	for _, id := range ids {
		immediate += len(n.missing(id))
	}
	// A few repair rounds, and two rounds of Digests to each neighbour.
	n.runFor(3*n.cfg.Membership.ShuffleInterval + 2*n.cfg.Gossip.CatchUpInterval)
	caught := uint64(0)
	for _, name := range n.live() {
		caught += n.peers[name].Stats().Gossip.HistoryDelivered
	}
	t.Logf("(message, survivor) pairs missing right after the broadcasts: %d; delivered by catch-up since: %d", immediate, caught)
	for k, id := range ids {
		if m := n.missing(id); len(m) != 0 {
			t.Errorf("message %d never reached %v", k, m)
		}
	}
	late := n.add("late", n.live()[0])
	n.runFor(2 * n.cfg.Gossip.CatchUpInterval)
	for k, id := range ids {
		if n.delivered["late"][id] != 1 {
			t.Errorf("the late peer did not deliver message %d", k)
		}
	}
	if s := late.Stats().Gossip; s.HistoryDelivered != uint64(len(ids)) {
		t.Errorf("late peer: %d deliveries flagged as history, want %d", s.HistoryDelivered, len(ids))
	}
}

// Random joins, crashes, broadcasts and time: the invariants are checked after every event
// (drain calls checkPeer), for several seeds.
func TestRandomInvariants(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		n := newTestNet(t, seed)
		n.answerContacts = true
		n.add(peerName(0))
		next := 1
		for range 400 {
			live := n.live()
			switch r := n.rng.IntN(10); {
			case r < 3 && next < 60:
				n.add(peerName(next), live[n.rng.IntN(len(live))])
				next++
			case r < 4 && len(live) > 3:
				n.crash(live[n.rng.IntN(len(live))])
			case r < 7:
				n.broadcast(live[n.rng.IntN(len(live))], "x")
			default:
				n.runFor(time.Duration(1+n.rng.IntN(3000)) * time.Millisecond)
			}
			n.deliver()
		}
	}
}

// The same seed gives the same run: the composition adds no hidden state or randomness.
func TestDeterministic(t *testing.T) {
	run := func() []membership.Event {
		n := newTestNet(t, 42)
		n.answerContacts = true
		n.build(20)
		n.crash(peerName(4))
		n.runFor(5 * time.Second)
		n.broadcast(peerName(7), "d")
		n.runFor(time.Second)
		var all []membership.Event
		for _, name := range n.names {
			all = append(all, n.events[name]...)
		}
		return all
	}
	if a, b := run(), run(); !slices.Equal(a, b) {
		t.Fatal("two runs with one seed differ")
	}
}

// A HyParView message the membership core refuses because of its sender reaches the driver in
// Ready.MembershipMisbehaviour, for peer scoring, like gossip's refusals.
func TestMembershipMisbehaviourPassedUp(t *testing.T) {
	p := startedPeer(t, peerAConfig())
	// A SHUFFLE_REPLY while no shuffle of a's is outstanding.
	if err := p.StepMembership(time.Second, "x", membership.Message{Type: membership.ShuffleReply, Nodes: []string{"fake"}}); err != nil {
		t.Fatal(err)
	}
	if !p.HasReady() {
		t.Fatal("no Ready after a refused message")
	}
	rd := p.Ready()
	want := []membership.Misbehaviour{{Peer: "x", Reason: membership.RefusedUnsolicitedReply, Type: membership.ShuffleReply}}
	if !slices.Equal(rd.MembershipMisbehaviour, want) {
		t.Errorf("MembershipMisbehaviour %+v, want %+v", rd.MembershipMisbehaviour, want)
	}
	if slices.Contains(p.PassiveView(), "fake") {
		t.Error("the unsolicited reply was merged")
	}
}

// TestAttackFloodScoredOut: a neighbour that floods its links far beyond their forwarding
// budget is scored below the threshold by every victim, disconnected, kept out of the views
// and ignored for the cooling period, while honest broadcasts keep reaching every honest peer.
// With the defences off the same flood is delivered everywhere and nobody is disconnected.
func TestAttackFloodScoredOut(t *testing.T) {
	run := func(defences bool) (n *testNet, victims []string, floodDelivered int) {
		n = newTestNet(t, 11)
		// Small budgets keep the test quick; the defaults are checked in package gossip.
		n.cfg.Gossip.LinkRate, n.cfg.Gossip.LinkBurst = 50, 100
		if !defences {
			n.cfg.DisableDefences()
		}
		n.build(20)
		n.add("mallory", peerName(3))
		n.deliver()
		n.runFor(2 * n.cfg.Membership.ShuffleInterval)
		victims = n.peers["mallory"].ActiveView()
		if len(victims) == 0 {
			t.Fatal("mallory has no neighbour")
		}
		// 1,000 messages from 1,000 Sybil origins, pushed at once to every neighbour.
		for i := range 1000 {
			var id gossip.MessageID
			id[0], id[1], id[2] = 0xee, byte(i>>8), byte(i)
			for _, v := range victims {
				m := gossip.Message{Type: gossip.Gossip, ID: id, Origin: fmt.Sprintf("sybil%d", i), Hops: 1, Seq: 1,
					Time: n.now.Milliseconds(), Payload: []byte("flood")}
				n.queue = append(n.queue, inFlight{from: "mallory", to: v, gm: &m})
			}
		}
		n.deliver()
		for _, name := range n.live() {
			for id := range n.delivered[name] {
				if id[0] == 0xee {
					floodDelivered++
				}
			}
		}
		return n, victims, floodDelivered
	}

	off, _, deliveredOff := run(false)
	n, victims, delivered := run(true)
	t.Logf("1,000-message flood by one neighbour of %d: %d deliveries without defences, %d with (LinkBurst %d)",
		len(victims), deliveredOff, delivered, n.cfg.Gossip.LinkBurst)
	for _, name := range off.live() {
		if len(off.disconnects[name]) != 0 {
			t.Fatalf("defences off: %s disconnected %v", name, off.disconnects[name])
		}
	}
	if delivered >= deliveredOff/2 {
		t.Fatalf("the flood was not limited: %d deliveries, %d without defences", delivered, deliveredOff)
	}
	for _, v := range victims {
		p := n.peers[v]
		if !slices.Contains(n.disconnects[v], "mallory") {
			t.Fatalf("%s did not disconnect mallory (disconnected %v)", v, n.disconnects[v])
		}
		if slices.Contains(p.ActiveView(), "mallory") || slices.Contains(p.PassiveView(), "mallory") {
			t.Fatalf("%s keeps mallory in its views", v)
		}
		if !p.Refused(n.now, "mallory") || p.Score(n.now, "mallory") != 0 {
			t.Fatalf("%s: mallory refused %v", v, p.Refused(n.now, "mallory"))
		}
		st := p.Stats()
		if st.Scoring.Disconnects != 1 || st.Scoring.Refused != 1 || st.Gossip.RefusedLinkRate == 0 {
			t.Fatalf("%s stats: %+v, refused for link rate %d", v, st.Scoring, st.Gossip.RefusedLinkRate)
		}
	}
	// mallory tries to come back: its requests are ignored during the cooling period.
	n.peers["mallory"].Join(n.now, victims[0])
	n.drain("mallory")
	n.runFor(3 * n.cfg.Membership.ShuffleInterval)
	if st := n.peers[victims[0]].Stats(); st.IgnoredFromRefused == 0 {
		t.Fatalf("%s ignored nothing from mallory", victims[0])
	}
	for _, v := range victims {
		if slices.Contains(n.peers[v].ActiveView(), "mallory") {
			t.Fatalf("%s took mallory back during its cooling period", v)
		}
	}
	// Honest broadcasts still reach every honest peer.
	for i := range 5 {
		id := n.broadcast(peerName(i*4), "honest")
		n.runFor(2 * time.Second)
		for _, m := range n.missing(id) {
			if m != "mallory" {
				t.Fatalf("honest broadcast %d missed %s", i, m)
			}
		}
	}
	// After the cooling period the refusal ends.
	n.runFor(n.cfg.Scoring.CoolingPeriod)
	if n.peers[victims[0]].Refused(n.now, "mallory") {
		t.Fatal("mallory still refused after the cooling period")
	}
}

// TestHonestRunScoresNobodyOut: in an honest overlay after crashes, scoring disconnects no
// one and credits first deliveries.
func TestHonestRunScoresNobodyOut(t *testing.T) {
	n := newTestNet(t, 12)
	n.answerContacts = true
	n.build(30)
	for k := range 8 {
		n.crash(peerName(3*k + 2))
	}
	n.runFor(n.cfg.Membership.ShuffleInterval)
	for i := range 30 {
		if n.dead[peerName(i)] {
			continue
		}
		id := n.broadcast(peerName(i), "m")
		n.runFor(500 * time.Millisecond)
		if m := n.missing(id); len(m) != 0 {
			t.Fatalf("broadcast %d missed %v", i, m)
		}
	}
	credited := uint64(0)
	for _, name := range n.live() {
		st := n.peers[name].Stats().Scoring
		if st.Disconnects != 0 || len(n.disconnects[name]) != 0 {
			t.Fatalf("%s disconnected %v", name, n.disconnects[name])
		}
		credited += st.FirstDeliveries
	}
	if credited == 0 {
		t.Fatal("no first delivery was credited")
	}
}

// A peer that keeps sending SHUFFLE_REPLYs nobody asked for is cut off by peer scoring: each
// refusal is a membership_spam offence, and the 11th takes it below the threshold. Walks from
// a stranger weigh a quarter as much. With scoring off nobody is cut off.
func TestMembershipSpamScoredOut(t *testing.T) {
	for _, on := range []bool{true, false} {
		c := peerAConfig()
		if !on {
			c.DisableDefences()
			c.Membership.MaxPendingShuffles, c.Membership.ShuffleReplyTimeout = 2, 20*time.Second
		}
		p := startedPeer(t, c)
		var cut []string
		for i := range 11 {
			if err := p.StepMembership(time.Duration(i)*time.Millisecond, "x", membership.Message{Type: membership.ShuffleReply, Nodes: []string{"fake"}}); err != nil {
				t.Fatal(err)
			}
			for p.HasReady() {
				cut = append(cut, p.Ready().Disconnect...)
			}
		}
		st := p.Stats().Scoring
		if on && (!slices.Equal(cut, []string{"x"}) || !p.Refused(time.Second, "x") || st.Offences[scoring.MembershipSpam] != 11) {
			t.Errorf("scoring on: disconnected %v, refused %v, %d membership_spam offences; want x cut off at the 11th",
				cut, p.Refused(time.Second, "x"), st.Offences[scoring.MembershipSpam])
		}
		if !on && (len(cut) != 0 || p.Refused(time.Second, "x")) {
			t.Errorf("scoring off: disconnected %v", cut)
		}
		if on {
			for i := range 5 {
				p.StepMembership(time.Second+time.Duration(i)*time.Millisecond, "y", membership.Message{Type: membership.ForwardJoin, Node: "j", TTL: 1})
				p.Ready()
			}
			if got := p.Score(time.Second+10*time.Millisecond, "y"); got != -0.25*25 {
				t.Errorf("5 stranger walks scored %v, want %v", got, -0.25*25)
			}
		}
	}
}

// A neighbour that never greets is cut off and refused a hello timeout after it came up; one
// that greets is credited (half a first delivery) and kept. With the defences off nobody is
// judged.
func TestSilentNeighbourCutOff(t *testing.T) {
	for _, on := range []bool{true, false} {
		c := peerAConfig()
		if !on {
			c.DisableDefences()
		}
		p := startedPeer(t, c)
		for _, peer := range []string{"silent", "greets"} {
			if err := p.StepMembership(time.Millisecond, peer, membership.Message{Type: membership.Neighbor, HighPriority: true}); err != nil {
				t.Fatal(err)
			}
		}
		for p.HasReady() {
			p.Ready()
		}
		hello := gossip.Message{Type: gossip.Digest, Salt: 1, Spans: []gossip.Span{{From: 0, To: 1}}}
		if err := p.StepGossip(2*time.Millisecond, "greets", hello); err != nil {
			t.Fatal(err)
		}
		var cut []string
		for now := time.Second; now <= 10*time.Second; now += time.Second {
			p.Tick(now)
			for p.HasReady() {
				cut = append(cut, p.Ready().Disconnect...)
			}
		}
		active := p.ActiveView()
		switch {
		case on && (!slices.Equal(cut, []string{"silent"}) || !p.Refused(10*time.Second, "silent") || slices.Contains(active, "silent")):
			t.Errorf("defences on: cut %v, active %v; want silent cut off and refused", cut, active)
		case on && (!slices.Contains(active, "greets") || p.Score(10*time.Second, "greets") <= 0):
			t.Errorf("defences on: active %v, greets scored %v; want it kept and credited", active, p.Score(10*time.Second, "greets"))
		case on && p.Stats().Scoring.Offences[scoring.SilentNeighbor] != 1:
			t.Errorf("defences on: %d silent_neighbor offences, want 1", p.Stats().Scoring.Offences[scoring.SilentNeighbor])
		case !on && (len(cut) != 0 || len(active) != 2):
			t.Errorf("defences off: cut %v, active %v; want nobody judged", cut, active)
		}
	}
}

// A neighbour penalised by peer scoring makes membership's OpportunisticRepair look at the
// view at once (Peer.judge tells the core), not at the next shuffle round: with a full view
// in which no neighbour proved useful, an unsolicited SHUFFLE_REPLY from one neighbour
// (membership_spam) sends one high-priority NEIGHBOR to the passive peer in the same Ready.
func TestPenaltyTriggersOpportunisticRepair(t *testing.T) {
	c := peerAConfig()
	c.Membership.ShuffleInterval = time.Hour // no round boundary during the test
	p := startedPeer(t, c)
	for i := 1; i <= c.Membership.ActiveSize; i++ {
		if err := p.StepMembership(time.Millisecond, fmt.Sprint("n", i), membership.Message{Type: membership.Neighbor, HighPriority: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.StepMembership(2*time.Millisecond, "n1", membership.Message{Type: membership.Shuffle, Node: "n1", TTL: 0, Nodes: []string{"cand"}}); err != nil {
		t.Fatal(err)
	}
	neighbors := func() []string {
		var to []string
		for p.HasReady() {
			for _, e := range p.Ready().Membership {
				if e.Msg.Type == membership.Neighbor && e.Msg.HighPriority {
					to = append(to, e.To)
				}
			}
		}
		return to
	}
	if got := neighbors(); len(got) != 0 || len(p.ActiveView()) != c.Membership.ActiveSize || !slices.Contains(p.PassiveView(), "cand") {
		t.Fatalf("setup: asked %v, active %v, passive %v", got, p.ActiveView(), p.PassiveView())
	}
	if err := p.StepMembership(3*time.Millisecond, "n3", membership.Message{Type: membership.ShuffleReply, Nodes: []string{"fake"}}); err != nil {
		t.Fatal(err)
	}
	if got := neighbors(); !slices.Equal(got, []string{"cand"}) || p.Score(3*time.Millisecond, "n3") >= 0 {
		t.Errorf("after n3's offence (score %v): asked %v, want [cand]", p.Score(3*time.Millisecond, "n3"), got)
	}
}
