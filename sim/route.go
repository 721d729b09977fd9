package sim

import (
	"slices"

	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/routing"
)

// Routing through the overlay in the simulator (package routing, composed by overlay).
//
// The simulator has no links, so it counts the link setups a real node would make: a JOIN,
// a NEIGHBOR or a SHUFFLE_REPLY sent by an honest node to a peer outside its active view
// (every other message goes to a neighbour, or answers on the link its request opened),
// except a SHUFFLE_REPLY that the overlay can route (Config.RouteShuffleReplies): the runtime
// sends that one through the overlay and opens no link. For
// each it follows the setup's first signal (the offer) through the overlay at the moment of
// the send, hop by hop through each relay's own routing decision (overlay.Peer.RelayStep:
// hop limit, per-source rate, stale routes, waypoints), and through live, connected nodes
// only. If the offer reaches the target, the setup needed no server: the answer and
// candidates retrace the path the offer just taught the relays. Otherwise the real node's
// offer is dropped somewhere, or never leaves, and it falls back to the signaling server:
// Counters.ServerSignals. The signal arrives at once rather than a few link latencies later;
// that changes no protocol decision, since the setup's message itself is still sent as an
// event with its latency.
//
// Neighbours' VIEWs travel as events (evView) like any message; their Nodes ride in the
// event's membership message, so the event stays the size it was.

// countSetup counts a link setup for env, sent by node i, and whether it needed the server.
// It reports false when the message cannot be sent: it needed the server and the server is
// gone (SetServerGone); the sender then learns that the link failed, as from a dial that
// found no way to signal.
func (s *Sim) countSetup(i int32, env *membership.Envelope) bool {
	n := &s.nodes[i]
	if n.hostile != nil {
		return true
	}
	switch env.Msg.Type {
	case membership.Join, membership.Neighbor, membership.ShuffleReply:
	default:
		return true
	}
	if slices.Contains(n.p.ActiveView(), env.To) {
		return true
	}
	routed := s.routeSignal(i, env.To)
	if routed && env.Msg.Type == membership.ShuffleReply && s.cfg.RouteShuffleReplies {
		// The reply itself goes through the overlay; it arrives at its latency as an event,
		// like every message (not after the hops' latencies: no protocol decision waits on it).
		s.cnt.ShuffleRepliesRouted++
		return true
	}
	s.cnt.LinkSetups++
	if routed {
		return true
	}
	s.cnt.ServerSignals++
	if !s.serverGone {
		return true
	}
	if j, ok := s.lookup(env.To); ok {
		s.q.push(event{at: s.q.now + ms(s.cfg.DetectionDelay), kind: evPeerDown, to: i, from: j})
	}
	return false
}

// SetServerGone makes the signaling server disappear (gone true) or come back: without it, a
// link setup whose offer finds no route through the overlay fails, and NeedContacts goes
// unanswered, so the overlay repairs itself through routed signals alone.
func (s *Sim) SetServerGone(gone bool) { s.serverGone = gone }

// routeSignal follows a signal from node i to target through the overlay and reports whether
// it arrived.
func (s *Sim) routeSignal(i int32, target string) bool {
	now := s.nowD()
	m := routing.Message{Source: s.nodes[i].id, Target: target, Kind: routing.KindSignal}
	cur, from := i, ""
	// The hop limit ends every walk; the bound below only guards against a router bug.
	for range 256 {
		next, deliver, ok := s.nodes[cur].p.RelayStep(now, from, &m)
		if deliver {
			return true
		}
		if !ok {
			return false
		}
		j, found := s.lookup(next)
		if !found || !s.nodes[j].alive || s.separated(cur, j) {
			return false
		}
		from, cur = s.nodes[cur].id, j
	}
	return false
}

// sendRouting sends node i's routing messages: the VIEWs. The simulator queues no ROUTED
// envelope (it follows signals with routeSignal), so a ROUTED here would be a bug of the
// composition: counted as a step error so that tests catch it.
func (s *Sim) sendRouting(i int32, msgs []routing.Envelope) {
	for _, env := range msgs {
		if env.Msg.Type != routing.View {
			s.cnt.StepErrors++
			continue
		}
		s.send(i, env.To, event{kind: evView, mm: membership.Message{Nodes: env.Msg.Nodes}})
	}
}

// ServerSignalFraction is the fraction, between two snapshots of the counters, of the
// exchanges with peers outside the active view that needed the signaling server: of the link
// setups plus the SHUFFLE_REPLYs routed instead of opening a link (without routing, each of
// those would have been a link setup through the server). 0 without any.
func ServerSignalFraction(before, after Counters) float64 {
	exchanges := after.LinkSetups - before.LinkSetups + after.ShuffleRepliesRouted - before.ShuffleRepliesRouted
	if exchanges == 0 {
		return 0
	}
	return float64(after.ServerSignals-before.ServerSignals) / float64(exchanges)
}
