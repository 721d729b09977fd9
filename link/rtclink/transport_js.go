//go:build js && wasm

package rtclink

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"syscall/js"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/internal/browser"
	"github.com/rtcmesh/rtcmesh/link"
)

// This file is the browser twin of transport_pion.go: the same Transport API on the
// browser's own RTCPeerConnection, driven through syscall/js. pion's js/wasm build wraps
// RTCPeerConnection too, but it cannot give a connection a certificate, and a node's ID is
// the hash of the one certificate every one of its connections must use. Differences from
// the pion build:
//
//   - The browser decides ICE timeouts, mDNS and candidate gathering: Config.MDNS, the ICE*
//     durations and Config.SettingEngine are ignored.
//   - A page cannot read the peer's certificate, so the identity check compares the claimed
//     ID with every sha-256 a=fingerprint of the peer's SDP; the browser's DTLS handshake
//     has checked the certificate against those fingerprints.
//   - A page cannot stop reading a data channel, so back-pressure cannot reach the sender:
//     a link whose unread frames exceed Config.EventQueueLength is closed instead.

// callbackReleaseDelay is how long a closed connection's callbacks stay installed: the data
// channel may still report its close (or a last message) while the close settles, and an
// event that reached a released Go function would crash the page.
const callbackReleaseDelay = 5 * time.Second

// inMessage is one data channel message waiting for its link's reader.
type inMessage struct {
	data   []byte
	text   string
	isText bool
}

// conn is one link attempt: one RTCPeerConnection (see transport_pion.go).
type conn struct {
	peer      string
	offerer   bool
	dialTimer *time.Timer

	// Guarded by Transport.mu.
	state   connState
	dialed  bool
	path    link.Path
	since   time.Time
	dc      js.Value
	maxSend int

	// Guarded by Transport.queue.mu.
	downQueued bool

	// opMu serialises signalling operations on pc. It is held across promise waits, so
	// JavaScript callbacks never take it (a callback that blocks stalls the page).
	opMu          sync.Mutex
	pc            js.Value // undefined until created
	channel       js.Value // the data channel, from creation (dc is set when it opens)
	remoteDescSet bool
	pendingRemote []string // RTCIceCandidateInit JSON
	funcs         []js.Func

	sigMu        sync.Mutex
	descSent     bool
	pendingLocal []string

	// The inbox takes messages from the data channel's callback to the link's reader.
	inMu    sync.Mutex
	inbox   []inMessage
	inEnded bool
	inWake  chan struct{}

	bytesIn, bytesOut, framesIn, framesOut atomic.Uint64
	rttNanos                               atomic.Int64
	lastRecvNanos                          atomic.Int64
}

// Transport is a link.Transport over the browser's RTCPeerConnection. Create it with New.
type Transport struct {
	cfg  Config
	self string
	cert js.Value
	log  zerolog.Logger

	queue  *eventQueue
	events chan link.Event
	done   chan struct{}
	wg     sync.WaitGroup

	mu         sync.Mutex
	links      map[string]*conn
	iceServers []ICEServer
	closed     bool

	frozen atomic.Bool
}

var _ link.Transport = (*Transport)(nil)

// New validates cfg and starts a Transport.
func New(cfg Config) (*Transport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if js.Global().Get("RTCPeerConnection").Type() != js.TypeFunction {
		return nil, errors.New("rtclink: this browser has no WebRTC (RTCPeerConnection is missing)")
	}
	log := cfg.Logger.With().Str("node", short(cfg.Identity.ID())).Logger()
	t := &Transport{
		cfg:        cfg,
		self:       cfg.Identity.ID(),
		cert:       cfg.Identity.JSCertificate(),
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

// startOffer creates the RTCPeerConnection of an outgoing attempt and sends the offer.
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
	if err := t.setLocal(pc, "createOffer"); err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": "+err.Error())
		return
	}
	t.sendDescription(c, Signal{Type: SignalOffer, SDP: pc.Get("localDescription").Get("sdp").String()})
}

// setLocal runs pc.createOffer or pc.createAnswer and sets the result as the local
// description.
func (t *Transport) setLocal(pc js.Value, create string) error {
	p, err := browser.Call(pc, create)
	if err != nil {
		return err
	}
	desc, err := browser.Await(p)
	if err != nil {
		return fmt.Errorf("%s: %w", create, err)
	}
	if p, err = browser.Call(pc, "setLocalDescription", desc); err != nil {
		return err
	}
	if _, err := browser.Await(p); err != nil {
		return fmt.Errorf("setLocalDescription: %w", err)
	}
	return nil
}

func setRemote(pc js.Value, typ, sdp string) error {
	p, err := browser.Call(pc, "setRemoteDescription", map[string]any{"type": typ, "sdp": sdp})
	if err != nil {
		return err
	}
	if _, err := browser.Await(p); err != nil {
		return fmt.Errorf("setRemoteDescription: %w", err)
	}
	return nil
}

// answerOffer creates the RTCPeerConnection of an incoming attempt and answers the offer.
// c.opMu must be held.
func (t *Transport) answerOffer(c *conn, sdp string) {
	pc, err := t.newPeerConnection(c)
	if err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": "+err.Error())
		return
	}
	if err := setRemote(pc, "offer", sdp); err != nil {
		t.log.Warn().Err(err).Str("peer", short(c.peer)).Msg("bad offer")
		t.closeConn(c, link.ReasonConnectionFailed+": bad offer: "+err.Error())
		return
	}
	c.remoteDescSet = true
	if err := t.setLocal(pc, "createAnswer"); err != nil {
		t.closeConn(c, link.ReasonConnectionFailed+": "+err.Error())
		return
	}
	t.sendDescription(c, Signal{Type: SignalAnswer, SDP: pc.Get("localDescription").Get("sdp").String()})
}

// applyAnswer sets the peer's answer. c.opMu must be held.
func (t *Transport) applyAnswer(c *conn, sdp string) error { return setRemote(c.pc, "answer", sdp) }

// hasPeerConnection reports whether c's RTCPeerConnection exists. c.opMu must be held.
func (c *conn) hasPeerConnection() bool { return c.pc.Truthy() }

// addRemoteCandidate hands a candidate (RTCIceCandidateInit JSON, checked by handleCandidate)
// to the browser. c.opMu must be held.
func (t *Transport) addRemoteCandidate(c *conn, candJSON string) {
	init, err := browser.Call(js.Global().Get("JSON"), "parse", candJSON)
	if err == nil {
		var p js.Value
		if p, err = browser.Call(c.pc, "addIceCandidate", init); err == nil {
			_, err = browser.Await(p)
		}
	}
	if err != nil {
		t.log.Debug().Err(err).Str("peer", short(c.peer)).Msg("add ICE candidate")
	}
}

// newPeerConnection creates c's RTCPeerConnection and its pre-negotiated data channel and
// installs their callbacks. c.opMu must be held.
func (t *Transport) newPeerConnection(c *conn) (pc js.Value, err error) {
	t.mu.Lock()
	servers := make([]any, 0, len(t.iceServers))
	for _, s := range t.iceServers {
		urls := make([]any, len(s.URLs))
		for i, u := range s.URLs {
			urls[i] = u
		}
		server := map[string]any{"urls": urls}
		if s.Username != "" {
			server["username"] = s.Username
		}
		if s.Credential != "" {
			server["credential"] = s.Credential
		}
		servers = append(servers, server)
	}
	t.mu.Unlock()
	policy := "all"
	if t.cfg.RelayOnly {
		policy = "relay"
	}
	pc, err = browser.New(js.Global().Get("RTCPeerConnection"), map[string]any{
		"iceServers":         servers,
		"iceTransportPolicy": policy,
		"certificates":       []any{t.cert},
	})
	if err != nil {
		return js.Value{}, fmt.Errorf("new peer connection: %w", err)
	}
	dc, err := browser.Call(pc, "createDataChannel", "rtcmesh", map[string]any{
		"negotiated": true, "id": int(dataChannelID), "ordered": true,
	})
	if err != nil {
		pc.Call("close")
		return js.Value{}, fmt.Errorf("create data channel: %w", err)
	}
	dc.Set("binaryType", "arraybuffer")
	c.pc, c.channel = pc, dc
	c.inWake = make(chan struct{}, 1)
	on := func(target js.Value, event string, handler func(ev js.Value)) {
		c.funcs = append(c.funcs, browser.On(target, event, handler))
	}
	// Callbacks hand their work to goroutines or to the inbox: they must not block.
	on(pc, "icecandidate", func(ev js.Value) {
		cand := ev.Get("candidate")
		if !cand.Truthy() || cand.Get("candidate").String() == "" { // end of gathering
			return
		}
		b := js.Global().Get("JSON").Call("stringify", cand.Call("toJSON")).String()
		go t.queueLocalCandidate(c, b)
	})
	on(pc, "connectionstatechange", func(js.Value) {
		switch pc.Get("connectionState").String() {
		case "failed":
			go t.closeConn(c, link.ReasonConnectionFailed)
		case "closed":
			go t.closeConn(c, link.ReasonClosedByPeer)
		}
	})
	on(dc, "open", func(js.Value) { go t.onOpen(c, pc, dc) })
	on(dc, "close", func(js.Value) { go t.closeConn(c, link.ReasonClosedByPeer) })
	on(dc, "message", func(ev js.Value) { t.onMessage(c, ev.Get("data")) })
	return pc, nil
}

// onMessage runs in the data channel's callback: it queues the message for the link's reader.
func (t *Transport) onMessage(c *conn, data js.Value) {
	if t.frozen.Load() {
		return
	}
	var m inMessage
	var size int
	if data.Type() == js.TypeString {
		m = inMessage{text: data.String(), isText: true}
		size = len(m.text)
	} else {
		m = inMessage{data: browser.Bytes(data)}
		size = len(m.data)
	}
	if size > t.cfg.MaxFrameSize {
		t.log.Warn().Str("peer", short(c.peer)).Int("limit", t.cfg.MaxFrameSize).
			Msg("peer sent a frame above the limit; closing link")
		go t.closeConn(c, link.ReasonFrameTooLarge)
		return
	}
	c.lastRecvNanos.Store(time.Now().UnixNano())
	c.inMu.Lock()
	defer c.inMu.Unlock()
	if c.inEnded {
		return
	}
	if len(c.inbox) >= t.cfg.EventQueueLength {
		c.inEnded = true
		go t.closeConn(c, link.ReasonConnectionFailed+": receive queue overflow")
		return
	}
	c.inbox = append(c.inbox, m)
	select {
	case c.inWake <- struct{}{}:
	default:
	}
}

// onOpen runs when the data channel opens: it checks the peer's identity, learns the path
// and reports the link.
func (t *Transport) onOpen(c *conn, pc, dc js.Value) {
	if err := checkFingerprints(pc.Get("remoteDescription").Get("sdp").String(), c.peer); err != nil {
		t.log.Warn().Err(err).Str("claimed", c.peer).Msg("identity mismatch; closing link")
		t.closeConn(c, link.ReasonIdentityMismatch)
		return
	}
	path := t.pathOf(pc)
	maxSend := t.cfg.MaxFrameSize
	if sctp := pc.Get("sctp"); sctp.Truthy() {
		if m := sctp.Get("maxMessageSize").Float(); m > 0 && !math.IsInf(m, 0) && m < float64(maxSend) {
			maxSend = int(m) // the peer accepts less than we would send
		}
	}
	now := time.Now()
	t.mu.Lock()
	if c.state != stateOpening {
		t.mu.Unlock()
		return
	}
	c.state = stateUp
	c.dc, c.path, c.since, c.maxSend = dc, path, now, maxSend
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
		t.readLoop(c)
	}()
}

// pathOf reads the selected candidate pair from the connection's statistics and maps it to a
// Path by the same rule as the pion build.
func (t *Transport) pathOf(pc js.Value) link.Path {
	p, err := browser.Call(pc, "getStats")
	if err != nil {
		return ""
	}
	report, err := browser.Await(p)
	if err != nil {
		t.log.Debug().Err(err).Msg("getStats")
		return ""
	}
	var pairID string
	var pairs []js.Value
	each := js.FuncOf(func(_ js.Value, args []js.Value) any {
		s := args[0]
		switch s.Get("type").String() {
		case "transport":
			if id := s.Get("selectedCandidatePairId"); id.Type() == js.TypeString {
				pairID = id.String()
			}
		case "candidate-pair":
			pairs = append(pairs, s)
		}
		return nil
	})
	report.Call("forEach", each)
	each.Release()
	var pair js.Value
	if pairID != "" {
		pair = report.Call("get", pairID)
	} else { // Firefox marks the pair instead
		for _, cp := range pairs {
			if cp.Get("selected").Truthy() || (cp.Get("nominated").Truthy() && cp.Get("state").String() == "succeeded") {
				pair = cp
				break
			}
		}
	}
	if !pair.Truthy() {
		return ""
	}
	typeOf := func(id js.Value) string {
		if id.Type() != js.TypeString {
			return ""
		}
		if c := report.Call("get", id); c.Truthy() {
			return c.Get("candidateType").String()
		}
		return ""
	}
	local, remote := typeOf(pair.Get("localCandidateId")), typeOf(pair.Get("remoteCandidateId"))
	has := func(typ string) bool { return local == typ || remote == typ }
	switch {
	case has("relay"):
		return link.PathRelay
	case has("srflx"):
		return link.PathSrflx
	case has("prflx"):
		return link.PathPrflx
	default:
		return link.PathHost
	}
}

// readLoop hands the link's messages, in order, to the event queue (frames) or to the link's
// control handling (text).
func (t *Transport) readLoop(c *conn) {
	for {
		c.inMu.Lock()
		if c.inEnded {
			c.inMu.Unlock()
			return
		}
		if len(c.inbox) == 0 {
			c.inMu.Unlock()
			select {
			case <-c.inWake:
				continue
			case <-t.done:
				return
			}
		}
		m := c.inbox[0]
		c.inbox[0] = inMessage{}
		c.inbox = c.inbox[1:]
		c.inMu.Unlock()
		if m.isText {
			t.handleControl(c, m.text)
			continue
		}
		c.bytesIn.Add(uint64(len(m.data)))
		c.framesIn.Add(1)
		if !t.queue.pushFrame(c, link.Event{Type: link.Frame, Peer: c.peer, Data: m.data}) {
			return
		}
	}
}

func (t *Transport) writeText(c *conn, s string) {
	t.mu.Lock()
	dc := c.dc
	t.mu.Unlock()
	if !dc.Truthy() {
		return
	}
	if _, err := browser.Call(dc, "send", s); err != nil {
		t.log.Debug().Err(err).Str("peer", short(c.peer)).Msg("write control message")
	}
}

// Send implements link.Transport.
func (t *Transport) Send(peer string, frame []byte) error {
	if t.frozen.Load() {
		return nil
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
	dc, maxSend := c.dc, c.maxSend
	t.mu.Unlock()
	if len(frame) > maxSend {
		return fmt.Errorf("%w: %d bytes, limit %d", link.ErrFrameTooLarge, len(frame), maxSend)
	}
	if dc.Get("bufferedAmount").Int()+len(frame) > t.cfg.SendBufferBytes {
		return link.ErrQueueFull
	}
	if _, err := browser.Call(dc, "send", browser.Uint8Array(frame)); err != nil {
		return fmt.Errorf("%w: %v", link.ErrNoLink, err)
	}
	c.bytesOut.Add(uint64(len(frame)))
	c.framesOut.Add(1)
	return nil
}

// shutdown says goodbye on an open link, closes the RTCPeerConnection and releases its
// callbacks.
func (t *Transport) shutdown(c *conn, wasUp bool, reason string) {
	c.inMu.Lock()
	c.inEnded = true
	c.inbox = nil
	if c.inWake != nil {
		select {
		case c.inWake <- struct{}{}:
		default:
		}
	}
	c.inMu.Unlock()
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if !c.pc.Truthy() {
		return
	}
	if wasUp && reason != link.ReasonClosedByPeer && !strings.HasPrefix(reason, link.ReasonClosedByPeer+":") {
		t.mu.Lock()
		dc := c.dc
		t.mu.Unlock()
		t.writeText(c, "bye "+reason)
		deadline := time.Now().Add(byeFlushTimeout)
		for dc.Get("bufferedAmount").Int() > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, name := range []string{"onicecandidate", "onconnectionstatechange"} {
		c.pc.Set(name, js.Null())
	}
	if _, err := browser.Call(c.pc, "close"); err != nil {
		t.log.Debug().Err(err).Str("peer", short(c.peer)).Msg("close peer connection")
	}
	// The data channel's handlers may still fire once more while the close settles; release
	// the callbacks a little later so that no event reaches a released function.
	funcs, channel := c.funcs, c.channel
	c.funcs = nil
	time.AfterFunc(callbackReleaseDelay, func() {
		for _, name := range []string{"onopen", "onclose", "onmessage"} {
			channel.Set(name, js.Null())
		}
		for _, f := range funcs {
			f.Release()
		}
	})
}
