package node_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/link"
	"github.com/rtcmesh/rtcmesh/link/memlink"
	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
	"github.com/rtcmesh/rtcmesh/wire"
)

// skewedClock is real time plus an offset the test moves forward, so the node's link timers
// expire when the test says, not when the machine gets round to it.
type skewedClock struct{ offset atomic.Int64 }

func (c *skewedClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *skewedClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// nodeAndProbe starts node "a" (nodetest.Config with mod applied) on an in-memory network
// beside a bare Transport, "probe", that the test drives by hand as a peer of a's.
func nodeAndProbe(t *testing.T, mod func(*node.Config)) (a *node.Node, cfg node.Config, probe link.Transport) {
	t.Helper()
	net, err := memlink.NewNetwork(memlink.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { net.Close() })
	probe, err = net.Transport("probe")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { probe.Close() })
	key := nodetest.Key(t, "a")
	tr, err := net.Transport(key.ID())
	if err != nil {
		t.Fatal(err)
	}
	cfg = nodetest.Config()
	cfg.Key, cfg.Transport = key, tr
	mod(&cfg)
	a, err = node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, cfg, probe
}

// TestTransientLinkCloses: a link that never carried a neighbour (here a JOIN to a peer that
// never answers, as a SHUFFLE_REPLY's link is never answered) is closed once it has been
// quiet for TransientLinkTimeout, not kept for IdleLinkTimeout.
func TestTransientLinkCloses(t *testing.T) {
	clock := &skewedClock{}
	a, cfg, probe := nodeAndProbe(t, func(cfg *node.Config) {
		cfg.Now = clock.now
		cfg.TransientLinkTimeout, cfg.IdleLinkTimeout = time.Second, time.Hour
		// The join is not retried within the test: its only frame is the first JOIN.
		cfg.Membership.RejoinBackoff = time.Hour
	})
	key := cfg.Key
	if err := a.Join("probe"); err != nil {
		t.Fatal(err)
	}
	waitForLinkUp(t, probe, key.ID())
	waitForFrame(t, probe, key.ID())
	// Half the timeout later the link is still open: a few ticks see it quiet but not long.
	clock.advance(cfg.TransientLinkTimeout / 2)
	time.Sleep(5 * cfg.TickInterval)
	if s := a.Stats(); s.Links != 1 || s.TransientLinksClosed != 0 {
		t.Fatalf("after half the transient timeout: %d links, %d transient links closed; want 1, 0", s.Links, s.TransientLinksClosed)
	}
	peerDowns := a.Stats().Membership.PeerDowns
	clock.advance(cfg.TransientLinkTimeout)
	waitForLinkDown(t, probe, key.ID())
	nodetest.WaitFor(t, 5*time.Second, "the close counted", func() error {
		if s := a.Stats(); s.Links != 0 || s.TransientLinksClosed != 1 || s.LinksClosedIdle != 1 {
			return fmt.Errorf("%d links, %d transient links closed, %d idle links closed; want 0, 1, 1", s.Links, s.TransientLinksClosed, s.LinksClosedIdle)
		}
		return nil
	})
	// Closing a quiet link says nothing against the peer: the membership core is not told it
	// failed (which would drop it from the passive view).
	if got := a.Stats().Membership.PeerDowns; got != peerDowns {
		t.Errorf("the idle close reported %d peer failures to membership, want none", got-peerDowns)
	}
}

// TestNeighbourLinkKeepsIdleTimeout: a link that carried a neighbour is not closed by the
// transient timeout, whatever the clock says: neighbours' links are never closed for silence,
// and a former neighbour's waits for IdleLinkTimeout.
func TestNeighbourLinkKeepsIdleTimeout(t *testing.T) {
	net, err := memlink.NewNetwork(memlink.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	clock := &skewedClock{}
	var nodes []*node.Node
	for i, name := range []string{"a", "b"} {
		key := nodetest.Key(t, name)
		tr, err := net.Transport(key.ID())
		if err != nil {
			t.Fatal(err)
		}
		cfg := nodetest.Config()
		cfg.Key, cfg.Transport, cfg.Now, cfg.Seed = key, tr, clock.now, uint64(i+1)
		cfg.TransientLinkTimeout, cfg.IdleLinkTimeout = 100*time.Millisecond, time.Hour
		if i == 1 {
			cfg.Contacts = []string{nodes[0].ID()}
		}
		nd, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer nd.Close()
		nodes = append(nodes, nd)
	}
	nodetest.WaitFor(t, 10*time.Second, "a and b neighbours", func() error {
		if len(nodes[0].Neighbors()) != 1 || len(nodes[1].Neighbors()) != 1 {
			return fmt.Errorf("views %v, %v", nodes[0].Neighbors(), nodes[1].Neighbors())
		}
		return nil
	})
	clock.advance(time.Second) // ten transient timeouts
	time.Sleep(5 * nodetest.Config().TickInterval)
	for _, nd := range nodes {
		if s := nd.Stats(); s.Links != 1 || s.LinksClosedIdle != 0 {
			t.Errorf("%s: %d links, %d closed for silence; want 1, 0", nd.ID(), s.Links, s.LinksClosedIdle)
		}
	}
}

// waitForFrame waits for a frame from peer on tr.
func waitForFrame(t *testing.T, tr link.Transport, peer string) {
	t.Helper()
	waitForLinkEvent(t, tr, peer, link.Frame)
}

// TestShuffleReplyLinkClosesAtOnce: a link a peer opened only to bring a SHUFFLE_REPLY is
// closed once the reply came, without waiting for TransientLinkTimeout.
func TestShuffleReplyLinkClosesAtOnce(t *testing.T) {
	a, cfg, probe := nodeAndProbe(t, func(cfg *node.Config) {
		cfg.TransientLinkTimeout, cfg.IdleLinkTimeout = time.Hour, time.Hour
	})
	key := cfg.Key
	probe.Dial(key.ID())
	waitForLinkUp(t, probe, key.ID())
	reply, err := wire.AppendMembership(nil, membership.Message{Type: membership.ShuffleReply, Nodes: []string{"x", "y"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.Send(key.ID(), reply); err != nil {
		t.Fatal(err)
	}
	waitForLinkDown(t, probe, key.ID())
	nodetest.WaitFor(t, 5*time.Second, "the close counted", func() error {
		if s := a.Stats(); s.Links != 0 || s.TransientLinksClosed != 1 || s.BadFrames != 0 {
			return fmt.Errorf("%d links, %d transient links closed, %d bad frames; want 0, 1, 0", s.Links, s.TransientLinksClosed, s.BadFrames)
		}
		return nil
	})
	if got := a.Stats().Membership.MessagesReceived[membership.ShuffleReply]; got != 1 {
		t.Errorf("the membership core took %d SHUFFLE_REPLYs, want 1", got)
	}
}

// TestIdleCloseByPeerReasons: the reasons a peer's idle close arrives with, through memlink
// and rtclink alike, and the failures that must still reach membership.
func TestIdleCloseByPeerReasons(t *testing.T) {
	for reason, want := range map[string]bool{
		"closed by peer: closed: idle":                  true, // memlink and rtclink word it so
		"closed by peer: closed: transient link served": true,
		"closed by peer: idle":                          true,
		"closed: idle":                                  false, // this side's own close: the node knows it
		"closed by peer: closed: bye":                   false,
		"closed by peer":                                false,
		"heartbeat timeout":                             false,
		"dial timeout":                                  false,
	} {
		if got := node.IsIdleCloseByPeer(reason); got != want {
			t.Errorf("IsIdleCloseByPeer(%q) = %v, want %v", reason, got, want)
		}
	}
}
