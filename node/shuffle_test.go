package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
	"github.com/rtcmesh/rtcmesh/routing"
	"github.com/rtcmesh/rtcmesh/wire"
)

// shuffleCounts sums, over a mesh, the SHUFFLE_REPLYs sent through the overlay and over links
// opened for them, the transient links closed, and the smallest passive view.
func shuffleCounts(m *mesh) (routed, linked, transientClosed uint64, minPassive int) {
	minPassive = -1
	for _, nd := range m.nodes {
		s := nd.Stats()
		routed += s.ShuffleRepliesRouted
		linked += s.ShuffleRepliesLinked
		transientClosed += s.TransientLinksClosed
		if p := len(nd.PassiveView()); minPassive < 0 || p < minPassive {
			minPassive = p
		}
	}
	return routed, linked, transientClosed, minPassive
}

// SHUFFLE_REPLYs retrace their walk through the overlay (Config.RouteShuffleReplies) instead
// of each opening a link: side by side with the option off, the same mesh opens far fewer
// links for them, and passive views still fill.
func TestShuffleRepliesThroughOverlay(t *testing.T) {
	const nodes, replies = 20, 60
	run := func(route bool) (routed, linked, transientClosed uint64, minPassive int) {
		m := newMeshWith(t, nodes, 500*time.Millisecond, func(c *node.Config) { c.RouteShuffleReplies = route })
		nodetest.WaitFor(t, 60*time.Second, "overlay connected", func() error { return m.OverlayOK(m.nodes) })
		// Counted from here: joining opens links of its own (JOINs, refused NEIGHBORs).
		r0, l0, c0, _ := shuffleCounts(m)
		nodetest.WaitFor(t, 60*time.Second, fmt.Sprintf("%d shuffle replies to peers without a link", replies), func() error {
			if r, l, _, _ := shuffleCounts(m); r+l-r0-l0 < replies {
				return fmt.Errorf("%d routed, %d over new links", r-r0, l-l0)
			}
			return nil
		})
		routed, linked, transientClosed, minPassive = shuffleCounts(m)
		return routed - r0, linked - l0, transientClosed - c0, minPassive
	}
	onRouted, onLinked, onClosed, onPassive := run(true)
	offRouted, offLinked, offClosed, offPassive := run(false)
	t.Logf("routed: %d through the overlay, %d over new links, %d transient links closed, smallest passive view %d",
		onRouted, onLinked, onClosed, onPassive)
	t.Logf("off:    %d through the overlay, %d over new links, %d transient links closed, smallest passive view %d",
		offRouted, offLinked, offClosed, offPassive)
	if offRouted != 0 {
		t.Errorf("with RouteShuffleReplies off, %d replies went through the overlay", offRouted)
	}
	// The reply's walk taught every node on it the way back, so a route is almost always
	// known; one whose first hop just went down opens a link.
	if onRouted < 3*onLinked {
		t.Errorf("only %d of %d replies went through the overlay", onRouted, onRouted+onLinked)
	}
	// Links opened for replies, not all transient links: in a mesh this small, nodes short of
	// neighbours open many more to passive peers that refuse them, and those (logged above)
	// vary from run to run by more than the replies' share.
	if 3*onLinked >= offLinked {
		t.Errorf("links opened for replies: %d with replies routed, %d without; want under a third", onLinked, offLinked)
	}
	if onPassive < 1 {
		t.Errorf("a node's passive view is empty with replies routed")
	}
}

// A routed membership envelope may carry a SHUFFLE_REPLY only: any other membership message
// (here a high-priority NEIGHBOR, which would take a slot with no link behind it) or a body
// the wire format refuses is refused and counted, with a valid signature; the link of the
// relay that brought it stays open.
func TestRoutedMembershipRefused(t *testing.T) {
	m := newMesh(t, 3, 500*time.Millisecond)
	nodetest.WaitFor(t, 30*time.Second, "3 nodes connected", func() error { return m.OverlayOK(m.nodes) })
	target := m.nodes[0]
	ev := newRoutedSender(t, m, target)
	neighbor, err := wire.AppendMembership(nil, membership.Message{Type: membership.Neighbor, HighPriority: true})
	if err != nil {
		t.Fatal(err)
	}
	ev.send(ev.envelope(ev.key.ID(), ev.key, routing.KindMembership, neighbor))
	ev.send(ev.envelope(ev.key.ID(), ev.key, routing.KindMembership, []byte("not a frame")))
	nodetest.WaitFor(t, 10*time.Second, "two refusals counted", func() error {
		if s := target.Stats(); s.RoutedRefused != 2 {
			return fmt.Errorf("refused %d", s.RoutedRefused)
		}
		return nil
	})
	for _, nb := range target.Neighbors() {
		if nb.ID == ev.key.ID() {
			t.Fatalf("a routed NEIGHBOR made %s a neighbour", nb.ID)
		}
	}
	if s := target.Stats(); s.BadFrames != 0 {
		t.Errorf("%d frames refused as bad: the relay's link was blamed", s.BadFrames)
	}
}
