package overlay

import (
	"fmt"
	"slices"
	"time"

	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/routing"
)

// Routing through the overlay (package routing): the composition feeds the router what the
// membership core already sees, so membership itself records nothing.
//   - Its NeighborUp and NeighborDown events (in Ready, like gossip's).
//   - Every membership walk that passes: a FORWARD_JOIN about joiner X from neighbour Y
//     teaches "X through Y, ARWL-TTL+2 hops" (the walk started at X's contact, one hop from
//     X); a SHUFFLE from origin O teaches "O through Y, ShuffleTTL-TTL+1 hops". Every node on
//     the walk learns it, so the walk's reply retraces it.
//   - Hints for the passive entries a shuffle brings: where a shuffle walk ends here, each
//     entry of its sample is known by its origin; each entry of a SHUFFLE_REPLY is known by
//     the replier. A relay of the walk records no hint: those entries never reach its
//     passive view.

// newRouter creates the router for cfg (disabled when cfg.Routing.Enabled is false).
func newRouter(cfg *Config) (*routing.Router, error) {
	rt, err := routing.New(cfg.Self, cfg.Routing)
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	return rt, nil
}

// learnWalk records what a membership message accepted from neighbour from teaches about
// routes. It runs after the membership core stepped the message.
func (p *Peer) learnWalk(now time.Duration, from string, m *membership.Message) {
	if !p.rt.Enabled() {
		return
	}
	switch m.Type {
	case membership.ForwardJoin:
		if arwl := p.arwl; m.TTL <= arwl {
			p.rt.Learn(now, m.Node, from, arwl-m.TTL+2)
		}
	case membership.Shuffle:
		if ttl := p.shuffleTTL; m.TTL <= ttl {
			p.rt.Learn(now, m.Node, from, ttl-m.TTL+1)
		}
		if p.shuffleEndsHere(from, m) {
			for _, x := range m.Nodes {
				p.rt.Hint(now, x, m.Node)
			}
		}
	case membership.ShuffleReply:
		for _, x := range m.Nodes {
			p.rt.Hint(now, x, from)
		}
	}
}

// shuffleEndsHere says whether the membership core ended the walk m here (and merged its
// sample): the core's own rule, no hops left or no neighbour to pass it to but the sender and
// the origin.
func (p *Peer) shuffleEndsHere(from string, m *membership.Message) bool {
	if m.TTL == 0 {
		return true
	}
	for _, a := range p.mem.ActiveView() {
		if a != from && a != m.Node {
			return false
		}
	}
	return true
}

// routingEvents gives membership's NeighborUp and NeighborDown events to the router.
func (p *Peer) routingEvents(events []membership.Event) {
	if !p.rt.Enabled() {
		return
	}
	for _, e := range events {
		switch e.Type {
		case membership.NeighborUp:
			p.rt.NeighborUp(e.Peer)
		case membership.NeighborDown:
			p.rt.NeighborDown(e.Peer)
		}
	}
}

// collectRouting moves the router's output into rd, dropping what would go to a refused
// peer.
func (p *Peer) collectRouting(rd *Ready) {
	if !p.rt.HasReady() {
		return
	}
	out := p.rt.Ready()
	rd.Routed = out.Deliveries
	rd.Routing = slices.DeleteFunc(out.Messages, func(env routing.Envelope) bool {
		if p.Refused(p.now, env.To) {
			p.dropped++
			return true
		}
		return false
	})
}

// StepRouting hands the router a routing message (a neighbour's VIEW, or a ROUTED envelope to
// deliver or relay) that arrived from peer from. A malformed message returns its error
// (wrapping routing.ErrInvalidMessage); the runtime closes that peer's link.
func (p *Peer) StepRouting(now time.Duration, from string, m routing.Message) error {
	p.setNow(now)
	if p.Refused(now, from) {
		p.ignored++
		return nil
	}
	return p.rt.Step(now, from, m)
}

// Route sends an envelope of this node's through the overlay: m.Source must be Self; m's
// Proof must already be the source's signature (see package routing). It returns
// routing.ErrNoRoute when no route is known (the runtime then uses the signaling server);
// the envelope otherwise leaves in Ready.Routing.
func (p *Peer) Route(now time.Duration, m routing.Message) error {
	p.setNow(now)
	return p.rt.Send(now, m)
}

// NextHop returns the neighbour an envelope of this node's for target would go to now.
func (p *Peer) NextHop(now time.Duration, target string) (string, bool) {
	return p.rt.NextHop(now, target)
}

// RouteKnown reports whether an envelope for target would leave this node now.
func (p *Peer) RouteKnown(now time.Duration, target string) bool {
	return p.rt.Known(now, target)
}

// RelayStep is the routing decision for a ROUTED envelope at this node, arrived from
// neighbour from ("" when this node is its source), without queueing it (see
// routing.Router.RelayStep): what the simulator calls hop by hop to follow a link's signals
// through the relays' own tables. An envelope arriving from a neighbour also teaches the
// reverse path to its source, as Step does.
func (p *Peer) RelayStep(now time.Duration, from string, m *routing.Message) (next string, deliver bool, ok bool) {
	p.setNow(now)
	if from != "" {
		if hops := p.rt.MaxHops(); m.HopLimit < hops {
			p.rt.Learn(now, m.Source, from, hops-m.HopLimit)
		}
	} else {
		m.Type, m.HopLimit, m.Via, m.Waypoints = routing.Routed, p.rt.MaxHops(), "", 0
	}
	next, deliver, _, ok = p.rt.RelayStep(now, from, m)
	return next, deliver, ok
}

// RoutingStats returns the router's counters.
func (p *Peer) RoutingStats() routing.Stats { return p.rt.Stats() }
