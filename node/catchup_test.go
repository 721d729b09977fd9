package node_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/link/memlink"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
)

// aloneNode starts a node with no contact over a network of its own, with cfg's queue and
// catch-up settings.
func aloneNode(t *testing.T, mutate func(*node.Config)) *node.Node {
	t.Helper()
	net, err := memlink.NewNetwork(memlink.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	key := nodetest.Key(t, "alone")
	tr, err := net.Transport(key.ID())
	if err != nil {
		t.Fatal(err)
	}
	cfg := nodetest.Config()
	cfg.Key, cfg.Transport = key, tr
	mutate(&cfg)
	nd, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nd.Close()
		net.Close()
	})
	return nd
}

// TestDeliveryBacklog: with catch-up on, Gossip.CatchUpMaxMessages deliveries wait in the node
// beyond a full channel, so a burst of history is not dropped by a reader that is behind;
// order is kept, and beyond both the oldest are dropped and counted. Without catch-up only the
// channel holds them, as before.
func TestDeliveryBacklog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window time.Duration
		kept   int
	}{
		{"catch-up on", 5 * time.Minute, 4 + 8},
		{"catch-up off", 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nd := aloneNode(t, func(c *node.Config) {
				c.DeliveryQueueLength = 4
				c.Gossip.CatchUpMaxMessages = 8
				if err := c.SetCatchUp(tc.window); err != nil {
					t.Fatal(err)
				}
			})
			const sent = 20
			for i := range sent {
				// Alone, the node delivers its own broadcasts (and keeps them for its first
				// neighbour); nobody reads them yet.
				if _, err := nd.Broadcast(fmt.Appendf(nil, "m%02d", i)); err != nil {
					t.Fatal(err)
				}
			}
			if s := nd.Stats(); s.DeliveriesDropped != uint64(sent-tc.kept) {
				t.Errorf("DeliveriesDropped %d, want %d", s.DeliveriesDropped, sent-tc.kept)
			}
			var got []string
			for len(got) < tc.kept {
				select {
				case d := <-nd.Deliveries():
					got = append(got, string(d.Data))
				case <-time.After(5 * time.Second):
					t.Fatalf("read %d deliveries (%s), want %d", len(got), strings.Join(got, " "), tc.kept)
				}
			}
			for k, g := range got {
				if want := fmt.Sprintf("m%02d", sent-tc.kept+k); g != want {
					t.Fatalf("deliveries %s: want the last %d in order", strings.Join(got, " "), tc.kept)
				}
			}
			select {
			case d := <-nd.Deliveries():
				t.Errorf("one more delivery %q", d.Data)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

// TestSetCatchUp: the window is set with the seen-set age it needs, and a window no digest
// covers is refused.
func TestSetCatchUp(t *testing.T) {
	c := node.DefaultConfig()
	if c.Gossip.CatchUpWindow != 5*time.Minute {
		t.Errorf("default window %v, want 5m", c.Gossip.CatchUpWindow)
	}
	if err := c.SetCatchUp(30 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if c.Gossip.CatchUpWindow != 30*time.Minute || c.Gossip.SeenMaxAge <= 30*time.Minute+c.Gossip.MaxClockSkew {
		t.Errorf("window %v, seen max age %v", c.Gossip.CatchUpWindow, c.Gossip.SeenMaxAge)
	}
	if err := c.SetCatchUp(0); err != nil || c.Gossip.CatchUpWindow != 0 {
		t.Errorf("SetCatchUp(0): %v, window %v", err, c.Gossip.CatchUpWindow)
	}
	for _, bad := range []time.Duration{-time.Second, c.Gossip.CatchUpInterval} {
		if err := c.SetCatchUp(bad); err == nil {
			t.Errorf("SetCatchUp(%v) accepted", bad)
		}
	}
	// The profiles validate, with a long window too.
	net, err := memlink.NewNetwork(memlink.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	for name, c := range map[string]node.Config{"wan": node.DefaultConfig(), "lan": node.DefaultLANConfig(), "test": nodetest.Config()} {
		for _, w := range []time.Duration{0, time.Minute, time.Hour} {
			key := nodetest.Key(t, name+w.String())
			tr, err := net.Transport(key.ID())
			if err != nil {
				t.Fatal(err)
			}
			c.Key, c.Transport = key, tr
			if err := c.SetCatchUp(w); err != nil {
				t.Fatalf("%s: SetCatchUp(%v): %v", name, w, err)
			}
			nd, err := node.New(c)
			if err != nil {
				t.Fatalf("%s profile with a %v window: %v", name, w, err)
			}
			nd.Close()
		}
	}
	// The pacing bounds are checked like every other bound.
	for i, bad := range []func(*node.Config){
		func(c *node.Config) { c.CatchUpFramesPerTick = 0 },
		func(c *node.Config) { c.CatchUpBusyFor = -time.Second },
	} {
		c := nodetest.Config()
		key := nodetest.Key(t, fmt.Sprint("pacing", i))
		tr, err := net.Transport(key.ID())
		if err != nil {
			t.Fatal(err)
		}
		c.Key, c.Transport = key, tr
		bad(&c)
		if nd, err := node.New(c); err == nil {
			nd.Close()
			t.Errorf("a pacing bound out of range was accepted: frames %d, busy %v", c.CatchUpFramesPerTick, c.CatchUpBusyFor)
		}
	}
}

// lateJoiner starts a node that joins m through contact, with its deliveries read by the test
// (not by the mesh), and closes it when the test ends.
func lateJoiner(t *testing.T, m *mesh, name, contact string) (*node.Node, <-chan node.Delivery) {
	t.Helper()
	key := nodetest.Key(t, name)
	tr, err := m.net.Transport(key.ID())
	if err != nil {
		t.Fatal(err)
	}
	cfg := nodetest.Config()
	cfg.Key, cfg.Transport, cfg.Contacts, cfg.Seed = key, tr, []string{contact}, 99
	nd, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range nd.Events() {
		}
	}()
	t.Cleanup(func() { nd.Close() })
	return nd, nd.Deliveries()
}

// TestLateJoinerCatchesUp: a node that joins after broadcasts were made delivers them, by
// catch-up from its new neighbours, with History set and the SentAt their origins gave them;
// what is broadcast after it joined comes live.
func TestLateJoinerCatchesUp(t *testing.T) {
	m := newMesh(t, 6, 500*time.Millisecond)
	nodetest.WaitFor(t, 30*time.Second, "overlay of 6 connected", func() error { return m.OverlayOK(m.nodes) })
	type sent struct {
		data string
		at   time.Time // bounds of the origin's clock around its Broadcast
		to   time.Time
	}
	want := map[gossip.MessageID]sent{}
	for i := range 10 {
		origin := m.nodes[i%len(m.nodes)]
		data := fmt.Sprintf("before the late joiner, %d", i)
		before := time.Now()
		id, err := origin.Broadcast([]byte(data))
		if err != nil {
			t.Fatal(err)
		}
		want[id] = sent{data: data, at: before.Add(-time.Second), to: time.Now().Add(time.Second)}
	}
	// Every member has them (so every neighbour of the late joiner holds them).
	for id := range want {
		m.WaitDelivered(id, m.nodes, 10*time.Second)
	}

	// Digests leave out what the tree may still be delivering (Gossip.CatchUpSettle); a node
	// joining sooner gets those at a later Digest. The figure below is for one joining after.
	time.Sleep(nodetest.Config().Gossip.CatchUpSettle)

	start := time.Now()
	late, deliveries := lateJoiner(t, m, "late", m.nodes[2].ID())
	got := map[gossip.MessageID]node.Delivery{}
	var last time.Duration
	timeout := time.After(30 * time.Second)
	for len(got) < len(want) {
		select {
		case d := <-deliveries:
			if _, ok := want[d.ID]; ok {
				got[d.ID] = d
				last = time.Since(start)
			}
		case <-timeout:
			t.Fatalf("the late joiner delivered %d of %d earlier broadcasts in 30 s; stats %+v", len(got), len(want), late.Stats().Gossip)
		}
	}
	t.Logf("late joiner: all %d earlier broadcasts delivered %v after it started", len(want), last.Round(time.Millisecond))
	for id, d := range got {
		w := want[id]
		if !d.History || string(d.Data) != w.data || d.Hops < 1 {
			t.Errorf("%s: delivered %q, history %v, hops %d; want %q as history", id, d.Data, d.History, d.Hops, w.data)
		}
		if d.SentAt.Before(w.at) || d.SentAt.After(w.to) || d.SentAt.Nanosecond()%int(time.Millisecond) != 0 {
			t.Errorf("%s: SentAt %v, want the origin's time of its Broadcast, between %v and %v, in ms", id, d.SentAt, w.at, w.to)
		}
	}
	if s := late.Stats(); s.Gossip.HistoryDelivered < uint64(len(want)) || s.DeliveriesDropped != 0 {
		t.Errorf("late joiner: %d history deliveries, %d dropped; want %d and none", s.Gossip.HistoryDelivered, s.DeliveriesDropped, len(want))
	}

	// Now a member: a new broadcast reaches it live.
	id, err := m.nodes[0].Broadcast([]byte("after the late joiner"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case d := <-deliveries:
			if d.ID != id {
				continue
			}
			if d.History {
				t.Errorf("a broadcast made after the join came as history")
			}
			return
		case <-time.After(10 * time.Second):
			t.Fatal("the late joiner did not deliver a live broadcast")
		}
	}
}

// TestLateJoinerBurst: a late joiner is handed thousands of earlier broadcasts at once (a
// neighbour answers a Pull of Gossip.CatchUpMaxRefs with as many History frames as its budget
// allows). Neither the joiner's delivery queue nor the links' send queues overflow: every one
// is delivered, none dropped, and no link is closed as slow.
func TestLateJoinerBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("thousands of signed broadcasts skipped in -short mode")
	}
	// 3,000 broadcasts from 4 origins within seconds are a flood by the defaults
	// (gossip.Config.OriginRate 20/s): this test is about catch-up's pacing, not the defences.
	m := newMeshWith(t, 4, 500*time.Millisecond, func(c *node.Config) { c.DisableDefences() })
	nodetest.WaitFor(t, 30*time.Second, "overlay of 4 connected", func() error { return m.OverlayOK(m.nodes) })
	const n = 3000
	payload := make([]byte, 200)
	ids := make(map[gossip.MessageID]bool, n)
	var last gossip.MessageID
	for i := range n {
		copy(payload, fmt.Sprintf("burst %04d ", i))
		id, err := m.nodes[i%len(m.nodes)].Broadcast(append([]byte(nil), payload...))
		if err != nil {
			t.Fatal(err)
		}
		ids[id], last = true, id
		if i%200 == 199 {
			m.WaitDelivered(id, m.nodes, 30*time.Second) // keep the tree's queues short
		}
	}
	m.WaitDelivered(last, m.nodes, 30*time.Second)
	for id := range ids {
		m.WaitDelivered(id, m.nodes, 30*time.Second)
	}
	var slowBefore uint64
	for _, nd := range m.nodes {
		slowBefore += nd.Stats().SlowPeers
	}

	start := time.Now()
	late, deliveries := lateJoiner(t, m, "late", m.nodes[1].ID())
	// Read nothing for a while, as a busy application would: the burst must wait, not drop.
	time.Sleep(2 * time.Second)
	got := 0
	timeout := time.After(60 * time.Second)
	for got < n {
		select {
		case d := <-deliveries:
			if ids[d.ID] {
				if !d.History {
					t.Fatalf("%s came live, want history", d.ID)
				}
				got++
			}
		case <-timeout:
			t.Fatalf("the late joiner delivered %d of %d in 60 s; node stats %+v", got, n, late.Stats())
		}
	}
	t.Logf("late joiner: %d earlier broadcasts of %d bytes delivered as history %v after it started (2 s of them unread)",
		n, len(payload), time.Since(start).Round(time.Millisecond))
	var slow, dropped, catchUpDropped, throttled uint64
	for _, nd := range append(m.nodes, late) {
		s := nd.Stats()
		slow, dropped, catchUpDropped, throttled = slow+s.SlowPeers, dropped+s.FramesDropped, catchUpDropped+s.CatchUpFramesDropped, throttled+s.Gossip.CatchUpThrottled
	}
	t.Logf("all nodes: frames dropped %d, catch-up frames dropped %d, catch-up answers throttled %d; late joiner's history duplicates %d",
		dropped, catchUpDropped, throttled, late.Stats().Gossip.HistoryDuplicates)
	if s := late.Stats(); s.DeliveriesDropped != 0 || slow != slowBefore {
		t.Errorf("deliveries dropped %d, links closed as slow %d; want none", s.DeliveriesDropped, slow-slowBefore)
	}
}
