//go:build !js

package rtclink

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/sctp"
	"github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
)

// initialReadBuffer is the first size of a link's read buffer.
const initialReadBuffer = 4 << 10

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
	pendingRemote []string // RTCIceCandidateInit JSON

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
	iceServers []ICEServer
	closed     bool

	// frozen is set by Freeze: the node stops sending frames and pings and
	// ignores everything it receives, like a stuck process whose sockets
	// are still open.
	frozen atomic.Bool
}

var _ link.Transport = (*Transport)(nil)

// New validates cfg and starts a Transport.
func New(cfg Config) (*Transport, error) {
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
		iceServers: append([]ICEServer(nil), cfg.ICEServers...),
	}
	t.start()
	return t, nil
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

// newPeerConnection creates c's PeerConnection and data channel and wires
// their callbacks. c.opMu must be held.
func (t *Transport) newPeerConnection(c *conn) (*webrtc.PeerConnection, error) {
	t.mu.Lock()
	servers := t.iceServers
	t.mu.Unlock()
	policy := webrtc.ICETransportPolicyAll
	if t.cfg.RelayOnly {
		policy = webrtc.ICETransportPolicyRelay
	}
	pc, err := t.api.NewPeerConnection(webrtc.Configuration{
		ICEServers:         pionICEServers(servers),
		ICETransportPolicy: policy,
		Certificates:       []webrtc.Certificate{t.cert},
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
	if t.cfg.RelayOnly {
		// A relay candidate's related address is the socket it was allocated from: the
		// host's own (private) address, which RelayOnly must not reveal. Browsers send
		// 0.0.0.0 too; ICE does not use it.
		redacted := *cand
		redacted.RelatedAddress, redacted.RelatedPort = "0.0.0.0", 0
		cand = &redacted
	}
	b, err := json.Marshal(cand.ToJSON())
	if err != nil {
		t.log.Warn().Err(err).Msg("encode local ICE candidate")
		return
	}
	t.queueLocalCandidate(c, string(b))
}

// addRemoteCandidate hands a candidate (RTCIceCandidateInit JSON, checked by
// handleCandidate) to pion. c.opMu must be held.
func (t *Transport) addRemoteCandidate(c *conn, candJSON string) {
	var cand webrtc.ICECandidateInit
	if err := json.Unmarshal([]byte(candJSON), &cand); err != nil {
		t.log.Debug().Err(err).Str("peer", short(c.peer)).Msg("decode ICE candidate")
		return
	}
	if err := c.pc.AddICECandidate(cand); err != nil {
		t.log.Debug().Err(err).Str("peer", short(c.peer)).Msg("add ICE candidate")
	}
}

// answerOffer creates the PeerConnection of an incoming attempt and answers
// the offer. c.opMu must be held.
func (t *Transport) answerOffer(c *conn, sdp string) {
	pc, err := t.newPeerConnection(c)
	if err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": "+err.Error())
		return
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		t.log.Warn().Err(err).Str("peer", short(c.peer)).Msg("bad offer")
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

// applyAnswer sets the peer's answer on c's PeerConnection. c.opMu must be held.
func (t *Transport) applyAnswer(c *conn, sdp string) error {
	return c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp})
}

// hasPeerConnection reports whether c's PeerConnection exists. c.opMu must be held.
func (c *conn) hasPeerConnection() bool { return c.pc != nil }

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
