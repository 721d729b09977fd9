package gossip

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// testAuth is an Authenticator like the runtime's, on std-lib Ed25519: every node name has a
// key derived from the name (so the key is bound to the ID, as the runtime's ID is the hash of
// its key), the proof is public key ‖ signature over the signed fields.
type testAuth struct{ self string }

func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("rtcmesh gossip test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// signedBytes is what the origin signs: ID, origin, seq, time, payload (not hops, not proof).
func signedBytes(m *Message) []byte {
	b := append([]byte("test broadcast\x00"), m.ID[:]...)
	b = binary.AppendUvarint(b, uint64(len(m.Origin)))
	b = append(b, m.Origin...)
	b = binary.AppendUvarint(b, m.Seq)
	b = binary.AppendVarint(b, m.Time)
	return append(b, m.Payload...)
}

// signAs makes name's proof for m, as only name's key can.
func signAs(name string, m *Message) []byte {
	key := testKey(name)
	return append(slices.Clone([]byte(key.Public().(ed25519.PublicKey))), ed25519.Sign(key, signedBytes(m))...)
}

var errTestProof = errors.New("bad proof")

func (a testAuth) Sign(m *Message) ([]byte, error) {
	if m.Origin != a.self {
		return nil, fmt.Errorf("asked to sign for %q", m.Origin)
	}
	return signAs(a.self, m), nil
}

func (testAuth) Verify(m *Message) error {
	if len(m.Proof) != ed25519.PublicKeySize+ed25519.SignatureSize {
		return fmt.Errorf("%w: %d bytes", errTestProof, len(m.Proof))
	}
	pub := m.Proof[:ed25519.PublicKeySize]
	if !bytes.Equal(pub, testKey(m.Origin).Public().(ed25519.PublicKey)) {
		return fmt.Errorf("%w: key is not %s's", errTestProof, m.Origin)
	}
	if !ed25519.Verify(pub, signedBytes(m), m.Proof[ed25519.PublicKeySize:]) {
		return fmt.Errorf("%w: signature", errTestProof)
	}
	return nil
}

// signedNet is a testNet whose cores sign and verify, each with its own key.
type signedNet struct{ *testNet }

func newSignedNet(t testing.TB, cfg Config) signedNet {
	return signedNet{newTestNet(t, cfg, 1)}
}

func (n signedNet) add(names ...string) {
	for _, name := range names {
		saved := n.cfg
		n.cfg.Auth = testAuth{self: name}
		n.testNet.add(name)
		n.cfg = saved
	}
}

// gossipFrom makes a Gossip of origin, signed by signer (a forger when signer != origin).
func gossipFrom(origin, signer string, id MessageID, seq uint64, at time.Duration, payload string) Message {
	m := Message{Type: Gossip, ID: id, Origin: origin, Hops: 1, Seq: seq, Time: at.Milliseconds(), Payload: []byte(payload)}
	m.Proof = signAs(signer, &m)
	return m
}

// line builds signed cores a - b - c (b's neighbours are a and c) plus mallory m linked to b.
func line(t *testing.T) signedNet {
	n := newSignedNet(t, testConfig())
	n.add("a", "b", "c", "m")
	n.link("a", "b")
	n.link("b", "c")
	n.link("m", "b")
	return n
}

func (n signedNet) refusals(core string) []Misbehaviour {
	return n.core(core).out.Misbehaviour
}

// stepAndCheckDropped steps m into b from mallory and checks it is refused for reason:
// nothing delivered, nothing sent, the peer sets unchanged, one report naming the link.
func stepAndCheckDropped(t *testing.T, n signedNet, m Message, reason Refusal) {
	t.Helper()
	b := n.core("b")
	eager, lazy := b.EagerPeers(), b.LazyPeers()
	missing := len(b.missing)
	if err := b.Step("m", m); err != nil {
		t.Fatalf("Step returned %v; a refusal is not an error", err)
	}
	rd := b.Ready()
	if len(rd.Deliveries) != 0 || len(rd.Messages) != 0 {
		t.Fatalf("refused message was delivered or forwarded: %+v", rd)
	}
	if len(rd.Misbehaviour) != 1 || rd.Misbehaviour[0].Peer != "m" || rd.Misbehaviour[0].Reason != reason ||
		rd.Misbehaviour[0].ID != m.ID || rd.Misbehaviour[0].Origin != m.Origin {
		t.Fatalf("misbehaviour %+v, want one %v report for m", rd.Misbehaviour, reason)
	}
	if !slices.Equal(b.EagerPeers(), eager) || !slices.Equal(b.LazyPeers(), lazy) || len(b.missing) != missing {
		t.Fatalf("a refused message changed the peer sets or the missing table")
	}
	if _, seen := b.seen[m.ID]; seen {
		t.Fatalf("a refused message's ID was remembered")
	}
}

func TestForgedOriginNeitherDeliveredNorForwarded(t *testing.T) {
	n := line(t)
	n.tick(time.Second)
	// Mallory claims a's origin and signs with her own key.
	forged := gossipFrom("a", "m", MessageID{1}, 1, n.now, "forged")
	// b has heard of the ID by IHave from a: a forged payload must not satisfy that either.
	if err := n.core("b").Step("a", Message{Type: IHave, IHave: []Announcement{{ID: forged.ID, Hops: 0}}}); err != nil {
		t.Fatal(err)
	}
	stepAndCheckDropped(t, n, forged, RefusedSignature)
	if mb := n.refusals("b"); len(mb) != 0 {
		t.Fatalf("Ready did not clear the reports: %+v", mb)
	}
	// a's key, mallory's signature.
	spliced := gossipFrom("a", "a", MessageID{2}, 1, n.now, "real")
	spliced.Proof = append(slices.Clone(spliced.Proof[:ed25519.PublicKeySize]), forged.Proof[ed25519.PublicKeySize:]...)
	stepAndCheckDropped(t, n, spliced, RefusedSignature)
	// A real message of a with its payload changed in transit.
	tampered := gossipFrom("a", "a", MessageID{3}, 1, n.now, "real")
	tampered.Payload = []byte("fake")
	stepAndCheckDropped(t, n, tampered, RefusedSignature)
	// No proof at all.
	bare := gossipFrom("a", "a", MessageID{4}, 1, n.now, "real")
	bare.Proof = nil
	stepAndCheckDropped(t, n, bare, RefusedSignature)

	s := n.core("b").Stats()
	if s.RefusedSignature != 4 || s.Delivered != 0 || s.Origins != 0 || n.core("b").HighWater("a") != 0 {
		t.Fatalf("stats after forgeries: %+v", s)
	}
	// The signature error reaches the report.
	n.core("b").Step("m", gossipFrom("a", "m", MessageID{5}, 1, n.now, "x"))
	if mb := n.core("b").Ready().Misbehaviour; len(mb) != 1 || !errors.Is(mb[0].Err, errTestProof) {
		t.Fatalf("report %+v does not carry the verifier's error", mb)
	}

	// a's real message with sequence number 1 is still delivered afterwards: forgeries
	// left no sequence state behind.
	n.broadcast("a", []byte("real"))
	n.deliverAll()
	for _, name := range []string{"b", "c", "m"} {
		if got := n.core(name).HighWater("a"); got != 1 {
			t.Errorf("%s: HighWater(a) = %d after a's first broadcast", name, got)
		}
	}
	if strings.Contains(n.out.String(), "refuses") {
		t.Fatalf("an honest broadcast was refused:\n%s", n.out.String())
	}
}

func TestSpoofSelfOriginRefused(t *testing.T) {
	n := line(t)
	n.tick(time.Second)
	// A message "from b" that b never sent, even one carrying b's real signature (b's key
	// signed it in an earlier run, say), is refused by b.
	stepAndCheckDropped(t, n, gossipFrom("b", "b", MessageID{9}, 7, n.now, "not mine"), RefusedSelfOrigin)
	if s := n.core("b").Stats(); s.RefusedSelfOrigin != 1 {
		t.Fatalf("stats: %+v", s)
	}

	// b's own broadcasts that come back on a cycle are duplicates as before, not refusals:
	// their Prune is how the tree forms. With the cycle b-a-c-b and the b->c link slow, c
	// gets b's message from a first and passes it on to b.
	n.link("a", "c")
	n.out.Reset()
	n.broadcast("b", []byte("mine"))
	if !n.deliverOne("b", "a") || !n.deliverOne("a", "c") || !n.deliverOne("c", "b") {
		t.Fatalf("setup: the echo did not happen:\n%s", n.out.String())
	}
	n.deliverAll()
	out := n.out.String()
	if strings.Contains(out, "refuses") {
		t.Fatalf("an echo of b's own broadcast was refused:\n%s", out)
	}
	if s := n.core("b").Stats(); s.Duplicates == 0 || s.RefusedSelfOrigin != 1 {
		t.Fatalf("b's echo was not a duplicate: %+v\n%s", s, out)
	}
	if got := n.core("b").HighWater("b"); got != 1 {
		t.Fatalf("HighWater(self) = %d, want 1", got)
	}
}

func TestReplayedSeqRefused(t *testing.T) {
	cfg := testConfig()
	cfg.SeenMaxIDs = 1 // forget IDs at once, so only sequence numbers catch replays
	n := newSignedNet(t, cfg)
	n.add("b", "m")
	n.link("m", "b")
	n.tick(time.Minute)
	b := n.core("b")
	first := gossipFrom("a", "a", MessageID{1}, 1, n.now, "one")
	if err := b.Step("m", first); err != nil {
		t.Fatal(err)
	}
	if rd := b.Ready(); len(rd.Deliveries) != 1 || rd.Deliveries[0].Seq != 1 || rd.Deliveries[0].Time != n.now.Milliseconds() {
		t.Fatalf("first message: %+v", rd)
	}
	second := gossipFrom("a", "a", MessageID{2}, 2, n.now, "two")
	b.Step("m", second)
	b.Ready()
	if _, seen := b.seen[first.ID]; seen {
		t.Fatalf("setup: the seen set still holds the first ID")
	}

	// The same sequence number under a new message ID (the origin's signature is valid: a
	// buggy or equivocating origin), and the very same message once its ID is forgotten.
	stepAndCheckDropped(t, n, gossipFrom("a", "a", MessageID{3}, 1, n.now, "one again"), RefusedReplay)
	stepAndCheckDropped(t, n, first, RefusedReplay)

	// Sequence numbers out of order within the window are fine, once each.
	third := gossipFrom("a", "a", MessageID{5}, 5, n.now, "five")
	fourth := gossipFrom("a", "a", MessageID{4}, 4, n.now, "four")
	for _, m := range []Message{third, fourth} {
		if b.Step("m", m); len(b.Ready().Deliveries) != 1 {
			t.Fatalf("seq %d not delivered", m.Seq)
		}
	}
	stepAndCheckDropped(t, n, third, RefusedReplay) // its ID is forgotten already
	if got := b.HighWater("a"); got != 5 {
		t.Fatalf("HighWater(a) = %d, want 5", got)
	}

	// Beyond the window, a number never delivered is refused too: too old to tell.
	late := gossipFrom("a", "a", MessageID{6}, 3, n.now, "three")
	jump := gossipFrom("a", "a", MessageID{7}, 5+uint64(cfg.ReplayWindow), n.now, "far")
	b.Step("m", jump)
	b.Ready()
	stepAndCheckDropped(t, n, late, RefusedReplay)

	// The origin restarts and numbers from 1 again, later: accepted, and the earlier run's
	// messages stay refused.
	n.tick(time.Second)
	restarted := gossipFrom("a", "a", MessageID{8}, 1, n.now, "after restart")
	if b.Step("m", restarted); len(b.Ready().Deliveries) != 1 {
		t.Fatalf("the restarted origin's first message was refused")
	}
	if s := b.Stats(); s.OriginRestarts != 1 || b.HighWater("a") != 1 {
		t.Fatalf("restart: %+v, HighWater %d", s, b.HighWater("a"))
	}
	stepAndCheckDropped(t, n, second, RefusedReplay)
	stepAndCheckDropped(t, n, jump, RefusedReplay)
	if b.Step("m", gossipFrom("a", "a", MessageID{9}, 2, n.now, "next")); len(b.Ready().Deliveries) != 1 {
		t.Fatalf("the restarted origin's second message was refused")
	}
	if s := b.Stats(); s.RefusedReplay != 6 || s.Delivered != 7 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestReplayOutsideClockSkewRefused(t *testing.T) {
	n := line(t)
	n.tick(time.Hour)
	skew := n.cfg.MaxClockSkew
	stepAndCheckDropped(t, n, gossipFrom("a", "a", MessageID{1}, 1, n.now-skew-time.Millisecond, "old"), RefusedClock)
	stepAndCheckDropped(t, n, gossipFrom("a", "a", MessageID{2}, 1, n.now+skew+time.Millisecond, "future"), RefusedClock)
	// Times a peer chooses cannot overflow the comparison.
	m := gossipFrom("a", "a", MessageID{3}, 1, 0, "x")
	for _, at := range []int64{-1 << 63, 1<<63 - 1} {
		m.Time = at
		m.Proof = signAs("a", &m)
		stepAndCheckDropped(t, n, m, RefusedClock)
	}
	b := n.core("b")
	for i, at := range []time.Duration{n.now - skew, n.now + skew} {
		if b.Step("m", gossipFrom("a", "a", MessageID{byte(10 + i)}, uint64(i+1), at, "edge")); len(b.Ready().Deliveries) != 1 {
			t.Fatalf("a message exactly MaxClockSkew off was refused")
		}
	}
	if s := b.Stats(); s.RefusedClock != 4 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestMisbehaviourReportsBounded(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMisbehaviourReports = 2
	n := newSignedNet(t, cfg)
	n.add("b", "m")
	n.link("m", "b")
	b := n.core("b")
	for i := range 5 {
		b.Step("m", gossipFrom("a", "m", MessageID{byte(i + 1)}, 1, 0, "forged"))
	}
	if rd := b.Ready(); len(rd.Misbehaviour) != 2 || rd.Empty() {
		t.Fatalf("%d reports, want 2", len(rd.Misbehaviour))
	}
	if s := b.Stats(); s.RefusedSignature != 5 || s.MisbehaviourDropped != 3 {
		t.Fatalf("stats: %+v", s)
	}
	b.Step("m", gossipFrom("a", "m", MessageID{9}, 1, 0, "forged"))
	if !b.HasReady() || len(b.Ready().Misbehaviour) != 1 {
		t.Fatalf("the bound is per Ready")
	}
}

// TestSignatureSurvivesRelaysAndGrafts: honest broadcasts in a signed overlay reach every node
// through relays, lazy repair (Grafts answered from the cache) included, and nothing is
// refused.
func TestSignatureSurvivesRelaysAndGrafts(t *testing.T) {
	cfg := DefaultConfig()
	cfg.OptimizationThreshold = 3
	const size = 40
	n := newSignedNet(t, cfg)
	rng := rand.New(rand.NewPCG(4, 4))
	var names []string
	for i := range size {
		names = append(names, fmt.Sprintf("n%02d", i))
	}
	n.add(names...)
	for i := range names {
		n.link(names[i], names[(i+1)%size])
		if j := rng.IntN(size); j != i && !n.core(names[i]).isNeighbor(names[j]) {
			n.link(names[i], names[j])
		}
	}
	var ids []MessageID
	grafts := 0
	for round := range 30 {
		origin := names[rng.IntN(size)]
		ids = append(ids, n.broadcast(origin, []byte{byte(round)}))
		for range 40 {
			// Lose a few payloads so that the lazy path and Grafts carry some.
			for i := 0; i < len(n.queue); i++ {
				if n.queue[i].msg.Type == Gossip && rng.IntN(10) == 0 {
					n.queue = slices.Delete(n.queue, i, i+1)
					i--
				}
			}
			for len(n.queue) > 0 {
				f := n.queue[0]
				n.queue = n.queue[1:]
				if f.msg.Type == Graft && f.msg.ID != (MessageID{}) {
					grafts++
				}
				n.step(f)
			}
			n.tick(cfg.LazyFlushInterval)
		}
	}
	if grafts == 0 {
		t.Fatalf("no Graft asked for a message: the test does not cover cached proofs")
	}
	for _, id := range ids {
		if got := len(n.delivered[id]); got != size {
			t.Errorf("%s reached %d of %d", n.label(id), got, size)
		}
	}
	for _, name := range names {
		s := n.core(name).Stats()
		if s.RefusedSignature+s.RefusedReplay+s.RefusedClock+s.RefusedSelfOrigin != 0 {
			t.Errorf("%s refused honest messages: %+v", name, s)
		}
	}
	if strings.Contains(n.out.String(), "refuses") {
		t.Fatalf("refusals in an honest overlay")
	}
	t.Logf("%d Grafts for messages", grafts)
}

// TestGraftAnswerKeepsProof: a relay answers a Graft with the cached message, whose Seq, Time
// and Proof are the origin's, so a fresh receiver verifies it.
func TestGraftAnswerKeepsProof(t *testing.T) {
	n := newSignedNet(t, testConfig())
	n.add("r", "x", "y")
	n.link("r", "x")
	n.link("r", "y")
	n.tick(time.Second)
	m := gossipFrom("o", "o", MessageID{1}, 42, n.now, "cached")
	r := n.core("r")
	r.Step("o", m) // from a non-neighbour: delivered, cached
	r.Ready()
	r.Step("y", Message{Type: Graft, ID: m.ID})
	rd := r.Ready()
	if len(rd.Messages) != 1 {
		t.Fatalf("Graft answered with %+v", rd.Messages)
	}
	got := rd.Messages[0].Msg
	if got.Seq != 42 || got.Time != m.Time || !bytes.Equal(got.Proof, m.Proof) || got.Hops != 2 {
		t.Fatalf("Graft answer %+v lost the origin's fields", got)
	}
	if err := (testAuth{}).Verify(&got); err != nil {
		t.Fatalf("Graft answer does not verify: %v", err)
	}
}

// TestReplayWindowMatchesModel checks the bitmap against a set: with sequence numbers in
// random order (times rising with them, so no restart), a number is delivered iff it was not
// delivered before and is within ReplayWindow of the highest.
func TestReplayWindowMatchesModel(t *testing.T) {
	cfg := validConfig("b")
	cfg.ReplayWindow = 128
	cfg.DisableDefences() // 20,000 messages of one origin at one instant: a flood
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Hour
	c.Tick(base)
	rng := rand.New(rand.NewPCG(9, 9))
	delivered := map[uint64]bool{}
	var hw uint64
	for i := range 20000 {
		seq := uint64(1 + rng.IntN(3000))
		if i%7 == 0 {
			seq = hw + 1 + uint64(rng.IntN(200))
		}
		want := !delivered[seq] && seq+uint64(cfg.ReplayWindow) > hw
		var id MessageID
		putUint64(id[:8], uint64(i+1))
		m := Message{Type: Gossip, ID: id, Origin: "a", Hops: 1, Seq: seq, Time: (base + time.Duration(seq)*time.Millisecond/100).Milliseconds()}
		if err := c.Step("p", m); err != nil {
			t.Fatal(err)
		}
		got := len(c.Ready().Deliveries) == 1
		if got != want {
			t.Fatalf("step %d: seq %d (high %d): delivered %v, want %v", i, seq, hw, got, want)
		}
		if got {
			delivered[seq] = true
			hw = max(hw, seq)
		}
		if st := c.origins["a"]; len(st.bits) > cfg.ReplayWindow/64 {
			t.Fatalf("bitmap of %d words", len(st.bits))
		}
	}
	if c.HighWater("a") != hw || c.Stats().OriginRestarts != 0 {
		t.Fatalf("HighWater %d, want %d; %+v", c.HighWater("a"), hw, c.Stats())
	}
}

// TestOriginsBoundedLeastRecentlyHeardEvicted: at most MaxOrigins origins are tracked, the one
// heard from least recently goes first, and a forgotten origin's replay within the skew is
// still refused by the seen set.
func TestOriginsBoundedLeastRecentlyHeardEvicted(t *testing.T) {
	cfg := validConfig("b")
	cfg.MaxOrigins = 3
	c, _ := New(cfg)
	step := func(origin string, id byte, seq uint64) {
		t.Helper()
		if err := c.Step("p", Message{Type: Gossip, ID: MessageID{id}, Origin: origin, Hops: 1, Seq: seq}); err != nil {
			t.Fatal(err)
		}
		c.Ready()
	}
	step("o1", 1, 1)
	step("o2", 2, 1)
	step("o3", 3, 1)
	step("o1", 4, 2) // o1 is now the most recently heard
	step("o4", 5, 1) // evicts o2
	if s := c.Stats(); s.Origins != 3 || s.OriginsEvicted != 1 {
		t.Fatalf("stats: %+v", s)
	}
	if c.HighWater("o2") != 0 || c.HighWater("o1") != 2 || c.HighWater("o3") != 1 || c.HighWater("o4") != 1 {
		t.Fatalf("wrong origin evicted: o1=%d o2=%d o3=%d o4=%d", c.HighWater("o1"), c.HighWater("o2"), c.HighWater("o3"), c.HighWater("o4"))
	}
	step("o2", 2, 1) // the forgotten origin's message again: a duplicate by ID
	if s := c.Stats(); s.Duplicates != 1 || s.Delivered != 5 {
		t.Fatalf("replay of a forgotten origin: %+v", s)
	}
}

func TestNewValidatesSignedConfig(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"skew", func(c *Config) { c.MaxClockSkew = 0 }, "MaxClockSkew must be positive"},
		{"window zero", func(c *Config) { c.ReplayWindow = 0 }, "ReplayWindow must be a positive multiple of 64, got 0"},
		{"window odd", func(c *Config) { c.ReplayWindow = 100 }, "ReplayWindow must be a positive multiple of 64, got 100"},
		{"origins", func(c *Config) { c.MaxOrigins = 0 }, "MaxOrigins must be positive"},
		{"reports", func(c *Config) { c.MaxMisbehaviourReports = -1 }, "MaxMisbehaviourReports must be positive"},
		{"skew vs seen", func(c *Config) { c.MaxClockSkew = 5 * time.Minute },
			"MaxClockSkew (5m0s) plus the oldest age accepted (the larger of MaxClockSkew and CatchUpWindow, 5m0s) must be below SeenMaxAge (10m0s)"},
	}
	for _, tc := range cases {
		cfg := validConfig("a")
		tc.change(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	// Errors come in a fixed order.
	cfg := validConfig("a")
	cfg.MaxOrigins, cfg.ReplayWindow, cfg.MaxClockSkew = 0, 0, 0
	_, err := New(cfg)
	msg := fmt.Sprint(err)
	if i, j, k := strings.Index(msg, "MaxClockSkew"), strings.Index(msg, "ReplayWindow"), strings.Index(msg, "MaxOrigins"); i < 0 || i > j || j > k {
		t.Fatalf("errors out of order: %v", err)
	}
}

// TestBroadcastSignFailure: a Broadcast the Authenticator cannot sign sends nothing and uses
// no sequence number.
func TestBroadcastSignFailure(t *testing.T) {
	cfg := validConfig("a")
	cfg.Auth = testAuth{self: "someone else"}
	c, _ := New(cfg)
	c.NeighborUp("b")
	c.Ready() // the hello to b
	if _, err := c.Broadcast([]byte("x")); err == nil || !strings.Contains(err.Error(), "sign broadcast") {
		t.Fatalf("Broadcast error %v", err)
	}
	if c.HasReady() || c.HighWater("a") != 0 || c.Stats().Broadcasts != 0 {
		t.Fatalf("a failed Broadcast changed the state")
	}
}
