package rtcnode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/link/rtclink"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalclient"
)

// HandleServerSignal hands tr the offer, answer or candidate the signaling server relayed in
// msg (with the sender the server stamped), and reports whether msg was one of them: the one
// place a signaling client's events reach a Transport's HandleSignal.
func HandleServerSignal(tr *rtclink.Transport, msg signaling.Message) bool {
	switch m := msg.(type) {
	case *signaling.Offer:
		tr.HandleSignal(m.From, rtclink.Signal{Type: rtclink.SignalOffer, SDP: m.SDP})
	case *signaling.Answer:
		tr.HandleSignal(m.From, rtclink.Signal{Type: rtclink.SignalAnswer, SDP: m.SDP})
	case *signaling.Candidate:
		tr.HandleSignal(m.From, rtclink.Signal{Type: rtclink.SignalCandidate, Candidate: m.Candidate})
	default:
		return false
	}
	return true
}

// routedSignal is a link signal as it travels through the overlay, in the body of a signed
// routed envelope (node.SendSignal).
type routedSignal struct {
	Type      string `json:"type"`
	SDP       string `json:"sdp,omitempty"`
	Candidate string `json:"candidate,omitempty"`
}

// decodeRoutedSignal parses a routed signal's body strictly: one JSON object of the known
// fields and a known type. Its size is bounded by the wire format's MaxPayload.
func decodeRoutedSignal(body []byte) (rtclink.Signal, error) {
	var rs routedSignal
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rs); err != nil {
		return rtclink.Signal{}, fmt.Errorf("rtcnode: routed signal: %w", err)
	}
	if dec.More() {
		return rtclink.Signal{}, errors.New("rtcnode: routed signal: trailing data")
	}
	switch rs.Type {
	case rtclink.SignalOffer, rtclink.SignalAnswer, rtclink.SignalCandidate:
	default:
		return rtclink.Signal{}, fmt.Errorf("rtcnode: routed signal of unknown type %q", rs.Type)
	}
	return rtclink.Signal{Type: rs.Type, SDP: rs.SDP, Candidate: rs.Candidate}, nil
}

// maxSignalPeers bounds the peers whose channel (overlay or server) the signaler remembers.
const maxSignalPeers = 1024

// overlayRetryWindow: a new offer to a peer within this long of one sent through the overlay
// is a retry (the first attempt's signals were dropped by a relay, or its link failed), and
// goes through the server while it is connected: a relay's silent drop costs one attempt,
// not every one.
const overlayRetryWindow = 30 * time.Second

// signaler sends a Transport's signals through the overlay when the node knows a route to the
// peer (node.SendSignal: signed end to end, relayed by neighbours), and through the signaling
// server otherwise: the server is a fallback once the node has neighbours. An offer or answer
// picks the channel; the candidates that follow it take the same one, so that they do not
// overtake it on the other.
type signaler struct {
	c    *signalclient.Client
	node atomic.Pointer[node.Node]
	log  zerolog.Logger

	mu      sync.Mutex
	overlay map[string]bool // per peer: its last offer or answer went through the overlay
	// offeredAt is when the last offer to a peer went through the overlay.
	offeredAt map[string]time.Time

	// routed and served count the signals sent through the overlay and the server.
	routed, served atomic.Uint64
}

func newSignaler(c *signalclient.Client, log zerolog.Logger) *signaler {
	return &signaler{c: c, log: log, overlay: map[string]bool{}, offeredAt: map[string]time.Time{}}
}

func (s *signaler) SendSignal(to string, sig rtclink.Signal) error {
	n := s.node.Load()
	s.mu.Lock()
	viaOverlay := s.overlay[to]
	retry := sig.Type == rtclink.SignalOffer && time.Since(s.offeredAt[to]) < overlayRetryWindow
	s.mu.Unlock()
	// With the server away a retry has nowhere else to go.
	retry = retry && s.c.Connected()
	if sig.Type != rtclink.SignalCandidate {
		viaOverlay = !retry && n != nil && n.RouteKnown(to)
	}
	if viaOverlay && n != nil {
		body, err := json.Marshal(routedSignal{Type: sig.Type, SDP: sig.SDP, Candidate: sig.Candidate})
		if err == nil {
			err = n.SendSignal(to, body)
		}
		if err == nil {
			s.routed.Add(1)
			s.remember(to, true)
			if sig.Type == rtclink.SignalOffer {
				s.mu.Lock()
				s.offeredAt[to] = time.Now()
				s.mu.Unlock()
			}
			return nil
		}
		if !errors.Is(err, node.ErrNoRoute) {
			s.log.Debug().Err(err).Str("peer", to).Str("type", sig.Type).Msg("signal through the overlay failed: using the server")
		}
	}
	if sig.Type != rtclink.SignalCandidate {
		s.remember(to, false)
	}
	s.served.Add(1)
	switch sig.Type {
	case rtclink.SignalOffer:
		return s.c.SendOffer(to, sig.SDP)
	case rtclink.SignalAnswer:
		return s.c.SendAnswer(to, sig.SDP)
	case rtclink.SignalCandidate:
		return s.c.SendCandidate(to, sig.Candidate)
	}
	return fmt.Errorf("rtcnode: unknown signal type %q", sig.Type)
}

func (s *signaler) remember(peer string, overlay bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.overlay[peer]; !ok && len(s.overlay) >= maxSignalPeers {
		// Forgetting only sends a peer's next candidates, or a retry, by another channel.
		clear(s.overlay)
		clear(s.offeredAt)
	}
	s.overlay[peer] = overlay
}

// pumpRoutedSignals hands the signals that came through the overlay to the links, until the
// node closes.
func (w *Node) pumpRoutedSignals() {
	for rs := range w.Node.Signals() {
		sig, err := decodeRoutedSignal(rs.Body)
		if err != nil {
			w.log.Debug().Err(err).Str("from", rs.From).Msg("routed signal refused")
			continue
		}
		w.transport.HandleSignal(rs.From, sig)
	}
}

// SignalsSent returns how many link signals went through the overlay and how many through
// the signaling server.
func (w *Node) SignalsSent() (overlay, server uint64) {
	return w.signaler.routed.Load(), w.signaler.served.Load()
}
