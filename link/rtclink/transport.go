// Package rtclink implements link.Transport with pion WebRTC: one
// PeerConnection and one reliable, ordered data channel per link, set up
// through a Signaler with trickle ICE.
//
// Every link is authenticated: once DTLS completes, the SHA-256 of the
// peer's certificate must equal the node ID the link was opened for
// (identity.IDFromCertificate); otherwise the link is closed with reason
// "identity mismatch". pion already checks the certificate against the SDP
// fingerprint, so neither a peer nor the signaling server can speak as
// another node.
//
// The data channel is pre-negotiated (id 0, no in-band open handshake).
// Binary messages are frames; text messages are link control: "ping <ns>",
// "pong <ns>" (heartbeat and RTT) and "bye <reason>" (orderly close).
//
// Glare: if both ends dial at once, the offer from the lower node ID (string
// order) wins; the higher side drops its own offer and answers. Exactly one
// link results.
package rtclink

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
)

// dataChannelID is the pre-negotiated stream id of the one data channel.
const dataChannelID uint16 = 0

// byeFlushTimeout bounds how long closing an open link waits for its "bye"
// to leave before tearing the connection down. Only a courtesy: without the
// bye, the peer still sees the DTLS close or, at worst, a heartbeat timeout.
const byeFlushTimeout = 200 * time.Millisecond

// maxByeReason bounds the peer-supplied reason we copy into a LinkDown.
const maxByeReason = 128

type connState uint8

const (
	stateOpening connState = iota
	stateUp
	stateClosed
)

// ID returns this node's ID.
func (t *Transport) ID() string { return t.self }

// start runs the Transport's two goroutines: the event pump and the heartbeat.
func (t *Transport) start() {
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		t.queue.pump(t.events, t.done)
	}()
	go func() {
		defer t.wg.Done()
		t.heartbeatLoop()
	}()
}

// SetICEServers replaces the STUN/TURN servers used by links opened from now
// on (existing links keep theirs).
func (t *Transport) SetICEServers(servers []ICEServer) {
	t.mu.Lock()
	t.iceServers = append([]ICEServer(nil), servers...)
	t.mu.Unlock()
}

// Events implements link.Transport.
func (t *Transport) Events() <-chan link.Event { return t.events }

// Dial implements link.Transport.
func (t *Transport) Dial(peer string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if c := t.links[peer]; c != nil {
		c.dialed = true
		return
	}
	var reason string
	switch {
	case !identity.ValidID(peer):
		reason = link.ReasonUnreachable + ": invalid node ID"
	case peer == t.self:
		reason = link.ReasonUnreachable + ": own node ID"
	case len(t.links) >= t.cfg.MaxLinks:
		reason = link.ReasonTooManyLinks
	}
	if reason != "" {
		t.queue.mu.Lock()
		t.queue.pushLocked(link.Event{Type: link.LinkDown, Peer: peer, Reason: reason})
		t.queue.mu.Unlock()
		return
	}
	c := t.newConnLocked(peer, true)
	c.dialed = true
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.startOffer(c)
	}()
}

func (t *Transport) newConnLocked(peer string, offerer bool) *conn {
	c := &conn{peer: peer, offerer: offerer}
	c.dialTimer = time.AfterFunc(t.cfg.DialTimeout, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if c.state == stateOpening {
			t.closeLocked(c, link.ReasonDialTimeout, false)
		}
	})
	t.links[peer] = c
	return c
}

func (t *Transport) isOpening(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return c.state == stateOpening
}

// queueLocalCandidate sends a local candidate (RTCIceCandidateInit JSON), or keeps it until
// the description has gone out: the peer must see the description first.
func (t *Transport) queueLocalCandidate(c *conn, cand string) {
	c.sigMu.Lock()
	if !c.descSent {
		c.pendingLocal = append(c.pendingLocal, cand)
		c.sigMu.Unlock()
		return
	}
	c.sigMu.Unlock()
	t.sendCandidate(c, cand)
}

func (t *Transport) sendCandidate(c *conn, cand string) {
	if err := t.cfg.Signaler.SendSignal(c.peer, Signal{Type: SignalCandidate, Candidate: cand}); err != nil {
		t.log.Debug().Err(err).Str("peer", short(c.peer)).Msg("send ICE candidate")
	}
}

// sendDescription sends the offer or answer, then the candidates gathered
// meanwhile.
func (t *Transport) sendDescription(c *conn, s Signal) {
	if err := t.cfg.Signaler.SendSignal(c.peer, s); err != nil {
		t.closeConn(c, fmt.Sprintf("%s: send %s: %v", link.ReasonUnreachable, s.Type, err))
		return
	}
	c.sigMu.Lock()
	c.descSent = true
	pending := c.pendingLocal
	c.pendingLocal = nil
	c.sigMu.Unlock()
	for _, cand := range pending {
		t.sendCandidate(c, cand)
	}
}

// HandleSignal processes a signal from peer from (as stamped by the
// signaling server). Signals from one peer must be handed over in the order
// received; HandleSignal does local work only (no network waits, apart from
// whatever Signaler.SendSignal does when answering). Invalid signals are
// logged and dropped.
func (t *Transport) HandleSignal(from string, s Signal) {
	if !identity.ValidID(from) || from == t.self {
		t.log.Warn().Str("from", from).Str("type", s.Type).Msg("signal from invalid sender dropped")
		return
	}
	switch s.Type {
	case SignalOffer:
		t.handleOffer(from, s.SDP)
	case SignalAnswer:
		t.handleAnswer(from, s.SDP)
	case SignalCandidate:
		t.handleCandidate(from, s.Candidate)
	default:
		t.log.Warn().Str("from", short(from)).Str("type", s.Type).Msg("unknown signal type dropped")
	}
}

func (t *Transport) handleOffer(from, sdp string) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	dialed := false
	if old := t.links[from]; old != nil {
		if old.offerer && old.state == stateOpening {
			if t.self < from {
				// Glare, and our offer wins: the peer answers ours.
				t.mu.Unlock()
				t.log.Debug().Str("peer", short(from)).Msg("glare: keeping our offer")
				return
			}
			t.log.Debug().Str("peer", short(from)).Msg("glare: answering the peer's offer")
		}
		// The attempt or link is replaced; a pending Dial moves to the new one.
		if old.state == stateOpening {
			dialed = old.dialed
		}
		t.closeLocked(old, link.ReasonReplaced, old.state == stateOpening)
	} else if len(t.links) >= t.cfg.MaxLinks {
		t.mu.Unlock()
		t.log.Warn().Str("peer", short(from)).Msg("offer refused: too many links")
		return
	}
	c := t.newConnLocked(from, false)
	c.dialed = dialed
	c.opMu.Lock() // fresh conn: uncontended; held so its candidates queue behind
	t.mu.Unlock()
	defer c.opMu.Unlock()
	t.answerOffer(c, sdp)
}

func (t *Transport) handleAnswer(from, sdp string) {
	t.mu.Lock()
	c := t.links[from]
	t.mu.Unlock()
	if c == nil || !c.offerer {
		t.log.Debug().Str("peer", short(from)).Msg("unexpected answer dropped")
		return
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if !c.hasPeerConnection() || c.remoteDescSet || !t.isOpening(c) {
		t.log.Debug().Str("peer", short(from)).Msg("unexpected answer dropped")
		return
	}
	if err := t.applyAnswer(c, sdp); err != nil {
		t.log.Warn().Err(err).Str("peer", short(from)).Msg("bad answer")
		t.closeConn(c, link.ReasonConnectionFailed+": bad answer: "+err.Error())
		return
	}
	c.remoteDescSet = true
	for _, cand := range c.pendingRemote {
		t.addRemoteCandidate(c, cand)
	}
	c.pendingRemote = nil
}

// candidateInit is the part of an RTCIceCandidateInit that is checked before the candidate
// goes to the WebRTC stack.
type candidateInit struct {
	Candidate string `json:"candidate"`
}

func (t *Transport) handleCandidate(from, candJSON string) {
	var cand candidateInit
	if err := json.Unmarshal([]byte(candJSON), &cand); err != nil || cand.Candidate == "" {
		t.log.Warn().Str("peer", short(from)).Msg("malformed ICE candidate dropped")
		return
	}
	t.mu.Lock()
	c := t.links[from]
	t.mu.Unlock()
	if c == nil {
		t.log.Debug().Str("peer", short(from)).Msg("ICE candidate for no link dropped")
		return
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if !c.remoteDescSet {
		if len(c.pendingRemote) >= t.cfg.MaxPendingCandidates {
			t.log.Warn().Str("peer", short(from)).Msg("too many early ICE candidates; dropped one")
			return
		}
		c.pendingRemote = append(c.pendingRemote, candJSON)
		return
	}
	t.addRemoteCandidate(c, candJSON)
}

func (t *Transport) handleControl(c *conn, msg string) {
	verb, arg, _ := strings.Cut(msg, " ")
	switch verb {
	case "ping":
		t.writeText(c, "pong "+arg)
	case "pong":
		sent, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			return
		}
		if rtt := time.Now().UnixNano() - sent; rtt > 0 && rtt < int64(time.Minute) {
			c.rttNanos.Store(rtt)
		}
	case "bye":
		reason := link.ReasonClosedByPeer
		if arg = sanitize(arg); arg != "" {
			reason += ": " + arg
		}
		t.closeConn(c, reason)
	default:
		// Unknown control messages are ignored, so that later versions may
		// add some.
		t.log.Debug().Str("peer", short(c.peer)).Str("verb", sanitize(verb)).Msg("unknown control message")
	}
}

func sanitize(s string) string {
	if len(s) > maxByeReason {
		s = s[:maxByeReason]
	}
	return strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
}

// CloseLink implements link.Transport.
func (t *Transport) CloseLink(peer, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.links[peer]; c != nil {
		t.closeLocked(c, link.ReasonClosed+": "+reason, false)
	}
}

// Links implements link.Transport.
func (t *Transport) Links() []link.LinkInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]link.LinkInfo, 0, len(t.links))
	for _, c := range t.links {
		if c.state != stateUp {
			continue
		}
		out = append(out, link.LinkInfo{
			Peer:      c.peer,
			Path:      c.path,
			Since:     c.since,
			BytesIn:   c.bytesIn.Load(),
			BytesOut:  c.bytesOut.Load(),
			FramesIn:  c.framesIn.Load(),
			FramesOut: c.framesOut.Load(),
			RTT:       time.Duration(c.rttNanos.Load()),
		})
	}
	return out
}

func (t *Transport) closeConn(c *conn, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closeLocked(c, reason, false)
}

// closeLocked closes c: reports LinkDown (unless silent, or nobody knows of
// the attempt) and tears the PeerConnection down in the background. t.mu
// must be held.
func (t *Transport) closeLocked(c *conn, reason string, silent bool) {
	if c.state == stateClosed {
		return
	}
	prev := c.state
	c.state = stateClosed
	if t.links[c.peer] == c {
		delete(t.links, c.peer)
	}
	t.queue.mu.Lock()
	c.downQueued = true
	if !silent && (prev == stateUp || c.dialed) {
		t.queue.pushLocked(link.Event{Type: link.LinkDown, Peer: c.peer, Reason: reason})
	}
	t.queue.room.Broadcast() // its read loop may wait for room
	t.queue.mu.Unlock()
	c.dialTimer.Stop()
	ev := t.log.Debug()
	if prev == stateUp && reason != link.ReasonClosedByPeer && !strings.HasPrefix(reason, link.ReasonClosed) {
		ev = t.log.Info()
	}
	ev.Str("peer", short(c.peer)).Str("reason", reason).Bool("was_up", prev == stateUp).Msg("link closed")
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.shutdown(c, prev == stateUp, reason)
	}()
}

func (t *Transport) heartbeatLoop() {
	tick := time.NewTicker(t.cfg.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case now := <-tick.C:
			t.heartbeat(now)
		}
	}
}

// Freeze makes the Transport behave like a crashed process whose sockets stay open: it stops
// sending frames and heartbeats and ignores everything it receives, so its peers notice only
// through their heartbeat timeout. It is for failure tests and cannot be undone; Close still
// releases everything.
func (t *Transport) Freeze() { t.frozen.Store(true) }

// heartbeat pings every open link and closes those silent for longer than
// HeartbeatTimeout. Detection therefore takes between HeartbeatTimeout and
// HeartbeatTimeout+HeartbeatInterval.
func (t *Transport) heartbeat(now time.Time) {
	if t.frozen.Load() {
		return
	}
	t.mu.Lock()
	var up []*conn
	for _, c := range t.links {
		if c.state == stateUp {
			up = append(up, c)
		}
	}
	t.mu.Unlock()
	ping := "ping " + strconv.FormatInt(now.UnixNano(), 10)
	for _, c := range up {
		if silent := now.Sub(time.Unix(0, c.lastRecvNanos.Load())); silent > t.cfg.HeartbeatTimeout {
			t.closeConn(c, link.ReasonHeartbeatTimeout)
			continue
		}
		t.writeText(c, ping)
	}
}

// Close implements link.Transport. It waits until every PeerConnection is
// closed and every goroutine of the Transport has ended.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.queue.close()
	for _, c := range t.links {
		t.closeLocked(c, "transport closed", true)
	}
	t.mu.Unlock()
	close(t.done)
	t.wg.Wait()
	close(t.events)
	return nil
}

// short abbreviates a node ID for logs.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
