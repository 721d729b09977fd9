package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/routing"
	"github.com/rtcmesh/rtcmesh/wire"
)

// Direct messages and link signals through the overlay (package routing, composed by
// overlay): the node signs what it sends with its identity key and verifies what is
// addressed to it, as it does for broadcasts. Relays never check anything; they cannot
// alter a signed field or forge a source, only drop.

// ErrNoRoute is returned by Send and SendSignal when the node has no link to the peer and
// knows no route to it through the overlay.
var ErrNoRoute = routing.ErrNoRoute

// DirectMessage is a message another node sent to this one with Send.
type DirectMessage struct {
	// From is the sender's ID, proven by its signature.
	From string
	Data []byte
	// SentAt is the sender's signed clock; ReceivedAt when this node delivered it.
	SentAt, ReceivedAt time.Time
}

// RoutedSignal is a link signal (offer, answer or candidate, in the encoding of the layer
// above: rtcnode's) that another node sent to this one through the overlay.
type RoutedSignal struct {
	// From is the sender's ID, proven by its signature.
	From string
	Body []byte
}

// routedProofSize is a routed envelope's proof: the source's public key, then its signature.
const routedProofSize = identity.PublicKeySize + identity.SignatureSize

// RoutedTranscript is what the source of a routed envelope signs, under identity.LabelRouted:
// the network, the source, the target, the kind, the time and the body. The hop limit and the
// waypoint are left out: relays change them.
func RoutedTranscript(network string, m *routing.Message) []byte {
	var at [8]byte
	binary.BigEndian.PutUint64(at[:], uint64(m.Time))
	return identity.Transcript(identity.LabelRouted, []byte(network), []byte(m.Source), []byte(m.Target),
		[]byte{byte(m.Kind)}, at[:], m.Body)
}

// Send sends data to the node peerID, signed: over the link to it when one is open, otherwise
// through the overlay along a known route. The receiver gets it on DirectMessages with this
// node's proven ID. It returns ErrNoRoute when neither is known (nothing is sent), and an
// error for data over Config.Gossip.MaxPayload. Delivery is not acknowledged: a relay may
// drop a routed message (its route went stale, its source sent too many).
func (n *Node) Send(peerID string, data []byte) error {
	return n.sendRouted(peerID, routing.KindDirect, data)
}

// SendSignal sends a link signal to peerID through the overlay, signed, like Send; the layer
// above (rtcnode) uses it for the offers, answers and candidates of new links and falls back
// to the signaling server on ErrNoRoute.
func (n *Node) SendSignal(peerID string, body []byte) error {
	return n.sendRouted(peerID, routing.KindSignal, body)
}

// RouteKnown reports whether a message to peerID would leave now (an open link, or a route).
func (n *Node) RouteKnown(peerID string) bool {
	var ok bool
	_ = n.do(func() {
		l := n.links[peerID]
		ok = (l != nil && l.up) || n.routeUp(peerID)
	})
	return ok
}

// routeUp reports whether the overlay knows a route to peerID whose first hop's link is up:
// a neighbour whose link just died (or this node was paused) has not left the router yet,
// and an envelope to it would wait for a link that may never come.
func (n *Node) routeUp(peerID string) bool {
	next, ok := n.peer.NextHop(n.elapsed, peerID)
	if !ok {
		return false
	}
	l := n.links[next]
	return l != nil && l.up
}

// DirectMessages returns the channel of direct messages for this node. When the application
// does not read it, the oldest is dropped (Stats.DirectDropped). It is closed by Close.
func (n *Node) DirectMessages() <-chan DirectMessage { return n.direct }

// Signals returns the channel of link signals routed to this node, for the layer that owns
// the links (rtcnode). Same policy as DirectMessages (Stats.SignalsDropped).
func (n *Node) Signals() <-chan RoutedSignal { return n.signals }

func (n *Node) sendRouted(peerID string, kind routing.Kind, body []byte) error {
	if len(body) > n.cfg.Gossip.MaxPayload {
		return fmt.Errorf("node: message of %d bytes exceeds Gossip.MaxPayload %d", len(body), n.cfg.Gossip.MaxPayload)
	}
	if peerID == n.ID() {
		return errors.New("node: a message to this node itself")
	}
	var err error
	if e := n.do(func() { err = n.routeOwn(peerID, kind, body) }); e != nil {
		return e
	}
	return err
}

// routeOwn signs and sends one envelope of this node's; on the node's goroutine.
func (n *Node) routeOwn(peerID string, kind routing.Kind, body []byte) error {
	m := routing.Message{Type: routing.Routed, Source: n.ID(), Target: peerID, Kind: kind,
		Time: time.Duration(n.elapsed).Milliseconds(), Body: body, HopLimit: n.cfg.Routing.MaxHops}
	sig, err := n.cfg.Key.Sign(RoutedTranscript(n.cfg.Network, &m))
	if err != nil {
		return fmt.Errorf("node: sign routed message: %w", err)
	}
	m.Proof = append(append(make([]byte, 0, routedProofSize), n.cfg.Key.PublicKey()...), sig...)
	if l := n.links[peerID]; l != nil && l.up {
		frame, err := wire.AppendRouting(n.buf[:0], m)
		if err != nil {
			return fmt.Errorf("node: encode routed message: %w", err)
		}
		n.buf = frame
		n.stats.RoutedSent++
		n.send(peerID, frame)
		return nil
	}
	if !n.routeUp(peerID) {
		return ErrNoRoute
	}
	if err := n.peer.Route(n.elapsed, m); err != nil {
		return err
	}
	n.stats.RoutedSent++
	return nil
}

// onRouted verifies an envelope addressed to this node and hands it up: a direct message
// to DirectMessages, a signal to Signals. A bad proof, a time outside
// Config.Gossip.MaxClockSkew or a replay is refused and counted.
func (n *Node) onRouted(m routing.Message) {
	if err := n.verifyRouted(&m); err != nil {
		n.stats.RoutedRefused++
		n.cfg.Logger.Debug().Err(err).Str("source", m.Source).Msg("refused a routed message")
		return
	}
	n.stats.RoutedReceived++
	switch m.Kind {
	case routing.KindDirect:
		dm := DirectMessage{From: m.Source, Data: m.Body, SentAt: time.UnixMilli(m.Time), ReceivedAt: n.now()}
		for {
			select {
			case n.direct <- dm:
				return
			default:
			}
			select {
			case <-n.direct:
				n.stats.DirectDropped++
			default:
			}
		}
	case routing.KindSignal:
		select {
		case n.signals <- RoutedSignal{From: m.Source, Body: m.Body}:
		default:
			// A signal is worth nothing late: the link attempt times out and is retried.
			n.stats.SignalsDropped++
		}
	case routing.KindMembership:
		n.onRoutedMembership(m.Source, m.Body)
	}
}

// routeMembership sends a membership frame of this node's through the overlay when that
// replaces opening a link: a SHUFFLE_REPLY (Config.RouteShuffleReplies) to a peer with no
// open link and a known route. It reports whether it did; otherwise the caller sends frame
// over a link, opening one if needed. frame aliases n.buf and is copied.
func (n *Node) routeMembership(to string, t membership.MessageType, frame []byte) bool {
	if t != membership.ShuffleReply {
		return false
	}
	if l := n.links[to]; l != nil && l.up {
		return false
	}
	if !n.cfg.RouteShuffleReplies || !n.routeUp(to) {
		n.stats.ShuffleRepliesLinked++
		return false
	}
	if err := n.routeOwn(to, routing.KindMembership, append([]byte(nil), frame...)); err != nil {
		n.cfg.Logger.Debug().Err(err).Str("peer", to).Msg("shuffle reply through the overlay: opening a link instead")
		n.stats.ShuffleRepliesLinked++
		return false
	}
	n.stats.ShuffleRepliesRouted++
	return true
}

// onRoutedMembership steps a membership frame that source (proven by the envelope's
// signature) sent through the overlay. Only a SHUFFLE_REPLY may come this way: every other
// membership message belongs to a link (a NEIGHBOR or JOIN makes one a neighbour's, the rest
// go to neighbours), so anything else, or a frame the wire format refuses, is refused and
// counted. No link is closed for it: the relay that brought it only passed it on.
func (n *Node) onRoutedMembership(source string, body []byte) {
	f, err := n.cfg.Limits.Decode(body)
	switch {
	case err != nil:
	case f.Protocol != wire.ProtocolMembership || f.Membership.Type != membership.ShuffleReply:
		err = fmt.Errorf("node: a routed membership envelope may carry a SHUFFLE_REPLY only, not protocol %d type %v",
			f.Protocol, f.Membership.Type)
	default:
		err = n.peer.StepMembership(n.elapsed, source, f.Membership)
	}
	if err != nil {
		n.stats.RoutedRefused++
		n.cfg.Logger.Debug().Err(err).Str("source", source).Msg("refused a routed membership message")
	}
}

func (n *Node) verifyRouted(m *routing.Message) error {
	if len(m.Proof) != routedProofSize {
		return fmt.Errorf("node: routed proof is %d bytes, want %d", len(m.Proof), routedProofSize)
	}
	skew := n.cfg.Gossip.MaxClockSkew
	at := time.Duration(m.Time) * time.Millisecond
	if d := at - n.elapsed; d > skew || -d > skew {
		return fmt.Errorf("node: routed message time is %v from this node's clock, more than Gossip.MaxClockSkew %v", d, skew)
	}
	pub, sig := m.Proof[:identity.PublicKeySize], m.Proof[identity.PublicKeySize:]
	if err := identity.Verify(m.Source, pub, RoutedTranscript(n.cfg.Network, m), sig); err != nil {
		return fmt.Errorf("node: routed message: %w", err)
	}
	// Ed25519 signs deterministically, so a replay carries the very same signature.
	key := string(sig)
	if _, seen := n.routedSeen[key]; seen {
		return errors.New("node: routed message replayed")
	}
	n.expireRoutedSeen()
	if len(n.routedOrder) >= n.cfg.MaxRoutedSeen {
		delete(n.routedSeen, n.routedOrder[0].key)
		n.routedOrder = n.routedOrder[1:]
	}
	n.routedSeen[key] = struct{}{}
	n.routedOrder = append(n.routedOrder, seenRouted{key: key, at: n.elapsed})
	return nil
}

// seenRouted is one accepted envelope's signature, remembered until no clock check would
// accept it again (twice MaxClockSkew), to refuse replays.
type seenRouted struct {
	key string
	at  time.Duration
}

func (n *Node) expireRoutedSeen() {
	k := 0
	for k < len(n.routedOrder) && n.elapsed-n.routedOrder[k].at > 2*n.cfg.Gossip.MaxClockSkew {
		delete(n.routedSeen, n.routedOrder[k].key)
		k++
	}
	if k > 0 {
		n.routedOrder = append(n.routedOrder[:0], n.routedOrder[k:]...)
	}
}
