// Package rtclink implements link.Transport with WebRTC: one PeerConnection and one reliable,
// ordered data channel per link, set up through a Signaler with trickle ICE. A Go process runs
// it on pion (transport_pion.go); the browser peer, built for GOOS=js, on the page's own
// RTCPeerConnection (transport_js.go). Everything else, this file included, is shared by the
// two builds.
//
// Every link is authenticated: DTLS certificates are disposable (one per
// Transport), and right after DTLS each end proves the identity key behind its
// node ID by signing both ends' certificate fingerprints (proof.go). No frame
// is accepted before the peer's proof checks out; a missing or bad proof
// closes the link with reason "identity mismatch", so neither a peer nor the
// signaling server can speak as another node. An offer naming a peer whose
// link is up starts a successor that replaces the link only once it has
// proven the same identity.
//
// The data channel is pre-negotiated (id 0, no in-band open handshake).
// Binary messages are frames; text messages are link control: "proof <key>
// <signature>" (first, once), "ping <ns>", "pong <ns>" (heartbeat and RTT) and
// "bye <reason>" (orderly close).
//
// Glare: if both ends dial at once, the offer from the lower node ID (string
// order) wins; the higher side drops its own offer and answers. Exactly one
// link results.
package rtclink

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/rs/zerolog"

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

// conn is one link attempt: one peerConn. A replaced attempt (glare, reconnect) is a
// different conn, so events from an old connection act only on their own, already closed,
// conn.
type conn struct {
	peer      string
	offerer   bool
	dialTimer *time.Timer // set at creation, then read-only

	// Guarded by Transport.mu.
	state   connState
	dialed  bool // a Dial awaits this attempt's result
	path    link.Path
	since   time.Time
	channel peerConn // pc once its data channel is open; nil before
	maxSend int
	// The link proof (proof.go): the link goes up once this end has sent its proof and the
	// peer's has checked out, whichever comes last.
	proofSent, peerProven bool

	// Guarded by Transport.queue.mu: set when the link's LinkDown is queued
	// (or would have been), after which no Frame for it is queued.
	downQueued bool

	// opMu serialises signalling operations on pc (create, descriptions,
	// candidates). It may be held across waits for the browser, so no
	// platform callback takes it. Lock order: opMu, then Transport.mu, then
	// queue.mu.
	opMu          sync.Mutex
	pc            peerConn // nil until created
	remoteDescSet bool
	pendingRemote []string // RTCIceCandidateInit JSON

	// sigMu orders outgoing signals: the description before any candidate.
	sigMu        sync.Mutex
	descSent     bool
	pendingLocal []string

	// writeMu keeps one writer at a time on the data channel (Send and the
	// heartbeat), so frames and pings keep their stream order.
	writeMu sync.Mutex

	// up mirrors state == stateUp for the read loop, which checks it on every frame without
	// taking Transport.mu.
	up atomic.Bool

	bytesIn, bytesOut, framesIn, framesOut atomic.Uint64
	rttNanos                               atomic.Int64
	lastRecvNanos                          atomic.Int64
}

// Transport is a link.Transport over WebRTC. Create it with New.
type Transport struct {
	cfg   Config
	self  string
	stack stack
	log   zerolog.Logger

	queue  *eventQueue
	events chan link.Event
	done   chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	links map[string]*conn
	// successors holds, per peer with a live link, the one incoming attempt that may replace
	// it: it runs beside the live link and takes its place only once it has proven the same
	// identity, so an offer naming a linked peer can never tear that link down.
	successors map[string]*conn
	iceServers []ICEServer
	closed     bool

	// pingsSent and pingsSkipped count the heartbeat's pings sent and skipped (see heartbeat).
	pingsSent, pingsSkipped atomic.Uint64

	// frozen is set by Freeze: the node stops sending frames and pings and
	// ignores everything it receives, like a stuck process whose sockets
	// are still open.
	frozen atomic.Bool

	// powBits is the difficulty required of peers' keys (Config.PowBits, raised by
	// RequireWork); the counters are Stats'.
	powBits       atomic.Int32
	proofsRefused atomic.Uint64
	workRefused   atomic.Uint64
}

var _ link.Transport = (*Transport)(nil)

// New validates cfg and starts a Transport.
func New(cfg Config) (*Transport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With().Str("node", short(cfg.Key.ID())).Logger()
	st, err := newStack(&cfg, log)
	if err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:        cfg,
		self:       cfg.Key.ID(),
		stack:      st,
		log:        log,
		queue:      newEventQueue(cfg.EventQueueLength),
		events:     make(chan link.Event),
		done:       make(chan struct{}),
		links:      make(map[string]*conn),
		successors: make(map[string]*conn),
		iceServers: append([]ICEServer(nil), cfg.ICEServers...),
	}
	t.powBits.Store(int32(cfg.PowBits))
	t.start()
	return t, nil
}

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

// RequireWork raises the proof-of-work difficulty required of new links' peers to bits, if
// that is more than the current one (Config.PowBits at first); it never lowers it. A node
// calls it with what its signaling server requires (welcome's pow_bits), so a peer that only
// got past another server, or none, cannot link without the same work. Out-of-range values
// are ignored.
func (t *Transport) RequireWork(bits int) {
	if identity.ValidateWorkBits(bits) != nil {
		return
	}
	for {
		cur := t.powBits.Load()
		if int32(bits) <= cur || t.powBits.CompareAndSwap(cur, int32(bits)) {
			return
		}
	}
}

// Stats are counters of refused link proofs since the Transport started.
type Stats struct {
	// ProofsRefused counts links closed for a missing, malformed or bad link proof.
	ProofsRefused uint64
	// WorkRefused counts links closed because the peer's proven key lacked the proof of work
	// required (Config.PowBits, RequireWork).
	WorkRefused uint64
	// PowBits is the difficulty currently required of peers.
	PowBits int
}

// Stats returns the Transport's counters.
func (t *Transport) Stats() Stats {
	return Stats{ProofsRefused: t.proofsRefused.Load(), WorkRefused: t.workRefused.Load(), PowBits: int(t.powBits.Load())}
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
	t.links[peer] = c
	c.dialed = true
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.startOffer(c)
	}()
}

// newConnLocked creates a link attempt with its dial timer; the caller registers it in links
// or successors. t.mu must be held.
func (t *Transport) newConnLocked(peer string, offerer bool) *conn {
	c := &conn{peer: peer, offerer: offerer}
	c.dialTimer = time.AfterFunc(t.cfg.DialTimeout, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if c.state == stateOpening {
			t.closeLocked(c, link.ReasonDialTimeout, false)
		}
	})
	return c
}

// startOffer creates the connection of an outgoing attempt and sends the offer.
func (t *Transport) startOffer(c *conn) {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if !t.isOpening(c) {
		return
	}
	if err := t.newPeerConn(c); err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": "+err.Error())
		return
	}
	sdp, err := c.pc.createOffer()
	if err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": "+err.Error())
		return
	}
	t.sendDescription(c, Signal{Type: SignalOffer, SDP: sdp})
}

// answerOffer creates the connection of an incoming attempt and answers the
// offer. c.opMu must be held.
func (t *Transport) answerOffer(c *conn, offer string) {
	if err := t.newPeerConn(c); err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": "+err.Error())
		return
	}
	if err := c.pc.setRemoteOffer(offer); err != nil {
		t.log.Warn().Err(err).Str("peer", short(c.peer)).Msg("bad offer")
		t.closeConn(c, link.ReasonConnectionFailed+": bad offer: "+err.Error())
		return
	}
	c.remoteDescSet = true
	sdp, err := c.pc.createAnswer()
	if err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": "+err.Error())
		return
	}
	t.sendDescription(c, Signal{Type: SignalAnswer, SDP: sdp})
}

// newPeerConn creates c's connection with the current ICE servers and routes
// its events to c. c.opMu must be held.
func (t *Transport) newPeerConn(c *conn) error {
	t.mu.Lock()
	servers := t.iceServers
	t.mu.Unlock()
	pc, err := t.stack.newPeerConn(servers, c.offerer, peerHandlers{
		candidate: func(init string) { t.queueLocalCandidate(c, init) },
		down:      func(reason string) { t.linkFailed(c, reason) },
		open:      func(pc peerConn) { t.onOpen(c, pc) },
		arrived: func() bool {
			if t.frozen.Load() {
				return false
			}
			c.lastRecvNanos.Store(time.Now().UnixNano())
			return true
		},
	})
	if err != nil {
		return err
	}
	c.pc = pc
	return nil
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
	if s.Type == SignalOffer && t.cfg.AnswerTimeout > 0 {
		t.watchAnswer(c)
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
	if old := t.links[from]; old != nil && old.state == stateUp {
		// The peer may have restarted, or someone replays its signals: either way the live
		// link stays until a new one proves the same identity (upIfReadyLocked).
		if prev := t.successors[from]; prev != nil {
			t.closeLocked(prev, link.ReasonReplaced, true)
		}
		c := t.newConnLocked(from, false)
		t.successors[from] = c
		c.opMu.Lock()
		t.mu.Unlock()
		defer c.opMu.Unlock()
		t.answerOffer(c, sdp)
		return
	} else if old != nil {
		if old.offerer && old.state == stateOpening {
			if t.self < from {
				// Glare, and our offer wins: the peer answers ours.
				t.mu.Unlock()
				t.log.Debug().Str("peer", short(from)).Msg("glare: keeping our offer")
				return
			}
			t.log.Debug().Str("peer", short(from)).Msg("glare: answering the peer's offer")
		}
		// The attempt is replaced; a pending Dial moves to the new one.
		dialed = old.dialed
		t.closeLocked(old, link.ReasonReplaced, true)
	} else if len(t.links) >= t.cfg.MaxLinks {
		t.mu.Unlock()
		t.log.Warn().Str("peer", short(from)).Msg("offer refused: too many links")
		return
	}
	c := t.newConnLocked(from, false)
	t.links[from] = c
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
	if c.pc == nil || c.remoteDescSet || !t.isOpening(c) {
		t.log.Debug().Str("peer", short(from)).Msg("unexpected answer dropped")
		return
	}
	if err := c.pc.setRemoteAnswer(sdp); err != nil {
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

// watchAnswer fails c as unreachable when no answer to its offer came within
// Config.AnswerTimeout (see there). The timer is not stopped when the answer comes: it then
// finds the remote description set, or the attempt over, and does nothing.
func (t *Transport) watchAnswer(c *conn) {
	time.AfterFunc(t.cfg.AnswerTimeout, func() {
		c.opMu.Lock()
		defer c.opMu.Unlock()
		if c.remoteDescSet || !t.isOpening(c) {
			return
		}
		t.closeConn(c, fmt.Sprintf("%s: no answer within %v", link.ReasonUnreachable, t.cfg.AnswerTimeout))
	})
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
	c := t.successors[from]
	if c == nil {
		c = t.links[from]
	}
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

// addRemoteCandidate hands a candidate (RTCIceCandidateInit JSON, checked by
// handleCandidate) to the connection. c.opMu must be held.
func (t *Transport) addRemoteCandidate(c *conn, init string) {
	if err := c.pc.addCandidate(init); err != nil {
		t.log.Debug().Err(err).Str("peer", short(c.peer)).Msg("add ICE candidate")
	}
}

// onOpen runs when pc's data channel opens: DTLS and SCTP are up. It starts reading, for the
// peer's proof, and sends this end's; the link goes up once both are done (upIfReadyLocked).
func (t *Transport) onOpen(c *conn, pc peerConn) {
	local, remote, err := pc.fingerprints()
	if err != nil {
		t.log.Warn().Err(err).Str("peer", short(c.peer)).Msg("identity mismatch: no DTLS fingerprints; closing link")
		t.closeConn(c, link.ReasonIdentityMismatch)
		return
	}
	if err := pc.startChannel(); err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": "+err.Error())
		return
	}
	maxSend := t.cfg.MaxFrameSize
	if m := pc.maxMessageSize(); m > 0 && m < maxSend {
		maxSend = m // the peer accepts less than we would send
	}
	path := pathOf(pc)

	t.mu.Lock()
	if c.state != stateOpening {
		t.mu.Unlock()
		return
	}
	c.channel, c.path, c.maxSend = pc, path, maxSend
	c.lastRecvNanos.Store(time.Now().UnixNano())
	t.wg.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.wg.Done()
		t.readLoop(c, pc, local, remote)
	}()

	// Signing may wait (WebCrypto in a browser), so it happens before taking writeMu. The
	// proof is written under writeMu with proofSent set first: the link cannot go up, and so
	// no frame can be sent, before the proof is on the wire ahead of it.
	proof, err := proofMessage(t.cfg.Key, local, remote)
	if err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": "+err.Error())
		return
	}
	c.writeMu.Lock()
	t.mu.Lock()
	open := c.state == stateOpening
	c.proofSent = open
	t.mu.Unlock()
	if open {
		err = pc.send([]byte(proof), true)
	}
	c.writeMu.Unlock()
	if err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": send link proof: "+err.Error())
		return
	}
	t.mu.Lock()
	t.upIfReadyLocked(c)
	t.mu.Unlock()
}

// upIfReadyLocked brings c up once both proofs are done: it replaces the live link c
// succeeds, if any (LinkDown for the old one, then LinkUp), and reports the link. t.mu must be
// held.
func (t *Transport) upIfReadyLocked(c *conn) {
	if c.state != stateOpening || !c.proofSent || !c.peerProven {
		return
	}
	if t.successors[c.peer] == c {
		delete(t.successors, c.peer)
		if old := t.links[c.peer]; old != nil {
			c.dialed = old.dialed
			t.closeLocked(old, link.ReasonReplaced, false)
		}
		t.links[c.peer] = c
	}
	c.state = stateUp
	c.up.Store(true)
	c.since = time.Now()
	t.queue.mu.Lock()
	t.queue.pushLocked(link.Event{Type: link.LinkUp, Peer: c.peer, Path: c.path})
	t.queue.mu.Unlock()
	c.dialTimer.Stop()
	t.log.Debug().Str("peer", short(c.peer)).Str("path", string(c.path)).Msg("link up")
}

// peerProved records that the peer's link proof checked out.
func (t *Transport) peerProved(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c.peerProven = true
	t.upIfReadyLocked(c)
}

// readLoop hands the link's messages, in order, to the event queue (frames)
// or to control handling (text) until the link ends.
//
// The first thing it expects is the peer's link proof, checked against this session's DTLS
// fingerprints local (ours) and remote (the peer's); a frame before the link is up, a second
// proof or a bad one closes the link.
func (t *Transport) readLoop(c *conn, pc peerConn, local, remote []byte) {
	proven := false
	for {
		m, err := pc.receive()
		if err != nil {
			var reason downReason
			switch {
			case errors.Is(err, errConnClosed):
			case errors.As(err, &reason):
				t.linkFailed(c, string(reason))
			default:
				t.closeConn(c, link.ReasonConnectionFailed+": read: "+err.Error())
			}
			return
		}
		if m.text {
			if verb, arg, _ := strings.Cut(string(m.data), " "); verb == proofVerb {
				err := errors.New("a second link proof")
				if !proven {
					err = checkProof(c.peer, arg, local, remote, int(t.powBits.Load()))
				}
				if errors.Is(err, identity.ErrInsufficientWork) {
					t.workRefused.Add(1)
					t.log.Warn().Err(err).Str("peer", short(c.peer)).Msg("identity without enough proof of work; closing link")
					t.closeConn(c, reasonInsufficientWork)
					return
				}
				if err != nil {
					t.proofsRefused.Add(1)
					t.log.Warn().Err(err).Str("claimed", short(c.peer)).Msg("identity mismatch: bad link proof; closing link")
					t.closeConn(c, link.ReasonIdentityMismatch)
					return
				}
				proven = true
				t.peerProved(c)
				continue
			}
			t.handleControl(c, string(m.data))
			continue
		}
		if !c.up.Load() {
			// An honest peer sends frames only once it has our proof, and we send that only
			// after marking it sent; so this is a hostile peer, or the link closed meanwhile.
			if t.closeConn(c, link.ReasonIdentityMismatch) {
				t.log.Warn().Str("peer", short(c.peer)).Msg("identity mismatch: frame before the link proof; closing link")
			}
			return
		}
		c.bytesIn.Add(uint64(len(m.data)))
		c.framesIn.Add(1)
		if !t.queue.pushFrame(c, link.Event{Type: link.Frame, Peer: c.peer, Data: m.data}) {
			return // link down or transport closed; the connection is being torn down
		}
	}
}

// linkFailed closes c for a reason its connection reported, and logs a peer
// that broke the frame limit (once, however many paths report it).
func (t *Transport) linkFailed(c *conn, reason string) {
	if t.closeConn(c, reason) && reason == link.ReasonFrameTooLarge {
		t.log.Warn().Str("peer", short(c.peer)).Int("limit", t.cfg.MaxFrameSize).
			Msg("peer sent a frame above the limit; closing link")
	}
}

func (t *Transport) writeText(c *conn, s string) {
	t.mu.Lock()
	ch := c.channel
	t.mu.Unlock()
	if ch == nil {
		return
	}
	c.writeMu.Lock()
	err := ch.send([]byte(s), true)
	c.writeMu.Unlock()
	if err != nil {
		t.log.Debug().Err(err).Str("peer", short(c.peer)).Msg("write control message")
	}
}

// Send implements link.Transport.
func (t *Transport) Send(peer string, frame []byte) error {
	if t.frozen.Load() {
		return nil // a hung process's writes go nowhere
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return link.ErrClosed
	}
	c := t.links[peer]
	if c == nil || c.state != stateUp {
		t.mu.Unlock()
		return link.ErrNoLink
	}
	ch, maxSend := c.channel, c.maxSend
	t.mu.Unlock()
	if len(frame) > maxSend {
		return fmt.Errorf("%w: %d bytes, limit %d", link.ErrFrameTooLarge, len(frame), maxSend)
	}
	if ch.bufferedAmount()+len(frame) > t.cfg.SendBufferBytes {
		return link.ErrQueueFull
	}
	c.writeMu.Lock()
	err := ch.send(frame, false)
	c.writeMu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %v", link.ErrNoLink, err)
	}
	c.bytesOut.Add(uint64(len(frame)))
	c.framesOut.Add(1)
	return nil
}

// shutdown says goodbye on an open link and closes its connection.
func (t *Transport) shutdown(c *conn, wasUp bool, reason string) {
	c.opMu.Lock()
	pc := c.pc
	c.opMu.Unlock()
	if pc == nil {
		return
	}
	if wasUp && reason != link.ReasonClosedByPeer && !strings.HasPrefix(reason, link.ReasonClosedByPeer+":") {
		t.writeText(c, "bye "+reason)
		deadline := time.Now().Add(byeFlushTimeout)
		for pc.bufferedAmount() > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := pc.close(); err != nil {
		t.log.Debug().Err(err).Str("peer", short(c.peer)).Msg("close peer connection")
	}
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

// closeConn closes c (see closeLocked) and reports whether it was still open.
func (t *Transport) closeConn(c *conn, reason string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closeLocked(c, reason, false)
}

// closeLocked closes c: reports LinkDown (unless silent, or nobody knows of
// the attempt) and tears the connection down in the background. It reports
// whether c was still open. t.mu must be held.
func (t *Transport) closeLocked(c *conn, reason string, silent bool) bool {
	if c.state == stateClosed {
		return false
	}
	prev := c.state
	c.state = stateClosed
	if t.links[c.peer] == c {
		delete(t.links, c.peer)
	}
	if t.successors[c.peer] == c {
		delete(t.successors, c.peer)
	}
	c.up.Store(false)
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
	return true
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
//
// A link that received something in the last half interval, and whose round trip is known,
// is not pinged: on an idle link the two ends' tickers then take turns, the end whose tick
// comes sooner after the other's ping skips its own, and the link carries one ping and one
// pong per interval instead of two of each. Each end still hears from the other at least
// once an interval (the other's ping, or the pong to its own), so detection is unchanged; the
// end that skips keeps the round trip it measured first.
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
		silent := now.Sub(time.Unix(0, c.lastRecvNanos.Load()))
		if silent > t.cfg.HeartbeatTimeout {
			t.closeConn(c, link.ReasonHeartbeatTimeout)
			continue
		}
		if silent < t.cfg.HeartbeatInterval/2 && c.rttNanos.Load() != 0 {
			t.pingsSkipped.Add(1)
			continue
		}
		t.pingsSent.Add(1)
		t.writeText(c, ping)
	}
}

// Close implements link.Transport. It waits until every PeerConnection is
// closed and every goroutine of the Transport has ended, for at most
// Config.CloseTimeout: goroutines stuck in the WebRTC stack beyond it are
// abandoned (and the Events channel left open for them) with an error.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.queue.close()
	for _, c := range t.successors {
		t.closeLocked(c, "transport closed", true)
	}
	for _, c := range t.links {
		t.closeLocked(c, "transport closed", true)
	}
	t.mu.Unlock()
	close(t.done)
	ended := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(ended)
	}()
	select {
	case <-ended:
		close(t.events)
		if err := t.stack.close(); err != nil {
			return fmt.Errorf("rtclink: close: %w", err)
		}
		return nil
	case <-time.After(t.cfg.CloseTimeout):
		t.log.Error().Dur("waited", t.cfg.CloseTimeout).Msg("closing: goroutines still blocked in the WebRTC stack; abandoning them")
		return fmt.Errorf("rtclink: close: goroutines still blocked in the WebRTC stack after %v", t.cfg.CloseTimeout)
	}
}

// short abbreviates a node ID for logs.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
