package node_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
	"github.com/rtcmesh/rtcmesh/link/memlink"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
	"github.com/rtcmesh/rtcmesh/wire"
)

// mesh is a set of complete nodes over an in-memory network.
type mesh struct {
	*nodetest.Mesh
	t   *testing.T
	net *memlink.Network

	mu    sync.Mutex
	nodes []*node.Node
}

func newMesh(t *testing.T, n int, heartbeat time.Duration) *mesh {
	t.Helper()
	lc := memlink.DefaultConfig()
	lc.HeartbeatTimeout = heartbeat
	net, err := memlink.NewNetwork(lc)
	if err != nil {
		t.Fatal(err)
	}
	m := &mesh{Mesh: nodetest.NewMesh(t, nodetest.Config().Membership.ActiveSize), t: t, net: net}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		var contacts []string
		for k := 0; k < 3 && i > 0; k++ {
			contacts = append(contacts, nodetest.Key(t, fmt.Sprintf("node%03d", rng.IntN(i))).ID())
		}
		m.add(nodetest.Key(t, fmt.Sprintf("node%03d", i)), contacts, uint64(i+1))
	}
	t.Cleanup(func() {
		for _, nd := range m.nodes {
			nd.Close()
		}
		m.Wait()
		net.Close()
	})
	return m
}

func (m *mesh) add(key *identity.Key, contacts []string, seed uint64) *node.Node {
	m.t.Helper()
	tr, err := m.net.Transport(key.ID())
	if err != nil {
		m.t.Fatal(err)
	}
	cfg := nodetest.Config()
	cfg.Key, cfg.Transport, cfg.Contacts, cfg.Seed = key, tr, contacts, seed
	// What the signaling server's peer list gives a real node that needs contacts: a node it
	// is not linked to yet.
	var self *node.Node
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
	nd, err := node.New(cfg)
	if err != nil {
		m.t.Fatal(err)
	}
	m.mu.Lock()
	self = nd
	m.nodes = append(m.nodes, nd)
	m.mu.Unlock()
	m.Track(nd)
	return nd
}

func TestMeshOfFifty(t *testing.T) {
	m := newMesh(t, 50, 500*time.Millisecond)
	nodetest.WaitFor(t, 60*time.Second, "overlay of 50 connected and symmetric", func() error { return m.OverlayOK(m.nodes) })
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(from []*node.Node, k int) []*node.Node { return nodetest.PickNodes(rng, from, k) }
	// The first broadcasts shape the tree; then each message crosses each node once.
	m.BroadcastAll(pick(m.nodes, 10), m.nodes)
	const measured = 90
	payloads := m.BroadcastAll(pick(m.nodes, measured), m.nodes)
	rmr := float64(payloads)/float64(measured*(len(m.nodes)-1)) - 1
	t.Logf("50 nodes: %d payload frames for %d broadcasts, RMR %.3f", payloads, measured, rmr)
	if rmr > 0.1 {
		t.Errorf("RMR %.3f once the tree formed, want <= 0.1", rmr)
	}
	m.NoDuplicates()

	// Ten nodes crash silently; the survivors notice through the link heartbeat, repair
	// their views, and the next broadcasts reach every survivor.
	crashed := map[string]bool{}
	for _, nd := range m.nodes[40:] {
		m.net.Crash(nd.ID())
		crashed[nd.ID()] = true
	}
	survivors := m.nodes[:40]
	nodetest.WaitFor(t, 60*time.Second, "survivors repaired their views", func() error {
		for _, nd := range survivors {
			for _, nb := range nd.Neighbors() {
				if crashed[nb.ID] {
					return fmt.Errorf("%s still has crashed %s as a neighbour", nd.ID(), nb.ID)
				}
			}
		}
		return m.OverlayOK(survivors)
	})
	m.BroadcastAll(pick(survivors, 10), survivors)
	m.NoDuplicates()
}

// TestHostilePeer: a peer that sends garbage is disconnected; the node keeps running.
func TestHostilePeer(t *testing.T) {
	m := newMesh(t, 3, 500*time.Millisecond)
	nodetest.WaitFor(t, 30*time.Second, "3 nodes connected", func() error { return m.OverlayOK(m.nodes) })
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
	nodetest.WaitFor(t, 15*time.Second, "bad frames counted", func() error {
		if s := target.Stats(); s.BadFrames < 4 {
			return fmt.Errorf("BadFrames %d", s.BadFrames)
		}
		return nil
	})
	// The node still works.
	m.BroadcastAll([]*node.Node{target}, m.nodes)
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
	nodetest.WaitFor(t, 60*time.Second, "overlay of 10 connected", func() error { return m.OverlayOK(m.nodes) })
	leaving := m.nodes[4]
	var neighbours []*node.Node
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
	if _, err := leaving.Broadcast(nil); err != node.ErrClosed {
		t.Errorf("Broadcast after Close: %v, want ErrClosed", err)
	}
	rest := slices.DeleteFunc(slices.Clone(m.nodes), func(nd *node.Node) bool { return nd == leaving })
	nodetest.WaitFor(t, 30*time.Second, "neighbours dropped the leaving node", func() error {
		for _, nd := range neighbours {
			for _, nb := range nd.Neighbors() {
				if nb.ID == leaving.ID() {
					return fmt.Errorf("%s still lists %s", nd.ID(), leaving.ID())
				}
			}
		}
		return m.OverlayOK(rest)
	})
	m.BroadcastAll(rest[:2], rest)
}

func TestConfigErrors(t *testing.T) {
	net, err := memlink.NewNetwork(memlink.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	key := nodetest.Key(t, "a")
	tr, err := net.Transport(key.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for name, mutate := range map[string]func(*node.Config){
		"no transport":   func(c *node.Config) { c.Transport = nil },
		"no key":         func(c *node.Config) { c.Key = nil },
		"no tick":        func(c *node.Config) { c.TickInterval = 0 },
		"payload > wire": func(c *node.Config) { c.Gossip.MaxPayload = c.Limits.MaxPayload + 1 },
		"spans > wire":   func(c *node.Config) { c.Gossip.CatchUpSpans = c.Limits.MaxSpans + 1 },
		"refs > wire":    func(c *node.Config) { c.Gossip.CatchUpMaxRefs = c.Limits.MaxRefs + 1 },
		"bad membership": func(c *node.Config) { c.Membership.ActiveSize = 0 },
		"bad limits":     func(c *node.Config) { c.Limits.MaxFrameSize = 0 },
	} {
		c := nodetest.Config()
		c.Key, c.Transport = key, tr
		mutate(&c)
		if _, err := node.New(c); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
}

// TestAttackForgedBroadcastsScoredOut: a peer that sends broadcasts with bad signatures is
// scored below the threshold after three, its link is closed, and it cannot link again during
// its cooling period, while the mesh keeps working.
func TestAttackForgedBroadcastsScoredOut(t *testing.T) {
	m := newMesh(t, 3, 500*time.Millisecond)
	nodetest.WaitFor(t, 30*time.Second, "3 nodes connected", func() error { return m.OverlayOK(m.nodes) })
	evil, err := m.net.Transport("evil")
	if err != nil {
		t.Fatal(err)
	}
	defer evil.Close()
	target := m.nodes[0]
	evil.Dial(target.ID())
	waitForLinkUp(t, evil, target.ID())
	for i := range 3 {
		var id gossip.MessageID
		id[0], id[1] = 0xba, byte(i+1)
		frame, err := wire.AppendGossip(nil, gossip.Message{Type: gossip.Gossip, ID: id, Origin: m.nodes[1].ID(), Hops: 1,
			Seq: uint64(1000 + i), Time: time.Now().UnixMilli(), Payload: []byte("forged"), Proof: make([]byte, 96)})
		if err != nil {
			t.Fatal(err)
		}
		if err := evil.Send(target.ID(), frame); err != nil {
			t.Fatalf("sending a forgery: %v", err)
		}
	}
	waitForLinkDown(t, evil, target.ID())
	// It comes back: the link is refused at once.
	evil.Dial(target.ID())
	waitForLinkDown(t, evil, target.ID())
	nodetest.WaitFor(t, 10*time.Second, "refusals counted", func() error {
		s := target.Stats()
		if s.Gossip.RefusedSignature != 3 || s.Scoring.Disconnects != 1 || s.Scoring.Refused != 1 || s.RefusedLinks < 2 {
			return fmt.Errorf("refused signatures %d, scoring %+v, refused links %d", s.Gossip.RefusedSignature, s.Scoring, s.RefusedLinks)
		}
		return nil
	})
	m.BroadcastAll(m.nodes, m.nodes)
}
