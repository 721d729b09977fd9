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
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/pion/datachannel"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/sctp"
	"github.com/pion/webrtc/v4"
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

// initialReadBuffer is the first size of a link's read buffer.
const initialReadBuffer = 4 << 10

// maxByeReason bounds the peer-supplied reason we copy into a LinkDown.
const maxByeReason = 128

type connState uint8

const (
	stateOpening connState = iota
	stateUp
	stateClosed
)

// conn is one link attempt: one PeerConnection. A replaced attempt (glare,
// reconnect) is a different conn, so callbacks from an old PeerConnection
// act only on their own, already closed, conn.
type conn struct {
	peer      string
	offerer   bool
	dialTimer *time.Timer // set at creation, then read-only

	// Guarded by Transport.mu.
	state   connState
	dialed  bool // a Dial awaits this attempt's result
	path    link.Path
	since   time.Time
	dc      *webrtc.DataChannel
	rwc     datachannel.ReadWriteCloser
	maxSend int

	// Guarded by Transport.queue.mu: set when the link's LinkDown is queued
	// (or would have been), after which no Frame for it is queued.
	downQueued bool

	// opMu serialises signalling operations on pc (create, descriptions,
	// candidates). Lock order: opMu, then Transport.mu, then queue.mu.
	opMu          sync.Mutex
	pc            *webrtc.PeerConnection
	remoteDescSet bool
	pendingRemote []webrtc.ICECandidateInit

	// sigMu orders outgoing signals: the description before any candidate.
	sigMu        sync.Mutex
	descSent     bool
	pendingLocal []string

	// writeMu keeps one writer at a time on the data channel (Send and the
	// heartbeat), so frames and pings keep their stream order.
	writeMu sync.Mutex

	bytesIn, bytesOut, framesIn, framesOut atomic.Uint64
	rttNanos                               atomic.Int64
	lastRecvNanos                          atomic.Int64
}

// Transport is a link.Transport over pion WebRTC. Create it with New.
type Transport struct {
	cfg  Config
	self string
	cert webrtc.Certificate
	api  *webrtc.API
	log  zerolog.Logger

	queue  *eventQueue
	events chan link.Event
	done   chan struct{}
	wg     sync.WaitGroup

	mu         sync.Mutex
	links      map[string]*conn
	iceServers []webrtc.ICEServer
	closed     bool

	// frozen is set by Freeze: the node stops sending frames and pings and
	// ignores everything it receives, like a stuck process whose sockets
	// are still open.
	frozen atomic.Bool
}

var _ link.Transport = (*Transport)(nil)

// New validates cfg, applies defaults and starts a Transport.
func New(cfg Config) (*Transport, error) {
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	if cfg.SettingEngine != nil {
		se = *cfg.SettingEngine
	}
	se.SetICETimeouts(cfg.ICEDisconnectedTimeout, cfg.ICEFailedTimeout, cfg.ICEKeepaliveInterval)
	switch cfg.MDNS {
	case MDNSQueryAndGather:
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeQueryAndGather)
	case MDNSQueryOnly:
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeQueryOnly)
	case MDNSDisabled:
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	// Advertised as a=max-message-size, so compliant peers never send more;
	// pion's default is 1 GiB, which lets a peer make us buffer that much.
	se.SetSCTPMaxMessageSize(uint32(cfg.MaxFrameSize))
	// Detached channels: our own read loop with a MaxFrameSize buffer gives
	// a deterministic "frame too large" and keeps LinkUp before any Frame.
	se.DetachDataChannels()
	log := cfg.Logger.With().Str("node", short(cfg.Identity.ID())).Logger()
	if se.LoggerFactory == nil {
		se.LoggerFactory = pionLoggerFactory{log: log}
	}
	api := webrtc.NewAPI(
		webrtc.WithSettingEngine(se),
		webrtc.WithMediaEngine(&webrtc.MediaEngine{}),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}),
	)
	t := &Transport{
		cfg:        cfg,
		self:       cfg.Identity.ID(),
		cert:       cfg.Identity.Certificate(),
		api:        api,
		log:        log,
		queue:      newEventQueue(cfg.EventQueueLength),
		events:     make(chan link.Event),
		done:       make(chan struct{}),
		links:      make(map[string]*conn),
		iceServers: append([]webrtc.ICEServer(nil), cfg.ICEServers...),
	}
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		t.queue.pump(t.events, t.done)
	}()
	go func() {
		defer t.wg.Done()
		t.heartbeatLoop()
	}()
	return t, nil
}

// ID returns this node's ID.
func (t *Transport) ID() string { return t.self }

// SetICEServers replaces the STUN/TURN servers used by links opened from now
// on (existing links keep theirs).
func (t *Transport) SetICEServers(servers []webrtc.ICEServer) {
	t.mu.Lock()
	t.iceServers = append([]webrtc.ICEServer(nil), servers...)
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

// startOffer creates the PeerConnection of an outgoing attempt and sends the
// offer.
func (t *Transport) startOffer(c *conn) {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if !t.isOpening(c) {
		return
	}
	pc, err := t.newPeerConnection(c)
	if err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": "+err.Error())
		return
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": create offer: "+err.Error())
		return
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": set local offer: "+err.Error())
		return
	}
	t.sendDescription(c, Signal{Type: SignalOffer, SDP: offer.SDP})
}

func (t *Transport) isOpening(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return c.state == stateOpening
}

// newPeerConnection creates c's PeerConnection and data channel and wires
// their callbacks. c.opMu must be held.
func (t *Transport) newPeerConnection(c *conn) (*webrtc.PeerConnection, error) {
	t.mu.Lock()
	servers := t.iceServers
	t.mu.Unlock()
	pc, err := t.api.NewPeerConnection(webrtc.Configuration{
		ICEServers:   servers,
		Certificates: []webrtc.Certificate{t.cert},
	})
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	negotiated, id := true, dataChannelID
	dc, err := pc.CreateDataChannel("rtcmesh", &webrtc.DataChannelInit{Negotiated: &negotiated, ID: &id})
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("create data channel: %w", err)
	}
	c.pc = pc
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) { t.onLocalCandidate(c, cand) })
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateFailed:
			t.closeConn(c, link.ReasonConnectionFailed)
		case webrtc.PeerConnectionStateClosed:
			// Our own close lands here too; closeConn is then a no-op.
			t.closeConn(c, link.ReasonClosedByPeer)
		}
	})
	dc.OnOpen(func() { t.onOpen(c, pc, dc) })
	return pc, nil
}

func (t *Transport) onLocalCandidate(c *conn, cand *webrtc.ICECandidate) {
	if cand == nil { // end of gathering
		return
	}
	b, err := json.Marshal(cand.ToJSON())
	if err != nil {
		t.log.Warn().Err(err).Msg("encode local ICE candidate")
		return
	}
	c.sigMu.Lock()
	if !c.descSent {
		c.pendingLocal = append(c.pendingLocal, string(b))
		c.sigMu.Unlock()
		return
	}
	c.sigMu.Unlock()
	t.sendCandidate(c, string(b))
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

	pc, err := t.newPeerConnection(c)
	if err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": "+err.Error())
		return
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		t.log.Warn().Err(err).Str("peer", short(from)).Msg("bad offer")
		t.closeConn(c, link.ReasonConnectionFailed+": bad offer: "+err.Error())
		return
	}
	c.remoteDescSet = true
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": create answer: "+err.Error())
		return
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": set local answer: "+err.Error())
		return
	}
	t.sendDescription(c, Signal{Type: SignalAnswer, SDP: answer.SDP})
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
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
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

func (t *Transport) handleCandidate(from, candJSON string) {
	var cand webrtc.ICECandidateInit
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
		c.pendingRemote = append(c.pendingRemote, cand)
		return
	}
	t.addRemoteCandidate(c, cand)
}

// addRemoteCandidate hands a candidate to pion. c.opMu must be held.
func (t *Transport) addRemoteCandidate(c *conn, cand webrtc.ICECandidateInit) {
	if err := c.pc.AddICECandidate(cand); err != nil {
		t.log.Debug().Err(err).Str("peer", short(c.peer)).Msg("add ICE candidate")
	}
}

// onOpen runs when the data channel opens: DTLS and SCTP are up. It checks
// the peer's identity and reports the link.
func (t *Transport) onOpen(c *conn, pc *webrtc.PeerConnection, dc *webrtc.DataChannel) {
	der := pc.SCTP().Transport().GetRemoteCertificate()
	if got := identity.IDFromCertificate(der); len(der) == 0 || got != c.peer {
		t.log.Warn().Str("claimed", c.peer).Str("actual", got).
			Msg("identity mismatch: peer certificate does not match its node ID; closing link")
		t.closeConn(c, link.ReasonIdentityMismatch)
		return
	}
	rwc, err := dc.Detach()
	if err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": detach data channel: "+err.Error())
		return
	}
	maxSend := t.cfg.MaxFrameSize
	if m := int(pc.SCTP().GetCapabilities().MaxMessageSize); m > 0 && m < maxSend {
		maxSend = m // the peer accepts less than we would send
	}
	path := pathOf(pc)
	now := time.Now()

	t.mu.Lock()
	if c.state != stateOpening {
		t.mu.Unlock()
		return
	}
	c.state = stateUp
	c.dc, c.rwc, c.path, c.since, c.maxSend = dc, rwc, path, now, maxSend
	c.lastRecvNanos.Store(now.UnixNano())
	t.queue.mu.Lock()
	t.queue.pushLocked(link.Event{Type: link.LinkUp, Peer: c.peer, Path: path})
	t.queue.mu.Unlock()
	t.wg.Add(1)
	t.mu.Unlock()
	c.dialTimer.Stop()
	t.log.Debug().Str("peer", short(c.peer)).Str("path", string(path)).Msg("link up")
	go func() {
		defer t.wg.Done()
		t.readLoop(c, rwc)
	}()
}

// pathOf maps the selected ICE candidate pair to a Path: the least direct
// of the two ends, in the order relay, srflx, prflx, host. (On loopback the
// remote end is often prflx: the peer's check arrives before its candidate.)
func pathOf(pc *webrtc.PeerConnection) link.Path {
	pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
		return ""
	}
	has := func(typ webrtc.ICECandidateType) bool {
		return pair.Local.Typ == typ || pair.Remote.Typ == typ
	}
	switch {
	case has(webrtc.ICECandidateTypeRelay):
		return link.PathRelay
	case has(webrtc.ICECandidateTypeSrflx):
		return link.PathSrflx
	case has(webrtc.ICECandidateTypePrflx):
		return link.PathPrflx
	default:
		return link.PathHost
	}
}

func (t *Transport) readLoop(c *conn, rwc datachannel.ReadWriteCloser) {
	// The buffer starts small and grows to MaxFrameSize only if frames need
	// it: an idle link then costs 4 KiB here, not MaxFrameSize. A message
	// that does not fit stays queued in SCTP, so the read is simply retried.
	buf := make([]byte, min(initialReadBuffer, t.cfg.MaxFrameSize))
	for {
		n, isString, err := rwc.ReadDataChannel(buf)
		if errors.Is(err, io.ErrShortBuffer) && len(buf) < t.cfg.MaxFrameSize {
			buf = make([]byte, min(2*len(buf), t.cfg.MaxFrameSize))
			continue
		}
		if err != nil {
			switch {
			case errors.Is(err, io.ErrShortBuffer):
				t.log.Warn().Str("peer", short(c.peer)).Int("limit", t.cfg.MaxFrameSize).
					Msg("peer sent a frame above the limit; closing link")
				t.closeConn(c, link.ReasonFrameTooLarge)
			case errors.Is(err, io.EOF), errors.Is(err, sctp.ErrChunk):
				// EOF: stream reset; ErrChunk: the peer aborted the
				// association, which is how pion closes a PeerConnection.
				t.closeConn(c, link.ReasonClosedByPeer)
			default:
				t.closeConn(c, link.ReasonConnectionFailed+": read: "+err.Error())
			}
			return
		}
		if t.frozen.Load() {
			continue
		}
		c.lastRecvNanos.Store(time.Now().UnixNano())
		if isString {
			t.handleControl(c, string(buf[:n]))
			continue
		}
		c.bytesIn.Add(uint64(n))
		c.framesIn.Add(1)
		data := make([]byte, n)
		copy(data, buf[:n])
		if !t.queue.pushFrame(c, link.Event{Type: link.Frame, Peer: c.peer, Data: data}) {
			return // link down or transport closed; the connection is being torn down
		}
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

func (t *Transport) writeText(c *conn, s string) {
	t.mu.Lock()
	rwc := c.rwc
	t.mu.Unlock()
	if rwc == nil {
		return
	}
	c.writeMu.Lock()
	_, err := rwc.WriteDataChannel([]byte(s), true)
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
	dc, rwc, maxSend := c.dc, c.rwc, c.maxSend
	t.mu.Unlock()
	if len(frame) > maxSend {
		return fmt.Errorf("%w: %d bytes, limit %d", link.ErrFrameTooLarge, len(frame), maxSend)
	}
	if dc.BufferedAmount()+uint64(len(frame)) > uint64(t.cfg.SendBufferBytes) {
		return link.ErrQueueFull
	}
	c.writeMu.Lock()
	_, err := rwc.WriteDataChannel(frame, false) // copies frame
	c.writeMu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %v", link.ErrNoLink, err)
	}
	c.bytesOut.Add(uint64(len(frame)))
	c.framesOut.Add(1)
	return nil
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

// shutdown says goodbye on an open link and closes the PeerConnection.
func (t *Transport) shutdown(c *conn, wasUp bool, reason string) {
	c.opMu.Lock()
	pc := c.pc
	c.opMu.Unlock()
	if pc == nil {
		return
	}
	if wasUp && reason != link.ReasonClosedByPeer && !strings.HasPrefix(reason, link.ReasonClosedByPeer+":") {
		t.mu.Lock()
		dc := c.dc
		t.mu.Unlock()
		t.writeText(c, "bye "+reason)
		deadline := time.Now().Add(byeFlushTimeout)
		for dc.BufferedAmount() > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := pc.GracefulClose(); err != nil {
		t.log.Debug().Err(err).Str("peer", short(c.peer)).Msg("close peer connection")
	}
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
