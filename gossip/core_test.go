package gossip

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// validConfig is DefaultConfig for self, without catch-up (tested in catchup_test.go).
func validConfig(self string) Config {
	cfg := DefaultConfig()
	cfg.CatchUpWindow = 0
	cfg.Self = self
	cfg.Rand = rand.New(rand.NewPCG(1, 2))
	return cfg
}

func TestNewValidatesConfig(t *testing.T) {
	if _, err := New(validConfig("a")); err != nil {
		t.Fatalf("DefaultConfig with Self and Rand: %v", err)
	}
	flood := validConfig("a")
	flood.Flood = true
	flood.MissingTimeout, flood.GraftRetryTimeout = 0, 0
	if _, err := New(flood); err != nil {
		t.Fatalf("flood mode needs no timeouts: %v", err)
	}

	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no self", func(c *Config) { c.Self = "" }, "Self is empty"},
		{"no rand", func(c *Config) { c.Rand = nil }, "Rand is nil"},
		{"batch", func(c *Config) { c.LazyBatchMax = 0 }, "LazyBatchMax must be positive"},
		{"cache count", func(c *Config) { c.CacheMaxMessages = -1 }, "CacheMaxMessages must be positive"},
		{"cache age", func(c *Config) { c.CacheMaxAge = 0 }, "CacheMaxAge must be positive"},
		{"seen count", func(c *Config) { c.SeenMaxIDs = 0 }, "SeenMaxIDs must be positive"},
		{"seen age", func(c *Config) { c.SeenMaxAge = 0 }, "SeenMaxAge must be positive"},
		{"missing ids", func(c *Config) { c.MissingMaxIDs = 0 }, "MissingMaxIDs must be positive"},
		{"announcers", func(c *Config) { c.MissingMaxAnnouncers = 0 }, "MissingMaxAnnouncers must be positive"},
		{"payload", func(c *Config) { c.MaxPayload = 0 }, "MaxPayload must be positive"},
		{"flush", func(c *Config) { c.LazyFlushInterval = -time.Second }, "LazyFlushInterval must not be negative"},
		{"threshold", func(c *Config) { c.OptimizationThreshold = -1 }, "OptimizationThreshold must not be negative"},
		{"missing timeout", func(c *Config) { c.MissingTimeout = 0 }, "MissingTimeout must be positive"},
		{"retry timeout", func(c *Config) { c.GraftRetryTimeout = 0 }, "GraftRetryTimeout must be positive"},
		{"retry not shorter", func(c *Config) { c.GraftRetryTimeout = c.MissingTimeout }, "GraftRetryTimeout (1s) must be shorter than MissingTimeout (1s)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig("a")
			tc.change(&cfg)
			c, err := New(cfg)
			if err == nil || c != nil {
				t.Fatalf("New accepted a bad config (core %v)", c)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}

	// Every problem is reported at once.
	cfg := validConfig("")
	cfg.Rand = nil
	cfg.MaxPayload = 0
	_, err := New(cfg)
	for _, want := range []string{"Self", "Rand", "MaxPayload"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v does not mention %s", err, want)
		}
	}
}

// snapshot is the observable state of a core, for "state unchanged" checks.
func snapshot(c *Core) string {
	s := c.Stats()
	s.InvalidMessages = 0
	d, ok := c.NextDeadline()
	return fmt.Sprintf("%+v eager=%v lazy=%v ready=%v deadline=%v,%v", s, c.EagerPeers(), c.LazyPeers(), c.HasReady(), d, ok)
}

func TestStepRejectsInvalidMessages(t *testing.T) {
	cfg := validConfig("a")
	cfg.LazyBatchMax = 2
	cfg.MaxPayload = 8
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.NeighborUp("b")
	c.NeighborUp("c")
	if err := c.Step("c", Message{Type: Prune}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Broadcast([]byte("x")); err != nil {
		t.Fatal(err)
	}
	c.Ready()

	id := MessageID{1}
	cases := []struct {
		name string
		from string
		msg  Message
		want string
	}{
		{"empty sender", "", Message{Type: Prune}, "empty sender"},
		{"from self", "a", Message{Type: Prune}, "sender is this node"},
		{"type 0", "b", Message{Type: 0}, "unknown message type 0"},
		{"type 9", "b", Message{Type: 9}, "unknown message type 9"},
		{"digest no spans", "b", Message{Type: Digest}, "digest without spans"},
		{"digest reversed span", "b", Message{Type: Digest, Spans: []Span{{From: 5, To: 5}}}, "span 0 is empty or reversed"},
		{"digest gap", "b", Message{Type: Digest, Spans: []Span{{From: 1, To: 5}, {From: 6, To: 9}}}, "digest span 1 does not follow span 0"},
		{"have overlap", "b", Message{Type: Have, Spans: []Span{{From: 1, To: 5}, {From: 4, To: 9}}}, "span 1 overlaps or precedes span 0"},
		{"pull empty", "b", Message{Type: Pull}, "pull without refs"},
		{"history zero seq", "b", Message{Type: History, ID: id, Origin: "b", Hops: 1}, "sequence number 0"},
		{"gossip zero id", "b", Message{Type: Gossip, Origin: "b", Hops: 1}, "zero message ID"},
		{"gossip no origin", "b", Message{Type: Gossip, ID: id, Hops: 1}, "empty origin"},
		{"gossip hops 0", "b", Message{Type: Gossip, ID: id, Origin: "b"}, "hop count 0"},
		{"gossip too big", "b", Message{Type: Gossip, ID: id, Origin: "b", Hops: 1, Payload: make([]byte, 9)}, "exceeds MaxPayload 8"},
		{"ihave empty", "b", Message{Type: IHave}, "empty announcement batch"},
		{"ihave too many", "b", Message{Type: IHave, IHave: []Announcement{{ID: id}, {ID: MessageID{2}}, {ID: MessageID{3}}}}, "3 announcements exceed LazyBatchMax 2"},
		{"ihave zero id", "b", Message{Type: IHave, IHave: []Announcement{{ID: id}, {}}}, "announcement 1 has a zero message ID"},
	}
	for i, tc := range cases {
		before := snapshot(c)
		err := c.Step(tc.from, tc.msg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
		if after := snapshot(c); after != before {
			t.Errorf("%s: state changed:\n%s\n%s", tc.name, before, after)
		}
		if got := c.Stats().InvalidMessages; got != uint64(i+1) {
			t.Errorf("%s: InvalidMessages %d, want %d", tc.name, got, i+1)
		}
	}

	if _, err := c.Broadcast(make([]byte, 9)); err == nil {
		t.Errorf("Broadcast accepted a payload over MaxPayload")
	}
	if c.HasReady() || c.Stats().Broadcasts != 1 {
		t.Errorf("a refused Broadcast changed the state")
	}
}

func TestNeighborUpDown(t *testing.T) {
	cfg := validConfig("a")
	cfg.LazyFlushInterval = time.Second
	cfg.NeighborHelloTimeout = 0 // no keepalives among the Grafts (hello_test.go)
	c, _ := New(cfg)
	c.NeighborUp("")
	c.NeighborUp("a")
	c.NeighborUp("c")
	c.NeighborUp("b")
	c.NeighborUp("b")
	if got := c.EagerPeers(); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("eager %v", got)
	}
	// A neighbour that is lazy stays lazy on a repeated NeighborUp.
	_ = c.Step("c", Message{Type: Prune})
	c.NeighborUp("c")
	if got := c.LazyPeers(); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("lazy %v", got)
	}
	// c has an announcement queued and is an announcer of a missing message; both go with it.
	if _, err := c.Broadcast(nil); err != nil {
		t.Fatal(err)
	}
	_ = c.Step("c", Message{Type: IHave, IHave: []Announcement{{ID: MessageID{9}, Hops: 2}}})
	_ = c.Step("b", Message{Type: IHave, IHave: []Announcement{{ID: MessageID{8}, Hops: 2}}})
	if _, ok := c.NextDeadline(); !ok || len(c.pending) != 1 || len(c.missing) != 2 {
		t.Fatalf("setup: pending %d missing %d", len(c.pending), len(c.missing))
	}
	c.NeighborDown("c")
	if len(c.pending) != 0 || len(c.missing) != 1 || len(c.timers) != 1 {
		t.Fatalf("after NeighborDown: pending %d missing %d timers %d", len(c.pending), len(c.missing), len(c.timers))
	}
	if c.isNeighbor("c") {
		t.Fatalf("c still a neighbour")
	}
	c.Ready()
	c.Tick(time.Hour)
	rd := c.Ready()
	if len(rd.Messages) != 1 || rd.Messages[0].To != "b" || rd.Messages[0].Msg.Type != Graft {
		t.Fatalf("only b should be grafted, got %+v", rd.Messages)
	}
}

// randomGraph links n cores named n000... into a connected graph whose degrees resemble a
// HyParView active view of 5: a random ring (for connectivity) plus random chords, no node
// above degree 6.
func randomGraph(t testing.TB, cfg Config, n int, seed uint64) (*testNet, [][2]string) {
	net := newTestNet(t, cfg, seed)
	rng := rand.New(rand.NewPCG(seed, 99))
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("n%03d", i)
		net.add(names[i])
	}
	rng.Shuffle(n, func(i, j int) { names[i], names[j] = names[j], names[i] })
	degree := map[string]int{}
	linked := map[[2]string]bool{}
	var edges [][2]string
	addEdge := func(a, b string) bool {
		if a == b || linked[[2]string{a, b}] || degree[a] >= 6 || degree[b] >= 6 {
			return false
		}
		linked[[2]string{a, b}], linked[[2]string{b, a}] = true, true
		degree[a]++
		degree[b]++
		edges = append(edges, [2]string{a, b})
		net.link(a, b)
		return true
	}
	for i := range names {
		addEdge(names[i], names[(i+1)%n])
	}
	for tries := 0; len(edges) < n*5/2 && tries < n*100; tries++ {
		addEdge(names[rng.IntN(n)], names[rng.IntN(n)])
	}
	return net, edges
}

// TestTreeForms checks the paper's headline on a 200-node graph: once the tree has formed, a
// broadcast reaches every node with n-1 payload messages (RMR 0).
func TestTreeForms(t *testing.T) {
	for _, threshold := range []int{0, 7} {
		t.Run(fmt.Sprintf("threshold=%d", threshold), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.OptimizationThreshold = threshold
			const n = 200
			net, _ := randomGraph(t, cfg, n, 7)
			rng := rand.New(rand.NewPCG(3, 4))
			round := func() MessageID {
				id := net.broadcast(net.names[rng.IntN(n)], []byte("x"))
				net.deliverAll()
				net.tick(cfg.LazyFlushInterval)
				net.deliverAll()
				net.tick(cfg.MissingTimeout)
				net.deliverAll()
				return id
			}
			for range 20 {
				round()
			}
			const measured = 50
			rmr0 := 0
			for range measured {
				id := round()
				if got := len(net.delivered[id]); got != n {
					t.Fatalf("message reached %d of %d nodes", got, n)
				}
				if net.gossipSent[id] == n-1 {
					rmr0++
				}
			}
			eagerEdges := 0
			for _, name := range net.names {
				eagerEdges += len(net.cores[name].EagerPeers())
			}
			t.Logf("RMR 0 for %d of %d messages; eager edges %d (a tree has %d)", rmr0, measured, eagerEdges/2, n-1)
			if rmr0 < measured*9/10 {
				t.Fatalf("RMR 0 for only %d of %d messages", rmr0, measured)
			}
			for _, m := range net.delivered {
				for node, times := range m {
					if times != 1 {
						t.Fatalf("%s delivered a message %d times", node, times)
					}
				}
			}
		})
	}
}

// TestFloodRMR checks the baseline: flooding over an active view of about 5 sends about
// (degree-1) payloads per node, an RMR near 3.
func TestFloodRMR(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Flood = true
	const n = 200
	net, edges := randomGraph(t, cfg, n, 11)
	id := net.broadcast(net.names[0], nil)
	net.deliverAll()
	if got := len(net.delivered[id]); got != n {
		t.Fatalf("reached %d of %d", got, n)
	}
	// Every link carries the payload both ways except the n-1 links it first arrives on,
	// which carry it once, and the origin sends on all of its links.
	want := 2*len(edges) - (n - 1)
	if got := net.gossipSent[id]; got != want {
		t.Fatalf("flood sent %d payloads, want %d", got, want)
	}
	rmr := float64(net.gossipSent[id])/float64(n-1) - 1
	t.Logf("flood RMR %.2f over %d links", rmr, len(edges))
	if rmr < 2 || rmr > 4 {
		t.Fatalf("flood RMR %.2f, want about 3", rmr)
	}
}

// TestRepairAfterFailures removes a fifth of the nodes from a formed tree; the survivors'
// timers graft lazy links and every survivor connected to the origin still delivers.
func TestRepairAfterFailures(t *testing.T) {
	cfg := DefaultConfig()
	const n = 200
	net, edges := randomGraph(t, cfg, n, 5)
	rng := rand.New(rand.NewPCG(8, 9))
	round := func(origin string) MessageID {
		id := net.broadcast(origin, []byte("x"))
		for range 100 { // 5s: enough for MissingTimeout and a few retries
			net.deliverAll()
			net.tick(cfg.LazyFlushInterval)
		}
		net.deliverAll()
		return id
	}
	for range 20 {
		round(net.names[rng.IntN(len(net.names))])
	}
	dead := map[string]bool{}
	for len(dead) < n/5 {
		dead[net.names[rng.IntN(n)]] = true
	}
	for _, e := range edges {
		a, b := e[0], e[1]
		switch {
		case dead[a] && !dead[b]:
			net.core(b).NeighborDown(a)
			net.collect(b)
		case dead[b] && !dead[a]:
			net.core(a).NeighborDown(b)
			net.collect(a)
		}
	}
	for name := range dead {
		delete(net.cores, name)
	}
	net.names = slices.DeleteFunc(net.names, func(s string) bool { return dead[s] })
	net.queue = slices.DeleteFunc(net.queue, func(f inFlight) bool { return dead[f.from] || dead[f.to] })

	// The survivors reachable from the origin over surviving links.
	origin := net.names[0]
	adj := map[string][]string{}
	for _, e := range edges {
		if !dead[e[0]] && !dead[e[1]] {
			adj[e[0]] = append(adj[e[0]], e[1])
			adj[e[1]] = append(adj[e[1]], e[0])
		}
	}
	reach := map[string]bool{origin: true}
	for stack := []string{origin}; len(stack) > 0; {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, w := range adj[v] {
			if !reach[w] {
				reach[w] = true
				stack = append(stack, w)
			}
		}
	}
	for i := range 10 {
		id := round(origin)
		got := 0
		for node := range net.delivered[id] {
			if reach[node] {
				got++
			}
		}
		if got != len(reach) {
			t.Fatalf("broadcast %d after failures reached %d of %d connected survivors", i, got, len(reach))
		}
		if i == 9 {
			t.Logf("%d connected survivors; last broadcast sent %d payloads", len(reach), net.gossipSent[id])
		}
	}
}

// TestExactlyOnceUnderReordering delivers messages in random order and delivers some twice;
// every node still delivers every broadcast exactly once.
func TestExactlyOnceUnderReordering(t *testing.T) {
	cfg := DefaultConfig()
	cfg.OptimizationThreshold = 2
	const n = 40
	net, _ := randomGraph(t, cfg, n, 21)
	rng := rand.New(rand.NewPCG(5, 6))
	var ids []MessageID
	for round := range 30 {
		ids = append(ids, net.broadcast(net.names[rng.IntN(n)], []byte{byte(round)}))
		// Deliver a random in-flight message, sometimes twice, with time passing now and
		// then so that announcements and Grafts join in.
		for steps := 0; len(net.queue) > 0 && steps < 300; steps++ {
			i := rng.IntN(len(net.queue))
			f := net.queue[i]
			if rng.IntN(5) > 0 {
				net.queue = slices.Delete(net.queue, i, i+1)
			}
			net.step(f)
			if rng.IntN(20) == 0 {
				net.tick(30 * time.Millisecond)
			}
		}
	}
	for range 100 {
		net.deliverAll()
		net.tick(100 * time.Millisecond)
	}
	for _, id := range ids {
		if got := len(net.delivered[id]); got != n {
			t.Errorf("%s reached %d of %d nodes", net.label(id), got, n)
		}
		for node, times := range net.delivered[id] {
			if times != 1 {
				t.Errorf("%s delivered %s %d times", node, net.label(id), times)
			}
		}
	}
}

func TestBoundsHold(t *testing.T) {
	cfg := validConfig("a")
	cfg.SeenMaxIDs = 50
	cfg.CacheMaxMessages = 20
	cfg.MissingMaxIDs = 10
	cfg.MissingMaxAnnouncers = 3
	cfg.LazyBatchMax = 8
	cfg.NeighborHelloTimeout = 0 // keepalives would keep a timer armed while neighbours stay
	c, _ := New(cfg)
	peers := []string{"b", "c", "d", "e", "f"}
	for _, p := range peers {
		c.NeighborUp(p)
	}
	_ = c.Step("e", Message{Type: Prune})
	_ = c.Step("f", Message{Type: Prune})
	rng := rand.New(rand.NewPCG(1, 1))
	newID := func() MessageID {
		var id MessageID
		putUint64(id[:8], rng.Uint64())
		putUint64(id[8:], rng.Uint64()|1)
		return id
	}
	check := func() {
		t.Helper()
		s := c.Stats()
		if s.SeenIDs > cfg.SeenMaxIDs || s.CachedMessages > cfg.CacheMaxMessages || s.PendingMissing > cfg.MissingMaxIDs {
			t.Fatalf("bound exceeded: %+v", s)
		}
		if c.seenQ.len() != len(c.seen) || c.cacheQ.len() != len(c.cache) || len(c.timers) != len(c.missing) {
			t.Fatalf("queues out of step: seen %d/%d cache %d/%d timers %d/%d",
				c.seenQ.len(), len(c.seen), c.cacheQ.len(), len(c.cache), len(c.timers), len(c.missing))
		}
		for _, e := range c.missing {
			if len(e.announcers) > cfg.MissingMaxAnnouncers {
				t.Fatalf("%d announcers", len(e.announcers))
			}
		}
		for _, q := range c.pending {
			if len(q.anns) >= cfg.LazyBatchMax {
				t.Fatalf("lazy queue of %d not flushed", len(q.anns))
			}
		}
		if cap(c.seenQ.items) > 4*cfg.SeenMaxIDs+64 || cap(c.cacheQ.items) > 4*cfg.CacheMaxMessages+64 {
			t.Fatalf("queue backing arrays grew: %d, %d", cap(c.seenQ.items), cap(c.cacheQ.items))
		}
	}
	now := time.Duration(0)
	for i := range 5000 {
		from := peers[i%len(peers)]
		m := Message{Type: Gossip, ID: newID(), Origin: "z", Hops: 3, Seq: uint64(i + 1), Time: now.Milliseconds(), Payload: []byte("p")}
		if err := c.Step(from, m); err != nil {
			t.Fatal(err)
		}
		batch := make([]Announcement, 1+i%cfg.LazyBatchMax)
		for j := range batch {
			batch[j] = Announcement{ID: newID(), Hops: 1}
		}
		for _, p := range peers {
			if err := c.Step(p, Message{Type: IHave, IHave: batch}); err != nil {
				t.Fatal(err)
			}
		}
		now += 7 * time.Millisecond
		c.Tick(now)
		c.Ready()
		check()
	}
	// Everything ages out.
	c.Tick(now + cfg.SeenMaxAge + cfg.CacheMaxAge + time.Hour)
	c.Ready()
	if s := c.Stats(); s.SeenIDs != 0 || s.CachedMessages != 0 || s.PendingMissing != 0 {
		t.Fatalf("after expiry: %+v", s)
	}
	if _, ok := c.NextDeadline(); ok {
		t.Fatalf("a timer is still armed")
	}
	check()
}

// TestSeenExpiryReplay: a message that resurfaces before SeenMaxAge is a duplicate. One that
// resurfaces after it used to be new again; since broadcasts carry their origin's time it is a
// replay refused by its time, because MaxClockSkew is below half of SeenMaxAge.
func TestSeenExpiryReplay(t *testing.T) {
	cfg := validConfig("a")
	cfg.SeenMaxAge = time.Minute
	cfg.MaxClockSkew = 20 * time.Second
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.NeighborUp("b")
	m := Message{Type: Gossip, ID: MessageID{7}, Origin: "z", Hops: 2, Seq: 1}
	_ = c.Step("b", m)
	c.Tick(59 * time.Second)
	_ = c.Step("b", m)
	if s := c.Stats(); s.Delivered != 1 || s.Duplicates != 1 {
		t.Fatalf("before expiry: %+v", s)
	}
	c.Tick(time.Minute)
	_ = c.Step("b", m)
	if s := c.Stats(); s.Delivered != 1 || s.RefusedClock != 1 || s.SeenIDs != 0 {
		t.Fatalf("after expiry: %+v", s)
	}
}

func transcript(t *testing.T, seed uint64) string {
	cfg := DefaultConfig()
	cfg.OptimizationThreshold = 3
	net, _ := randomGraph(t, cfg, 60, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	var ids []string
	for range 15 {
		id := net.broadcast(net.names[rng.IntN(60)], []byte("d"))
		ids = append(ids, id.String())
		for range 3 {
			net.deliverAll()
			net.tick(cfg.LazyFlushInterval)
		}
	}
	return strings.Join(ids, ",") + "\n" + net.out.String()
}

func TestDeterministic(t *testing.T) {
	a, b := transcript(t, 42), transcript(t, 42)
	if a != b {
		t.Fatalf("same seed, different output")
	}
	if len(a) < 10_000 {
		t.Fatalf("transcript suspiciously short: %d bytes", len(a))
	}
	if transcript(t, 43) == a {
		t.Fatalf("different seeds, same output")
	}
}

// benchCore returns a core with three eager and two lazy neighbours.
func benchCore(b *testing.B) *Core {
	c, err := New(validConfig("a"))
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range []string{"b", "c", "d", "e", "f"} {
		c.NeighborUp(p)
	}
	_ = c.Step("e", Message{Type: Prune})
	_ = c.Step("f", Message{Type: Prune})
	return c
}

// BenchmarkStepGossip measures the receive path of a new payload: dedup, deliver, cache,
// forward to 2 eager peers, queue 2 announcements.
func BenchmarkStepGossip(b *testing.B) {
	c := benchCore(b)
	payload := make([]byte, 256)
	ids := make([]MessageID, 1<<16)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range ids {
		putUint64(ids[i][:8], rng.Uint64())
		putUint64(ids[i][8:], rng.Uint64())
	}
	b.ReportAllocs()
	now := time.Duration(0)
	for i := 0; b.Loop(); i++ {
		m := Message{Type: Gossip, ID: ids[i%len(ids)], Origin: "z", Hops: 3, Seq: uint64(i + 1), Time: now.Milliseconds(), Payload: payload}
		if err := c.Step("b", m); err != nil {
			b.Fatal(err)
		}
		if i%16 == 0 {
			now += 10 * time.Millisecond
			c.Tick(now)
			c.Ready()
		}
	}
}

// BenchmarkStepDuplicate measures the cheapest and most common receive in flooding: a
// payload already seen.
func BenchmarkStepDuplicate(b *testing.B) {
	c := benchCore(b)
	c.cfg.Flood = true
	m := Message{Type: Gossip, ID: MessageID{1}, Origin: "z", Hops: 3, Seq: 1}
	_ = c.Step("b", m)
	c.Ready()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Step("c", m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBroadcast(b *testing.B) {
	c := benchCore(b)
	payload := make([]byte, 256)
	b.ReportAllocs()
	now := time.Duration(0)
	for i := 0; b.Loop(); i++ {
		if _, err := c.Broadcast(payload); err != nil {
			b.Fatal(err)
		}
		if i%16 == 0 {
			now += 10 * time.Millisecond
			c.Tick(now)
			c.Ready()
		}
	}
}
