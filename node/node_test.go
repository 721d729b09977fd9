package node

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/link"
	"github.com/rtcmesh/rtcmesh/link/memlink"
)

// mesh is a set of complete nodes over an in-memory network.
type mesh struct {
	t     *testing.T
	net   *memlink.Network
	nodes []*Node
	// got[i][id] counts deliveries of message id at node i.
	mu  sync.Mutex
	got []map[gossip.MessageID]int
	wg  sync.WaitGroup
}

func testConfig() Config {
	c := DefaultLANConfig()
	c.Membership.ShuffleInterval = 500 * time.Millisecond
	c.Membership.NeighborTimeout = time.Second
	c.Membership.RejoinBackoff = 500 * time.Millisecond
	c.TickInterval = 20 * time.Millisecond
	c.IdleLinkTimeout = 2 * time.Second
	return c
}

func newMesh(t *testing.T, n int, heartbeat time.Duration) *mesh {
	t.Helper()
	lc := memlink.DefaultConfig()
	lc.HeartbeatTimeout = heartbeat
	net, err := memlink.NewNetwork(lc)
	if err != nil {
		t.Fatal(err)
	}
	m := &mesh{t: t, net: net}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		var contacts []string
		for k := 0; k < 3 && i > 0; k++ {
			contacts = append(contacts, fmt.Sprintf("node%03d", rng.IntN(i)))
		}
		m.add(fmt.Sprintf("node%03d", i), contacts, uint64(i+1))
	}
	t.Cleanup(func() {
		for _, nd := range m.nodes {
			nd.Close()
		}
		m.wg.Wait()
		net.Close()
	})
	return m
}

func (m *mesh) add(id string, contacts []string, seed uint64) *Node {
	m.t.Helper()
	tr, err := m.net.Transport(id)
	if err != nil {
		m.t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Transport, cfg.ID, cfg.Contacts, cfg.Seed = tr, id, contacts, seed
	// What the signaling server's peer list gives a real node that needs contacts: a node it
	// is not linked to yet.
	var self *Node
	cfg.NeedContacts = func() {
		go func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if self == nil || len(m.nodes) < 2 {
				return
			}
			other := m.nodes[rand.IntN(len(m.nodes))]
			if other != self {
				go self.Join(other.ID())
			}
		}()
	}
	nd, err := New(cfg)
	if err != nil {
		m.t.Fatal(err)
	}
	m.mu.Lock()
	self = nd
	m.mu.Unlock()
	m.track(nd)
	return nd
}

// track follows nd's deliveries (counted per message) and drains its events.
func (m *mesh) track(nd *Node) {
	m.mu.Lock()
	k := len(m.nodes)
	m.nodes = append(m.nodes, nd)
	m.got = append(m.got, map[gossip.MessageID]int{})
	m.mu.Unlock()
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		for d := range nd.Deliveries() {
			m.mu.Lock()
			m.got[k][d.ID]++
			m.mu.Unlock()
		}
	}()
	go func() {
		defer m.wg.Done()
		for range nd.Events() {
		}
	}()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pickNodes returns k nodes of from chosen at random, with repetition: broadcast origins.
func pickNodes(rng *rand.Rand, from []*Node, k int) []*Node {
	out := make([]*Node, 0, k)
	for range k {
		out = append(out, from[rng.IntN(len(from))])
	}
	return out
}

// overlayOK checks the live nodes' active views: within bounds, symmetric, connected.
func (m *mesh) overlayOK(live []*Node) error {
	views := map[string][]string{}
	for _, nd := range live {
		for _, nb := range nd.Neighbors() {
			views[nd.ID()] = append(views[nd.ID()], nb.ID)
		}
	}
	max := testConfig().Membership.ActiveSize
	for _, nd := range live {
		v := views[nd.ID()]
		if len(v) < 1 || len(v) > max {
			return fmt.Errorf("%s has %d neighbours", nd.ID(), len(v))
		}
		for _, p := range v {
			if !slices.Contains(views[p], nd.ID()) {
				return fmt.Errorf("link %s -> %s is not symmetric", nd.ID(), p)
			}
		}
	}
	seen := map[string]bool{live[0].ID(): true}
	queue := []string{live[0].ID()}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, q := range views[p] {
			if !seen[q] {
				seen[q] = true
				queue = append(queue, q)
			}
		}
	}
	if len(seen) != len(live) {
		return fmt.Errorf("overlay not connected: %d of %d reachable", len(seen), len(live))
	}
	return nil
}

// broadcastAll sends one message from each of origins in turn, waiting until every node of
// live delivered it, and returns the payload frames the broadcasts cost.
func (m *mesh) broadcastAll(origins, live []*Node) (payloads uint64) {
	m.t.Helper()
	before := m.payloadsReceived(live)
	index := map[*Node]int{}
	for k, nd := range m.nodes {
		index[nd] = k
	}
	for _, o := range origins {
		id, err := o.Broadcast([]byte("hello from " + o.ID()))
		if err != nil {
			m.t.Fatal(err)
		}
		waitFor(m.t, 10*time.Second, "broadcast from "+o.ID(), func() error {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, nd := range live {
				if m.got[index[nd]][id] == 0 {
					return fmt.Errorf("%s has not delivered %s", nd.ID(), id)
				}
			}
			return nil
		})
	}
	return m.payloadsReceived(live) - before
}

func (m *mesh) payloadsReceived(live []*Node) uint64 {
	var total uint64
	for _, nd := range live {
		total += nd.Stats().Gossip.Received[gossip.Gossip]
	}
	return total
}

func (m *mesh) noDuplicates() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, got := range m.got {
		for id, c := range got {
			if c != 1 {
				m.t.Errorf("%s delivered %s %d times", m.nodes[k].ID(), id, c)
			}
		}
	}
}

func TestMeshOfFifty(t *testing.T) {
	m := newMesh(t, 50, 500*time.Millisecond)
	waitFor(t, 60*time.Second, "overlay of 50 connected and symmetric", func() error { return m.overlayOK(m.nodes) })
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(from []*Node, k int) []*Node { return pickNodes(rng, from, k) }
	// The first broadcasts shape the tree; then each message crosses each node once.
	m.broadcastAll(pick(m.nodes, 10), m.nodes)
	const measured = 90
	payloads := m.broadcastAll(pick(m.nodes, measured), m.nodes)
	rmr := float64(payloads)/float64(measured*(len(m.nodes)-1)) - 1
	t.Logf("50 nodes: %d payload frames for %d broadcasts, RMR %.3f", payloads, measured, rmr)
	if rmr > 0.1 {
		t.Errorf("RMR %.3f once the tree formed, want <= 0.1", rmr)
	}
	m.noDuplicates()

	// Ten nodes crash silently; the survivors notice through the link heartbeat, repair
	// their views, and the next broadcasts reach every survivor.
	crashed := map[string]bool{}
	for _, nd := range m.nodes[40:] {
		m.net.Crash(nd.ID())
		crashed[nd.ID()] = true
	}
	survivors := m.nodes[:40]
	waitFor(t, 60*time.Second, "survivors repaired their views", func() error {
		for _, nd := range survivors {
			for _, nb := range nd.Neighbors() {
				if crashed[nb.ID] {
					return fmt.Errorf("%s still has crashed %s as a neighbour", nd.ID(), nb.ID)
				}
			}
		}
		return m.overlayOK(survivors)
	})
	m.broadcastAll(pick(survivors, 10), survivors)
	m.noDuplicates()
}

// TestHostilePeer: a peer that sends garbage is disconnected; the node keeps running.
func TestHostilePeer(t *testing.T) {
	m := newMesh(t, 3, 500*time.Millisecond)
	waitFor(t, 30*time.Second, "3 nodes connected", func() error { return m.overlayOK(m.nodes) })
	evil, err := m.net.Transport("evil")
	if err != nil {
		t.Fatal(err)
	}
	defer evil.Close()
	target := m.nodes[0]
	evil.Dial(target.ID())
	for _, frame := range [][]byte{
		{},                    // empty
		{9, 1, 1},             // unknown version
		{1, 1, 99},            // unknown membership type
		{1, 2, 1, 0xff, 0xff}, // truncated gossip
	} {
		waitForLinkUp(t, evil, target.ID())
		if err := evil.Send(target.ID(), frame); err != nil {
			t.Fatalf("sending garbage: %v", err)
		}
		waitForLinkDown(t, evil, target.ID())
		evil.Dial(target.ID())
	}
	waitFor(t, 15*time.Second, "bad frames counted", func() error {
		if s := target.Stats(); s.BadFrames < 4 {
			return fmt.Errorf("BadFrames %d", s.BadFrames)
		}
		return nil
	})
	// The node still works.
	m.broadcastAll([]*Node{target}, m.nodes)
}

func waitForLinkUp(t *testing.T, tr link.Transport, peer string) {
	t.Helper()
	waitForLinkEvent(t, tr, peer, link.LinkUp)
}

func waitForLinkDown(t *testing.T, tr link.Transport, peer string) {
	t.Helper()
	waitForLinkEvent(t, tr, peer, link.LinkDown)
}

func waitForLinkEvent(t *testing.T, tr link.Transport, peer string, want link.EventType) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-tr.Events():
			if ev.Peer == peer && ev.Type == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %v for %s", want, peer)
		}
	}
}

// TestGracefulClose: a node that closes tells its neighbours, which replace it at once,
// well before the heartbeat would have noticed. (Their passive views may still name it: a
// shuffle can carry a stale ID back, and it is dropped when a dial to it fails.)
func TestGracefulClose(t *testing.T) {
	m := newMesh(t, 10, time.Hour) // a crash would go unnoticed for an hour
	waitFor(t, 60*time.Second, "overlay of 10 connected", func() error { return m.overlayOK(m.nodes) })
	leaving := m.nodes[4]
	var neighbours []*Node
	for _, nb := range leaving.Neighbors() {
		for _, nd := range m.nodes {
			if nd.ID() == nb.ID {
				neighbours = append(neighbours, nd)
			}
		}
	}
	if err := leaving.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := leaving.Broadcast(nil); err != ErrClosed {
		t.Errorf("Broadcast after Close: %v, want ErrClosed", err)
	}
	rest := slices.DeleteFunc(slices.Clone(m.nodes), func(nd *Node) bool { return nd == leaving })
	waitFor(t, 30*time.Second, "neighbours dropped the leaving node", func() error {
		for _, nd := range neighbours {
			for _, nb := range nd.Neighbors() {
				if nb.ID == leaving.ID() {
					return fmt.Errorf("%s still lists %s", nd.ID(), leaving.ID())
				}
			}
		}
		return m.overlayOK(rest)
	})
	m.broadcastAll(rest[:2], rest)
}

func TestConfigErrors(t *testing.T) {
	net, err := memlink.NewNetwork(memlink.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	tr, err := net.Transport("a")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for name, mutate := range map[string]func(*Config){
		"no transport":   func(c *Config) { c.Transport = nil },
		"no id":          func(c *Config) { c.ID = "" },
		"no tick":        func(c *Config) { c.TickInterval = 0 },
		"payload > wire": func(c *Config) { c.Gossip.MaxPayload = c.Limits.MaxPayload + 1 },
		"bad membership": func(c *Config) { c.Membership.ActiveSize = 0 },
		"bad limits":     func(c *Config) { c.Limits.MaxFrameSize = 0 },
	} {
		c := testConfig()
		c.Transport, c.ID = tr, "a"
		mutate(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
}
