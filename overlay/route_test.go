package overlay

import (
	"errors"
	"testing"

	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/routing"
)

// In a settled overlay, every peer routes to its neighbours' neighbours and to most of its
// passive view (walks' reverse paths and shuffle hints), and nearly every envelope routed
// through the relays' own tables arrives, with the body and source it left with.
func TestRouteThroughOverlay(t *testing.T) {
	n := newTestNet(t, 21)
	n.build(40)
	sent, known, passive := 0, 0, 0
	for _, name := range n.live() {
		p := n.peers[name]
		for _, target := range p.PassiveView() {
			passive++
			if !p.RouteKnown(n.now, target) {
				if err := p.Route(n.now, routing.Message{Source: name, Target: target, Kind: routing.KindSignal}); !errors.Is(err, routing.ErrNoRoute) {
					t.Fatalf("%s: Route to unknown %s: %v, want ErrNoRoute", name, target, err)
				}
				continue
			}
			known++
			m := routing.Message{Source: name, Target: target, Kind: routing.KindDirect, Body: []byte(name + ">" + target)}
			if err := p.Route(n.now, m); err != nil {
				t.Fatalf("%s: Route to %s: %v", name, target, err)
			}
			sent++
			n.drain(name)
		}
	}
	n.deliver()
	delivered := 0
	for _, name := range n.live() {
		for _, m := range n.routed[name] {
			if m.Target != name || string(m.Body) != m.Source+">"+name {
				t.Fatalf("%s got an envelope %+v that is not its own or was altered", name, m)
			}
			delivered++
		}
	}
	var drops [routing.DropLoop + 1]uint64
	for _, name := range n.live() {
		for i, d := range n.peers[name].RoutingStats().Dropped {
			drops[i] += d
		}
	}
	t.Logf("passive entries %d, routes known %d, sent %d, delivered %d, dropped by reason %v", passive, known, sent, delivered, drops)
	if known*2 < passive {
		t.Errorf("routes known to %d of %d passive entries, want at least half", known, passive)
	}
	// Routes are learnt at different times by different nodes, so a few envelopes meet a
	// relay whose entry went stale (no route) or loop until their hop limit: the runtime's
	// server fallback covers those. Nearly all must arrive.
	if delivered*100 < sent*98 {
		t.Errorf("%d of %d routed envelopes delivered, want at least 98%%", delivered, sent)
	}
	// Two hops: every neighbour's neighbour is known, through the VIEWs.
	for _, name := range n.live() {
		p := n.peers[name]
		for _, a := range p.ActiveView() {
			for _, b := range n.peers[a].ActiveView() {
				if b != name && !p.RouteKnown(n.now, b) {
					t.Fatalf("%s does not know its neighbour %s's neighbour %s", name, a, b)
				}
			}
		}
	}
}

// A SHUFFLE walk teaches every node it passes the way back to its origin.
func TestShuffleWalkTeachesReversePath(t *testing.T) {
	n := newTestNet(t, 22)
	n.build(20)
	before := 0
	for _, name := range n.live() {
		before += n.peers[name].RoutingStats().Entries
	}
	if before == 0 {
		t.Fatal("no reverse paths learnt in 10 rounds of shuffles")
	}
	// Drive one walk by hand from p00 through its neighbour.
	origin := n.peers[peerName(0)]
	next := origin.ActiveView()[0]
	p := n.peers[next]
	walker := "zz-walker" // not a peer of the net: only the route matters
	if err := p.StepMembership(n.now, peerName(0), membership.Message{Type: membership.Shuffle, Node: walker, TTL: 2, Nodes: []string{walker}}); err != nil {
		t.Fatal(err)
	}
	if !p.RouteKnown(n.now, walker) {
		t.Fatalf("%s did not learn the walk's origin through %s", next, peerName(0))
	}
}

// Routing off: nothing learnt, nothing sent, Route says no route.
func TestRoutingDisabled(t *testing.T) {
	n := newTestNet(t, 23)
	n.cfg.Routing = routing.Config{}
	n.build(10)
	p := n.peers[peerName(0)]
	if p.RoutingStats().Entries != 0 || p.RouteKnown(n.now, p.ActiveView()[0]) {
		t.Fatal("a disabled router learnt routes")
	}
	if err := p.Route(n.now, routing.Message{Source: peerName(0), Target: peerName(1), Kind: routing.KindSignal}); !errors.Is(err, routing.ErrNoRoute) {
		t.Fatalf("Route with routing off: %v", err)
	}
}
