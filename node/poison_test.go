package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/link/memlink"
	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
	"github.com/rtcmesh/rtcmesh/wire"
)

// TestPoisonByUnsolicitedShuffleReply: a peer that answers shuffles the node never started,
// with made-up IDs, is refused; the node tells the peer-scoring hook, counts it, keeps its
// passive view clean, and counts no bad frame (the frames are well formed).
func TestPoisonByUnsolicitedShuffleReply(t *testing.T) {
	net, err := memlink.NewNetwork(memlink.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	key := nodetest.Key(t, "victim")
	tr, err := net.Transport(key.ID())
	if err != nil {
		t.Fatal(err)
	}
	reports := make(chan membership.Misbehaviour, 64)
	cfg := nodetest.Config()
	cfg.Key, cfg.Transport, cfg.Seed = key, tr, 1
	cfg.OnMembershipMisbehaviour = func(m membership.Misbehaviour) {
		select {
		case reports <- m:
		default:
		}
	}
	victim, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	evil, err := net.Transport("evil")
	if err != nil {
		t.Fatal(err)
	}
	defer evil.Close()
	evil.Dial(victim.ID())
	waitForLinkUp(t, evil, victim.ID())
	const replies = 5
	for i := range replies {
		fakes := make([]string, 30)
		for k := range fakes {
			fakes[k] = fmt.Sprintf("fake-%d-%d", i, k)
		}
		frame, err := wire.AppendMembership(nil, membership.Message{Type: membership.ShuffleReply, Nodes: fakes})
		if err != nil {
			t.Fatal(err)
		}
		// The victim closes a link that never carried a neighbour once a SHUFFLE_REPLY came
		// over it (the frame such links are opened for), so each reply may need a new link.
		if err := evil.Send(victim.ID(), frame); err != nil {
			evil.Dial(victim.ID())
			waitForLinkUp(t, evil, victim.ID())
			if err := evil.Send(victim.ID(), frame); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range replies {
		select {
		case m := <-reports:
			if m.Peer != "evil" || m.Reason != membership.RefusedUnsolicitedReply {
				t.Errorf("reported %+v", m)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("refusal not reported to OnMembershipMisbehaviour")
		}
	}
	if got := victim.Stats().Membership.Refused[membership.RefusedUnsolicitedReply]; got != replies {
		t.Errorf("%d refusals counted, want %d", got, replies)
	}
	if p := victim.PassiveView(); len(p) != 0 {
		t.Errorf("passive view poisoned: %v", p)
	}
	if s := victim.Stats(); s.BadFrames != 0 {
		t.Errorf("well-formed frames counted as bad: %d", s.BadFrames)
	}
}
