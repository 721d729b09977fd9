//go:build js && wasm

package rtclink

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"syscall/js"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/internal/browser"
	"github.com/rtcmesh/rtcmesh/link"
)

// This file is the browser build's stack: the Transport's connections are the page's own
// RTCPeerConnections, driven through syscall/js. As in the pion build, the Transport makes one
// disposable DTLS certificate (RTCPeerConnection.generateCertificate, ECDSA P-256) and gives it
// to every connection; identity is proven on top of it by the link proof (proof.go), signed
// with Config.Key (WebCrypto). Differences from the pion build:
//
//   - The browser decides ICE timeouts, mDNS and candidate gathering: Config.MDNS, the ICE*
//     durations and Config.SettingEngine are ignored.
//   - A page cannot read the peer's certificate, so the peer's fingerprint for the link proof
//     is the sha-256 a=fingerprint of the peer's SDP (sdpFingerprint), which the browser's
//     DTLS handshake has checked the certificate against.
//   - A page cannot stop reading a data channel, so back-pressure cannot reach the sender:
//     a link whose unread frames exceed Config.EventQueueLength is closed instead.
//   - No JavaScript callback may block (it would stall the page), so callbacks hand their
//     work to goroutines, or messages to the connection's inbox.

// callbackReleaseDelay is how long a closed connection's callbacks stay installed: the data
// channel may still report its close (or a last message) while the close settles, and an
// event that reached a released Go function would crash the page.
const callbackReleaseDelay = 5 * time.Second

// browserStack opens the page's RTCPeerConnections with the Transport's certificate.
type browserStack struct {
	cert             js.Value
	certHash         []byte // SHA-256 of cert: this end's DTLS fingerprint
	relayOnly        bool
	maxFrameSize     int
	eventQueueLength int
}

var _ stack = (*browserStack)(nil)

// newStack makes the Transport's certificate. It waits for the browser, so New must be called
// from a goroutine, never from a JavaScript callback.
func newStack(cfg *Config, _ zerolog.Logger) (stack, error) {
	if js.Global().Get("RTCPeerConnection").Type() != js.TypeFunction {
		return nil, errors.New("rtclink: this browser has no WebRTC (RTCPeerConnection is missing)")
	}
	cert, certHash, err := disposableCertificate()
	if err != nil {
		return nil, err
	}
	return &browserStack{
		cert:             cert,
		certHash:         certHash,
		relayOnly:        cfg.RelayOnly,
		maxFrameSize:     cfg.MaxFrameSize,
		eventQueueLength: cfg.EventQueueLength,
	}, nil
}

// disposableCertificate asks the browser for the Transport's DTLS certificate (ECDSA P-256,
// which every browser and pion accept) and returns it with its SHA-256 fingerprint. It proves
// nothing by itself and lives as long as the Transport.
func disposableCertificate() (js.Value, []byte, error) {
	params := map[string]any{"name": "ECDSA", "namedCurve": "P-256"}
	p, err := browser.Call(js.Global().Get("RTCPeerConnection"), "generateCertificate", params)
	if err != nil {
		return js.Value{}, nil, fmt.Errorf("rtclink: DTLS certificate: %w", err)
	}
	cert, err := browser.Await(p)
	if err != nil {
		return js.Value{}, nil, fmt.Errorf("rtclink: DTLS certificate: %w", err)
	}
	hash, err := certificateFingerprint(cert)
	if err != nil {
		return js.Value{}, nil, fmt.Errorf("rtclink: DTLS certificate: %w", err)
	}
	return cert, hash, nil
}

// certificateFingerprint returns the sha-256 fingerprint of a browser certificate.
// RTCCertificate.getFingerprints is not in every browser (Firefox lacks it); without it the
// fingerprint is read from the SDP of an offer made with the certificate, which is where
// peers read it too.
func certificateFingerprint(cert js.Value) ([]byte, error) {
	if cert.Get("getFingerprints").Type() == js.TypeFunction {
		fps, err := browser.Call(cert, "getFingerprints")
		if err != nil {
			return nil, fmt.Errorf("fingerprints: %w", err)
		}
		for i := 0; i < fps.Length(); i++ {
			fp := fps.Index(i)
			if fp.Get("algorithm").Type() != js.TypeString || fp.Get("value").Type() != js.TypeString {
				continue
			}
			if hash, err := parseFingerprint(fp.Get("algorithm").String() + " " + fp.Get("value").String()); err == nil {
				return hash, nil
			}
		}
		return nil, errors.New("the browser gave the certificate no sha-256 fingerprint")
	}
	pc, err := browser.New(js.Global().Get("RTCPeerConnection"), map[string]any{"certificates": []any{cert}})
	if err != nil {
		return nil, fmt.Errorf("peer connection to read the fingerprint: %w", err)
	}
	defer pc.Call("close")
	if _, err := browser.Call(pc, "createDataChannel", "fingerprint"); err != nil {
		return nil, fmt.Errorf("offer to read the fingerprint: %w", err)
	}
	p, err := browser.Call(pc, "createOffer")
	if err != nil {
		return nil, fmt.Errorf("offer to read the fingerprint: %w", err)
	}
	offer, err := browser.Await(p)
	if err != nil {
		return nil, fmt.Errorf("offer to read the fingerprint: %w", err)
	}
	hash, err := sdpFingerprint(offer.Get("sdp").String())
	if err != nil {
		return nil, fmt.Errorf("offer to read the fingerprint: %w", err)
	}
	return hash, nil
}

// browserConn is one link attempt's RTCPeerConnection and data channel.
type browserConn struct {
	pc, dc           js.Value
	localHash        []byte // the stack's certHash
	h                peerHandlers
	maxFrameSize     int
	eventQueueLength int
	funcs            []js.Func // released by close

	// The inbox takes messages from the data channel's callback to the link's reader.
	inMu   sync.Mutex
	inbox  []inMessage
	inErr  error // set when the inbox takes no more: receive returns it
	inWake chan struct{}
}

var _ peerConn = (*browserConn)(nil)

// close has nothing to release: the page owns its sockets.
func (s *browserStack) close() error { return nil }

func (s *browserStack) newPeerConn(servers []ICEServer, _ bool, h peerHandlers) (peerConn, error) {
	jsServers := make([]any, 0, len(servers))
	for _, s := range servers {
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
		jsServers = append(jsServers, server)
	}
	policy := "all"
	if s.relayOnly {
		policy = "relay"
	}
	pc, err := browser.New(js.Global().Get("RTCPeerConnection"), map[string]any{
		"iceServers":         jsServers,
		"iceTransportPolicy": policy,
		"certificates":       []any{s.cert},
	})
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	dc, err := browser.Call(pc, "createDataChannel", "rtcmesh", map[string]any{
		"negotiated": true, "id": int(dataChannelID), "ordered": true,
	})
	if err != nil {
		pc.Call("close")
		return nil, fmt.Errorf("create data channel: %w", err)
	}
	dc.Set("binaryType", "arraybuffer")
	b := &browserConn{
		pc: pc, dc: dc, h: h,
		localHash:        s.certHash,
		maxFrameSize:     s.maxFrameSize,
		eventQueueLength: s.eventQueueLength,
		inWake:           make(chan struct{}, 1),
	}
	on := func(target js.Value, event string, handler func(ev js.Value)) {
		b.funcs = append(b.funcs, browser.On(target, event, handler))
	}
	on(pc, "icecandidate", func(ev js.Value) {
		cand := ev.Get("candidate")
		if !cand.Truthy() || cand.Get("candidate").String() == "" { // end of gathering
			return
		}
		init := js.Global().Get("JSON").Call("stringify", cand.Call("toJSON")).String()
		go h.candidate(init)
	})
	on(pc, "connectionstatechange", func(js.Value) {
		switch pc.Get("connectionState").String() {
		case "failed":
			go h.down(link.ReasonConnectionFailed)
		case "closed":
			go h.down(link.ReasonClosedByPeer)
		}
	})
	on(dc, "open", func(js.Value) { go h.open(b) })
	on(dc, "close", func(js.Value) { go h.down(link.ReasonClosedByPeer) })
	on(dc, "message", func(ev js.Value) { b.onMessage(ev.Get("data")) })
	return b, nil
}

// onMessage runs in the data channel's callback: it queues the message for the link's reader.
func (b *browserConn) onMessage(data js.Value) {
	if !b.h.arrived() {
		return
	}
	var m inMessage
	if data.Type() == js.TypeString {
		m = inMessage{data: []byte(data.String()), text: true}
	} else {
		m = inMessage{data: browser.Bytes(data)}
	}
	b.inMu.Lock()
	defer b.inMu.Unlock()
	if b.inErr != nil {
		return
	}
	var reason string
	switch {
	case len(m.data) > b.maxFrameSize:
		reason = link.ReasonFrameTooLarge
	case len(b.inbox) >= b.eventQueueLength:
		reason = link.ReasonConnectionFailed + ": receive queue overflow"
	default:
		b.inbox = append(b.inbox, m)
		b.wakeLocked()
		return
	}
	// The reader may not run yet (the link is not up), so the link is closed from here too.
	b.inErr = downReason(reason)
	b.wakeLocked()
	go b.h.down(reason)
}

// wakeLocked wakes the reader. b.inMu must be held.
func (b *browserConn) wakeLocked() {
	select {
	case b.inWake <- struct{}{}:
	default:
	}
}

// setLocal runs pc.createOffer or pc.createAnswer, sets the result as the local description
// and returns its SDP.
func (b *browserConn) setLocal(create string) (string, error) {
	p, err := browser.Call(b.pc, create)
	if err != nil {
		return "", err
	}
	desc, err := browser.Await(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", create, err)
	}
	if p, err = browser.Call(b.pc, "setLocalDescription", desc); err != nil {
		return "", err
	}
	if _, err := browser.Await(p); err != nil {
		return "", fmt.Errorf("setLocalDescription: %w", err)
	}
	return b.pc.Get("localDescription").Get("sdp").String(), nil
}

func (b *browserConn) setRemote(typ, sdp string) error {
	p, err := browser.Call(b.pc, "setRemoteDescription", map[string]any{"type": typ, "sdp": sdp})
	if err != nil {
		return err
	}
	if _, err := browser.Await(p); err != nil {
		return fmt.Errorf("setRemoteDescription: %w", err)
	}
	return nil
}

func (b *browserConn) createOffer() (string, error)     { return b.setLocal("createOffer") }
func (b *browserConn) setRemoteOffer(sdp string) error  { return b.setRemote("offer", sdp) }
func (b *browserConn) createAnswer() (string, error)    { return b.setLocal("createAnswer") }
func (b *browserConn) setRemoteAnswer(sdp string) error { return b.setRemote("answer", sdp) }

// fingerprints returns the hash of the Transport's certificate and the peer's fingerprint
// from its session description: a page cannot read the peer's certificate, but the browser's
// DTLS handshake has verified it against that fingerprint (and sdpFingerprint refuses a
// description that announces two).
func (b *browserConn) fingerprints() (local, remote []byte, err error) {
	desc := b.pc.Get("remoteDescription")
	if desc.Type() != js.TypeObject || desc.Get("sdp").Type() != js.TypeString {
		return nil, nil, errors.New("the connection has no remote description")
	}
	remote, err = sdpFingerprint(desc.Get("sdp").String())
	if err != nil {
		return nil, nil, fmt.Errorf("the peer's fingerprint: %w", err)
	}
	return b.localHash, remote, nil
}

func (b *browserConn) startChannel() error { return nil } // messages flow from the callback already
func (b *browserConn) bufferedAmount() int { return b.dc.Get("bufferedAmount").Int() }

func (b *browserConn) addCandidate(init string) error {
	v, err := browser.Call(js.Global().Get("JSON"), "parse", init)
	if err != nil {
		return err
	}
	p, err := browser.Call(b.pc, "addIceCandidate", v)
	if err != nil {
		return err
	}
	_, err = browser.Await(p)
	return err
}

func (b *browserConn) maxMessageSize() int {
	sctp := b.pc.Get("sctp")
	if !sctp.Truthy() {
		return 0
	}
	m := sctp.Get("maxMessageSize").Float()
	if m <= 0 || math.IsInf(m, 0) || math.IsNaN(m) {
		return 0
	}
	return int(min(m, math.MaxInt32))
}

// selectedPair reads the selected candidate pair from the connection's statistics.
func (b *browserConn) selectedPair() (local, remote string, ok bool) {
	p, err := browser.Call(b.pc, "getStats")
	if err != nil {
		return "", "", false
	}
	report, err := browser.Await(p)
	if err != nil {
		return "", "", false
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
		return "", "", false
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
	return typeOf(pair.Get("localCandidateId")), typeOf(pair.Get("remoteCandidateId")), true
}

func (b *browserConn) send(msg []byte, text bool) error {
	var v any = browser.Uint8Array(msg)
	if text {
		v = string(msg)
	}
	_, err := browser.Call(b.dc, "send", v)
	return err
}

// receive takes the next message from the inbox, waiting for one.
func (b *browserConn) receive() (inMessage, error) {
	for {
		b.inMu.Lock()
		if b.inErr != nil {
			b.inMu.Unlock()
			return inMessage{}, b.inErr
		}
		if len(b.inbox) > 0 {
			m := b.inbox[0]
			b.inbox[0] = inMessage{}
			b.inbox = b.inbox[1:]
			b.inMu.Unlock()
			return m, nil
		}
		b.inMu.Unlock()
		<-b.inWake
	}
}

// close ends the inbox, closes the RTCPeerConnection and releases its callbacks.
func (b *browserConn) close() error {
	b.inMu.Lock()
	b.inErr = errConnClosed
	b.inbox = nil
	b.wakeLocked()
	b.inMu.Unlock()
	for _, name := range []string{"onicecandidate", "onconnectionstatechange"} {
		b.pc.Set(name, js.Null())
	}
	_, err := browser.Call(b.pc, "close")
	// The data channel's handlers may still fire once more while the close settles; release
	// the callbacks a little later so that no event reaches a released function.
	funcs, dc := b.funcs, b.dc
	b.funcs = nil
	time.AfterFunc(callbackReleaseDelay, func() {
		for _, name := range []string{"onopen", "onclose", "onmessage"} {
			dc.Set(name, js.Null())
		}
		for _, f := range funcs {
			f.Release()
		}
	})
	return err
}
