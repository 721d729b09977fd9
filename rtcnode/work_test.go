//go:build !js

package rtcnode

import (
	"fmt"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

// testPowBits: a fresh key fails it (by chance 1 in 4,096); the search takes milliseconds.
const testPowBits = 12

func neighborIDs(w *Node) map[string]bool {
	out := map[string]bool{}
	for _, nb := range w.Neighbors() {
		out[nb.ID] = true
	}
	return out
}

// A Sybil that skipped the work joins the signaling server (which asks for none) and is
// handed the honest nodes as contacts, but they require work on their links
// (Link.PowBits, `rtcmesh node --pow-bits`): every link it tries is refused, and it stays
// outside the mesh while the honest nodes, which did the work once at start, link up.
func TestSybilWithoutWorkIsRefusedByNodes(t *testing.T) {
	sig := startSignaling(t, "")
	t.Cleanup(sig.stop)
	var keys []identity.Signer
	strict := func(c *Config) { c.Link.PowBits = testPowBits; keys = append(keys, c.Key) }
	a := startWebRTCNode(t, sig.url(), 1, 0, strict)
	t.Cleanup(func() { a.Close() })
	b := startWebRTCNode(t, sig.url(), 2, 0, strict)
	t.Cleanup(func() { b.Close() })
	for _, k := range keys {
		if err := identity.CheckWork(k.PublicKey(), identity.WorkOf(k), testPowBits); err != nil {
			t.Fatalf("an honest node started without its work: %v", err)
		}
	}
	nodetest.WaitFor(t, 30*time.Second, "the honest nodes linked", func() error {
		if !neighborIDs(a)[b.ID()] || !neighborIDs(b)[a.ID()] {
			return fmt.Errorf("a has %v, b has %v", neighborIDs(a), neighborIDs(b))
		}
		return nil
	})

	var sybilKey identity.Signer
	sybil := startWebRTCNode(t, sig.url(), 3, 0, func(c *Config) { sybilKey = c.Key }) // a fresh key, no work
	t.Cleanup(func() { sybil.Close() })
	if identity.WorkOf(sybilKey) != nil {
		t.Fatal("the Sybil has work")
	}
	nodetest.WaitFor(t, 30*time.Second, "the Sybil's links refused", func() error {
		if n := a.transport.Stats().WorkRefused + b.transport.Stats().WorkRefused; n < 2 {
			return fmt.Errorf("%d refusals", n)
		}
		return nil
	})
	if nb := neighborIDs(sybil); len(nb) != 0 {
		t.Fatalf("the Sybil has neighbours %v", nb)
	}
	for _, w := range []*Node{a, b} {
		if neighborIDs(w)[sybil.ID()] {
			t.Fatalf("%s took the Sybil as a neighbour", w.ID())
		}
		if st := w.transport.Stats(); st.ProofsRefused != 0 {
			t.Fatalf("stats %+v: a proof was refused for another reason than work", st)
		}
	}
	// The honest link carries on: a broadcast of a reaches b, never the Sybil.
	if _, err := a.Broadcast([]byte("honest")); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, 10*time.Second, "b delivers", func() error {
		if b.Stats().Gossip.Delivered == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if d := sybil.Stats().Gossip.Delivered; d != 0 {
		t.Fatalf("the Sybil delivered %d broadcasts", d)
	}
}

// A signaling server that requires work (`rtcmesh signal --pow-bits`): a node configured with
// no difficulty of its own does the work the challenge asks, is welcomed, and from then on
// requires the same of its link peers.
func TestNodeDoesTheWorkItsServerAsks(t *testing.T) {
	sig := startSignaling(t, "", func(c *signalserver.Config) { c.PowBits = testPowBits })
	t.Cleanup(sig.stop)
	keys := map[*Node]identity.Signer{}
	var last identity.Signer
	keep := func(c *Config) { last = c.Key }
	a := startWebRTCNode(t, sig.url(), 1, 0, keep)
	t.Cleanup(func() { a.Close() })
	keys[a] = last
	b := startWebRTCNode(t, sig.url(), 2, 0, keep)
	t.Cleanup(func() { b.Close() })
	keys[b] = last
	nodetest.WaitFor(t, 30*time.Second, "both welcomed and linked", func() error {
		if !neighborIDs(a)[b.ID()] || !neighborIDs(b)[a.ID()] {
			return fmt.Errorf("a has %v, b has %v", neighborIDs(a), neighborIDs(b))
		}
		return nil
	})
	for _, w := range []*Node{a, b} {
		if err := identity.CheckWork(keys[w].PublicKey(), identity.WorkOf(keys[w]), testPowBits); err != nil {
			t.Fatalf("welcomed without the work: %v", err)
		}
		if got := w.transport.Stats().PowBits; got != testPowBits {
			t.Fatalf("links require %d bits after the welcome, want the server's %d", got, testPowBits)
		}
	}
	if st := sig.srv.Stats(); st.Rejections["insufficient_work"] != 0 {
		t.Fatalf("server stats %+v: an honest node was refused", st)
	}
}
