package membership

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func testConfig(self string) Config {
	cfg := DefaultLANConfig()
	cfg.Self = self
	cfg.Rand = rand.New(rand.NewPCG(1, 2))
	return cfg
}

func TestNewValidatesConfig(t *testing.T) {
	if _, err := New(testConfig("a")); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		error string
	}{
		{"no self", func(c *Config) { c.Self = "" }, "Self is required"},
		{"no rand", func(c *Config) { c.Rand = nil }, "Rand is required"},
		{"active 0", func(c *Config) { c.ActiveSize = 0 }, "ActiveSize must be at least 1"},
		{"passive 0", func(c *Config) { c.PassiveSize = 0 }, "PassiveSize must be at least 1"},
		{"prwl > arwl", func(c *Config) { c.ARWL, c.PRWL = 2, 3 }, "PRWL (3) must not exceed ARWL (2)"},
		{"ka < 0", func(c *Config) { c.ShuffleActive = -1 }, "ShuffleActive must not be negative"},
		{"kp < 0", func(c *Config) { c.ShufflePassive = -1 }, "ShufflePassive must not be negative"},
		{"shuffle interval", func(c *Config) { c.ShuffleInterval = 0 }, "ShuffleInterval must be positive"},
		{"neighbor timeout", func(c *Config) { c.NeighborTimeout = -time.Second }, "NeighborTimeout must be positive"},
		{"rejoin backoff", func(c *Config) { c.RejoinBackoff = 0 }, "RejoinBackoff must be positive"},
		{"max nodes", func(c *Config) { c.MaxMessageNodes = 7 }, "MaxMessageNodes (7) must be at least 1+ShuffleActive+ShufflePassive (8)"},
		{"empty contact", func(c *Config) { c.Contacts = []string{"b", ""} }, "Contacts[1] is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("a")
			tc.edit(&cfg)
			c, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.error) {
				t.Fatalf("New = %v, %v; want error containing %q", c, err, tc.error)
			}
		})
	}
}

func TestNewCopiesContacts(t *testing.T) {
	cfg := testConfig("a")
	cfg.Contacts = []string{"b"}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Contacts[0] = "z"
	c.Tick(0)
	c.Join("")
	if rd := c.Ready(); len(rd.Messages) != 1 || rd.Messages[0].To != "b" {
		t.Fatalf("Join sent %+v, want JOIN to b", rd.Messages)
	}
}

// snapshot is the core state an invalid message must leave untouched.
type snapshot struct {
	active, passive, asked, tried []string
	pending, joinTarget           string
	nextDue                       time.Duration
	ready                         bool
	sent                          [ShuffleReply + 1]uint64
}

func snap(c *Core) snapshot {
	return snapshot{
		active: slices.Clone(c.active), passive: slices.Clone(c.passive), asked: slices.Clone(c.asked),
		tried: slices.Clone(c.tried), pending: c.pending, joinTarget: c.joinTarget,
		nextDue: c.nextDue, ready: c.HasReady(), sent: c.stats.MessagesSent,
	}
}

func TestStepRejectsInvalidMessages(t *testing.T) {
	tooMany := make([]string, 65)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("n", i)
	}
	for _, tc := range []struct {
		name  string
		from  string
		msg   Message
		error string
	}{
		{"type 0", "b", Message{Type: 0}, "unknown type 0"},
		{"type 9", "b", Message{Type: 9}, "unknown type 9"},
		{"empty sender", "", Message{Type: Join}, "JOIN with an empty sender"},
		{"from self", "a", Message{Type: Neighbor}, `NEIGHBOR from Self ("a")`},
		{"too many nodes", "b", Message{Type: Shuffle, Node: "b", TTL: 1, Nodes: tooMany}, "carries 65 nodes, more than MaxMessageNodes (64)"},
		{"too many nodes in reply", "b", Message{Type: ShuffleReply, Nodes: tooMany}, "carries 65 nodes"},
		{"forward join without node", "b", Message{Type: ForwardJoin, TTL: 3}, "names no joining node"},
		{"forward join ttl", "b", Message{Type: ForwardJoin, Node: "x", TTL: 7}, "TTL 7, more than ARWL (6)"},
		{"shuffle without origin", "b", Message{Type: Shuffle, TTL: 1}, "SHUFFLE from \"b\" names no origin"},
		{"shuffle ttl", "b", Message{Type: Shuffle, Node: "b", TTL: 200}, "TTL 200, more than ShuffleTTL (6)"},
		{"empty id in shuffle", "b", Message{Type: Shuffle, Node: "b", Nodes: []string{"x", ""}}, "empty node ID at index 1"},
		{"empty id in reply", "b", Message{Type: ShuffleReply, Nodes: []string{""}}, "empty node ID at index 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(testConfig("a"))
			if err != nil {
				t.Fatal(err)
			}
			c.Tick(time.Second)
			// Give the core some state to protect.
			if err := c.Step("p", Message{Type: Join}); err != nil {
				t.Fatal(err)
			}
			c.addPassive("q")
			c.Ready()
			before := snap(c)
			invalid := c.Stats().InvalidMessages

			err = c.Step(tc.from, tc.msg)
			if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), tc.error) {
				t.Fatalf("Step = %v; want ErrInvalidMessage containing %q", err, tc.error)
			}
			if after := snap(c); !reflect.DeepEqual(before, after) {
				t.Fatalf("invalid message changed state:\nbefore %+v\nafter  %+v", before, after)
			}
			if got := c.Stats().InvalidMessages; got != invalid+1 {
				t.Fatalf("InvalidMessages = %d, want %d", got, invalid+1)
			}
		})
	}
}

func TestStepIgnoresSelfReferences(t *testing.T) {
	cfg := testConfig("a")
	cfg.MaxPendingShuffles = 0 // merge the reply nobody asked for: Self must still be skipped
	c, _ := New(cfg)
	c.Tick(0)
	if err := c.Step("b", Message{Type: ForwardJoin, Node: "a", TTL: 0}); err != nil {
		t.Fatal(err)
	}
	if err := c.Step("b", Message{Type: ShuffleReply, Nodes: []string{"a", "x"}}); err != nil {
		t.Fatal(err)
	}
	if rd := c.Ready(); len(rd.Messages) != 0 || len(rd.Events) != 0 {
		t.Fatalf("a walk about ourselves produced %+v", rd)
	}
	if got := c.PassiveView(); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("passive view %v, want [x] (never Self)", got)
	}
}

// An acceptance nobody asked for (or one we stopped honouring) must not create a one-sided
// link: the core answers DISCONNECT so the sender drops us again.
func TestUnsolicitedAcceptanceIsDisconnected(t *testing.T) {
	for _, typ := range []MessageType{NeighborReply, JoinReply} {
		c, _ := New(testConfig("a"))
		c.Tick(0)
		if err := c.Step("b", Message{Type: typ, Accepted: true}); err != nil {
			t.Fatal(err)
		}
		rd := c.Ready()
		want := []Envelope{{To: "b", Msg: Message{Type: Disconnect}}}
		if !reflect.DeepEqual(rd.Messages, want) || len(rd.Events) != 0 {
			t.Fatalf("%v: got %+v, want only DISCONNECT to b", typ, rd)
		}
		if len(c.ActiveView()) != 0 {
			t.Fatalf("%v: active view %v, want empty", typ, c.ActiveView())
		}
	}
}

func TestJoinTriesNextContactOnTimeout(t *testing.T) {
	cfg := testConfig("a")
	cfg.Contacts = []string{"c1", "a", "c2"}
	c, _ := New(cfg)
	c.Tick(10 * time.Second)
	c.Join("c0")
	if rd := c.Ready(); len(rd.Messages) != 1 || rd.Messages[0].To != "c0" || rd.Messages[0].Msg.Type != Join {
		t.Fatalf("Join sent %+v, want JOIN to c0", rd.Messages)
	}
	c.Tick(10*time.Second + cfg.NeighborTimeout - 1)
	if c.HasReady() {
		t.Fatalf("timed out early: %+v", c.Ready())
	}
	c.Tick(10*time.Second + cfg.NeighborTimeout)
	if rd := c.Ready(); len(rd.Messages) != 1 || rd.Messages[0].To != "c1" {
		t.Fatalf("after timeout sent %+v, want JOIN to c1", rd.Messages)
	}
	c.PeerDown("c1") // a failed send skips ahead without waiting; Self is skipped
	if rd := c.Ready(); len(rd.Messages) != 1 || rd.Messages[0].To != "c2" {
		t.Fatalf("after PeerDown sent %+v, want JOIN to c2", rd.Messages)
	}
	if err := c.Step("c2", Message{Type: JoinReply}); err != nil {
		t.Fatal(err)
	}
	rd := c.Ready()
	if !reflect.DeepEqual(rd.Events, []Event{{NeighborUp, "c2"}}) {
		t.Fatalf("events %+v, want NeighborUp c2", rd.Events)
	}
}

func TestFirstShuffleWithinInterval(t *testing.T) {
	for seed := uint64(0); seed < 50; seed++ {
		cfg := testConfig("a")
		cfg.Rand = rand.New(rand.NewPCG(seed, seed))
		c, _ := New(cfg)
		if _, ok := c.NextDeadline(); ok {
			t.Fatal("NextDeadline reported a deadline before the first Tick")
		}
		start := 7 * time.Second
		c.Tick(start)
		dl, ok := c.NextDeadline()
		if !ok || dl < start || dl >= start+cfg.ShuffleInterval {
			t.Fatalf("first shuffle at %v (ok=%t), want in [%v, %v)", dl, ok, start, start+cfg.ShuffleInterval)
		}
		c.Tick(dl)
		if next, _ := c.NextDeadline(); next != dl+cfg.ShuffleInterval {
			t.Fatalf("second shuffle at %v, want %v", next, dl+cfg.ShuffleInterval)
		}
	}
}

func TestLeaveStopsEverything(t *testing.T) {
	c, _ := New(testConfig("a"))
	c.Tick(0)
	_ = c.Step("b", Message{Type: Join})
	c.addPassive("x")
	c.Ready()
	c.Leave()
	rd := c.Ready()
	if !reflect.DeepEqual(rd.Messages, []Envelope{{To: "b", Msg: Message{Type: Disconnect, Leaving: true}}}) ||
		!reflect.DeepEqual(rd.Events, []Event{{NeighborDown, "b"}}) {
		t.Fatalf("Leave produced %+v", rd)
	}
	if _, ok := c.NextDeadline(); ok || len(c.ActiveView())+len(c.PassiveView()) != 0 {
		t.Fatal("Leave left views or timers behind")
	}
	c.Tick(time.Hour)
	_ = c.Step("b", Message{Type: Neighbor, HighPriority: true})
	if c.HasReady() {
		t.Fatalf("a stopped core answered: %+v", c.Ready())
	}
}

// randomRun grows an overlay of size nodes with joins through random live contacts,
// interleaved with time passing (shuffles, timeouts) and failures, then lets it settle.
func randomRun(t testing.TB, seed uint64, size int, trace *strings.Builder) *network {
	t.Helper()
	cfg := DefaultLANConfig()
	n := newNetwork(seed, cfg)
	n.trace = trace
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	const limit = 5_000_000
	must := func(ok bool) {
		if !ok {
			t.Fatalf("seed %d: network not quiet after %d messages", seed, limit)
		}
	}
	if err := n.add("n0", nil); err != nil {
		t.Fatal(err)
	}
	n.nodes["n0"].core.Join("")
	for i := 1; i < size; i++ {
		live := n.liveNames()
		name := fmt.Sprint("n", i)
		if err := n.add(name, []string{live[r.IntN(len(live))], "n0"}); err != nil {
			t.Fatal(err)
		}
		n.nodes[name].core.Join("")
		n.collect(name)
		if r.IntN(4) == 0 {
			must(n.deliverAll(limit))
		}
		if i%10 == 0 {
			must(n.advance(time.Duration(r.IntN(3000))*time.Millisecond, limit))
		}
		if i > 30 && r.IntN(12) == 0 {
			live := n.liveNames()
			if victim := live[r.IntN(len(live))]; victim != "n0" {
				must(n.kill(victim, false) == nil)
			}
		}
	}
	must(n.advance(time.Minute, limit))
	return n
}

func TestDeterminism(t *testing.T) {
	var a, b, c strings.Builder
	randomRun(t, 42, 200, &a)
	randomRun(t, 42, 200, &b)
	randomRun(t, 43, 200, &c)
	if a.Len() < 100_000 {
		t.Fatalf("trace suspiciously short: %d bytes", a.Len())
	}
	if a.String() != b.String() {
		i := 0
		for i < a.Len() && i < b.Len() && a.String()[i] == b.String()[i] {
			i++
		}
		t.Fatalf("same seed, different runs; first difference at byte %d:\n%s\nvs\n%s",
			i, a.String()[max(0, i-200):min(a.Len(), i+200)], b.String()[max(0, i-200):min(b.Len(), i+200)])
	}
	if a.String() == c.String() {
		t.Fatal("different seeds gave identical runs")
	}
}

func TestPropertyRandomOverlay(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			n := randomRun(t, seed, 300, nil)
			if problems, summary := n.check(); len(problems) > 0 {
				t.Fatalf("%s\n%s", summary, strings.Join(problems, "\n"))
			}
			// Then half of the survivors fail at once (the paper's mass-failure experiment,
			// HyParView stays connected far beyond this); the overlay must heal.
			r := rand.New(rand.NewPCG(seed, 7))
			live := n.liveNames()
			r.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
			for _, victim := range live[:len(live)/2] {
				if err := n.kill(victim, false); err != nil {
					t.Fatal(err)
				}
			}
			if !n.advance(time.Minute, 5_000_000) {
				t.Fatal("network not quiet after mass failure")
			}
			if problems, summary := n.check(); len(problems) > 0 {
				t.Fatalf("after mass failure: %s\n%s", summary, strings.Join(problems, "\n"))
			}
		})
	}
}

// Nine nodes joining through one contact with an active view of 3 is the smallest case
// where evictions cut islands off. Over many seeds: links are always symmetric, nobody is
// left without a neighbour once the backoffs have run, and the overlay is connected within
// a few minutes of shuffle rounds.
func TestNineNodesThroughOneContact(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 50
	}
	worst := time.Duration(0)
	for seed := range uint64(seeds) {
		cfg := DefaultLANConfig()
		cfg.ActiveSize, cfg.PassiveSize, cfg.ARWL, cfg.PRWL = 3, 6, 3, 2
		n := newNetwork(seed, cfg)
		for i := 1; i <= 9; i++ {
			if err := n.add(fmt.Sprint("n", i), []string{"n1"}); err != nil {
				t.Fatal(err)
			}
		}
		n.nodes["n1"].core.Join("")
		for i := 2; i <= 9; i++ {
			n.nodes[fmt.Sprint("n", i)].core.Join("")
			n.collect(fmt.Sprint("n", i))
			if seed%2 == 0 { // half the seeds join one by one, half all at once
				n.deliverAll(1_000_000)
			}
		}
		// A node emptied twice in a row by evictions backs off for RejoinBackoff.
		// A joiner the contact had no eviction budget left for (MaxForcedEvictions) gets
		// no JOIN_REPLY: if no join walk's end took it either, it tries again after its
		// NeighborTimeout.
		if !n.deliverAll(1_000_000) || !n.advance(cfg.NeighborTimeout+2*cfg.RejoinBackoff, 1_000_000) {
			t.Fatalf("seed %d: not quiet", seed)
		}
		for _, problem := range problemsIn(n) {
			if !strings.HasPrefix(problem, "overlay not connected") {
				t.Fatalf("seed %d after joins: %s\n%s", seed, problem, n.views(nil))
			}
		}
		start := n.now
		for !n.connected() {
			if n.now-start > 5*time.Minute {
				t.Fatalf("seed %d: still partitioned after 5 minutes\n%s", seed, n.views(nil))
			}
			n.advance(cfg.ShuffleInterval, 1_000_000)
			for _, problem := range problemsIn(n) {
				if !strings.HasPrefix(problem, "overlay not connected") {
					t.Fatalf("seed %d at %v: %s\n%s", seed, n.now, problem, n.views(nil))
				}
			}
		}
		worst = max(worst, n.now-start)
	}
	t.Logf("longest time to connect: %v", worst)
}

func problemsIn(n *network) []string {
	p, _ := n.check()
	return p
}

func (n *network) connected() bool {
	for _, p := range problemsIn(n) {
		if strings.HasPrefix(p, "overlay not connected") {
			return false
		}
	}
	return true
}

// A node short of neighbours among full peers escalates to a high-priority request even when
// every round brings a fresh passive entry that turns out dead (after a mass failure,
// shuffles keep naming dead nodes) and a request to a dead peer is still pending at the
// round: two rounds that gained no neighbour while live peers refused count as failed, and
// the escalation goes to a peer that refused, which is alive.
func TestRepairEscalatesPastDeadEntries(t *testing.T) {
	cfg := testConfig("a")
	cfg.ShuffleInterval = time.Second
	c := joinedWithBAndD(t, cfg)
	c.addPassive("r1")
	c.addPassive("r2")
	answer := func() (high []string) {
		for c.HasReady() {
			for _, env := range c.Ready().Messages {
				if env.Msg.Type != Neighbor {
					continue
				}
				switch {
				case env.Msg.HighPriority:
					high = append(high, env.To)
				case strings.HasPrefix(env.To, "dead"):
					// Silence: the offer went nowhere, and the request stays pending
					// until NeighborTimeout, past the next round.
				default:
					if err := c.Step(env.To, Message{Type: NeighborReply}); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		return high
	}
	answer()
	for round := 1; round <= 4; round++ {
		c.addPassive(fmt.Sprint("dead", round)) // what this round's shuffle brought
		c.Tick(time.Duration(round) * cfg.ShuffleInterval)
		if high := answer(); len(high) > 0 {
			if high[0] != "r1" && high[0] != "r2" {
				t.Fatalf("round %d: escalated to %s, want a peer that refused", round, high[0])
			}
			return
		}
	}
	t.Fatal("no high-priority request in 4 rounds: the fresh dead entries kept the repair from escalating")
}
