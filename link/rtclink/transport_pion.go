//go:build !js

package rtclink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/sctp"
	"github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/link"
)

// This file is the pion build's stack: the Transport's connections are pion PeerConnections
// in this process.

// initialReadBuffer is the first size of a link's read buffer.
const initialReadBuffer = 4 << 10

// pionStack opens pion PeerConnections that share one API (settings) and the node's
// certificate.
type pionStack struct {
	// api opens the connections this end offers, each on sockets of its own; answerAPI those
	// it answers, on the shared UDP socket when there is one (see Config.UDPSocket), else it
	// is api.
	api, answerAPI *webrtc.API
	cert           webrtc.Certificate
	certHash       []byte // SHA-256 of cert's DER: this end's DTLS fingerprint
	relayOnly      bool
	maxFrameSize   int
	log            zerolog.Logger
	// ownMux is the shared UDP socket New opened for this Transport alone, closed with it.
	ownMux *udpMux
}

var _ stack = (*pionStack)(nil)

// newStack builds the pion API from cfg: its SettingEngine with the fields of cfg applied on
// top, and no media.
func newStack(cfg *Config, log zerolog.Logger) (stack, error) {
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
	if se.LoggerFactory == nil {
		se.LoggerFactory = pionLoggerFactory{log: log}
	}
	newAPI := func(se webrtc.SettingEngine) *webrtc.API {
		return webrtc.NewAPI(
			webrtc.WithSettingEngine(se),
			webrtc.WithMediaEngine(&webrtc.MediaEngine{}),
			webrtc.WithInterceptorRegistry(&interceptor.Registry{}),
		)
	}
	api := newAPI(se)
	answerAPI := api
	var ownMux *udpMux
	if us := cfg.UDPSocket; us.Shared && (cfg.SettingEngine == nil || us.Networks != nil) {
		m, err := newUDPMux(us.Port, us.Networks, log)
		if err != nil {
			return nil, err
		}
		ownMux = m
		se.SetICEUDPMux(m.mux)
		answerAPI = newAPI(se)
	}
	cert, certHash, err := disposableCertificate()
	if err != nil {
		if ownMux != nil {
			_ = ownMux.close()
		}
		return nil, err
	}
	return &pionStack{
		api:          api,
		answerAPI:    answerAPI,
		cert:         cert,
		certHash:     certHash,
		relayOnly:    cfg.RelayOnly,
		maxFrameSize: cfg.MaxFrameSize,
		log:          log,
		ownMux:       ownMux,
	}, nil
}

// close closes the shared UDP socket the stack opened for itself, once its links are closed.
func (s *pionStack) close() error {
	if s.ownMux == nil {
		return nil
	}
	return s.ownMux.close()
}

// pionConn is one link attempt's PeerConnection and data channel.
type pionConn struct {
	pc           *webrtc.PeerConnection
	dc           *webrtc.DataChannel
	h            peerHandlers
	maxFrameSize int
	localHash    []byte // the stack's certHash

	// Set by startChannel, before the link is up; then used by send and by the reader.
	rwc datachannel.ReadWriteCloser
	// buf is the reader's: it starts small and grows to maxFrameSize only if frames need
	// it, so an idle link costs initialReadBuffer here, not MaxFrameSize.
	buf []byte
}

var _ peerConn = (*pionConn)(nil)

func (s *pionStack) newPeerConn(servers []ICEServer, offerer bool, h peerHandlers) (peerConn, error) {
	policy := webrtc.ICETransportPolicyAll
	if s.relayOnly {
		policy = webrtc.ICETransportPolicyRelay
	}
	// Only answered connections use the shared socket. pion's mux tells its connections apart
	// by the peer's address once a check has come from it, so two connections between the
	// same two sockets would steal each other's packets, and two nodes often hold two at once
	// (glare, a successor replacing a live link, a new link while the last one closes). An
	// offered connection has a socket of its own on this end and the peer's shared one on the
	// other, so every connection between two nodes has its own pair of addresses.
	api := s.api
	if !offerer {
		api = s.answerAPI
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		ICEServers:         pionICEServers(servers),
		ICETransportPolicy: policy,
		Certificates:       []webrtc.Certificate{s.cert},
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
	p := &pionConn{pc: pc, dc: dc, h: h, maxFrameSize: s.maxFrameSize, localHash: s.certHash}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) { s.onLocalCandidate(p, cand) })
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateFailed:
			h.down(link.ReasonConnectionFailed)
		case webrtc.PeerConnectionStateClosed:
			// Our own close lands here too; the Transport then ignores it.
			h.down(link.ReasonClosedByPeer)
		}
	})
	dc.OnOpen(func() { h.open(p) })
	return p, nil
}

func (s *pionStack) onLocalCandidate(p *pionConn, cand *webrtc.ICECandidate) {
	if cand == nil { // end of gathering
		return
	}
	if s.relayOnly {
		// A relay candidate's related address is the socket it was allocated from: the
		// host's own (private) address, which RelayOnly must not reveal. Browsers send
		// 0.0.0.0 too; ICE does not use it.
		redacted := *cand
		redacted.RelatedAddress, redacted.RelatedPort = "0.0.0.0", 0
		cand = &redacted
	}
	b, err := json.Marshal(cand.ToJSON())
	if err != nil {
		s.log.Warn().Err(err).Msg("encode local ICE candidate")
		return
	}
	p.h.candidate(string(b))
}

func (p *pionConn) createOffer() (string, error) {
	return p.setLocal("offer", func() (webrtc.SessionDescription, error) { return p.pc.CreateOffer(nil) })
}

func (p *pionConn) setRemoteOffer(sdp string) error {
	return p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp})
}

func (p *pionConn) createAnswer() (string, error) {
	return p.setLocal("answer", func() (webrtc.SessionDescription, error) { return p.pc.CreateAnswer(nil) })
}

// setLocal creates the offer or answer (what) and sets it as the local description.
func (p *pionConn) setLocal(what string, create func() (webrtc.SessionDescription, error)) (string, error) {
	desc, err := create()
	if err != nil {
		return "", fmt.Errorf("create %s: %w", what, err)
	}
	if err := p.pc.SetLocalDescription(desc); err != nil {
		return "", fmt.Errorf("set local %s: %w", what, err)
	}
	return desc.SDP, nil
}

func (p *pionConn) setRemoteAnswer(sdp string) error {
	return p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp})
}

func (p *pionConn) addCandidate(init string) error {
	var cand webrtc.ICECandidateInit
	if err := json.Unmarshal([]byte(init), &cand); err != nil {
		return fmt.Errorf("decode ICE candidate: %w", err)
	}
	return p.pc.AddICECandidate(cand)
}

// fingerprints returns the hashes of the Transport's certificate and of the certificate the
// peer presented in DTLS (pion has checked it against the SDP fingerprint).
func (p *pionConn) fingerprints() (local, remote []byte, err error) {
	der := p.pc.SCTP().Transport().GetRemoteCertificate()
	if len(der) == 0 {
		return nil, nil, errors.New("the peer presented no certificate")
	}
	sum := sha256.Sum256(der)
	return p.localHash, sum[:], nil
}

// disposableCertificate makes the Transport's DTLS certificate: ECDSA P-256, which every
// browser accepts. It proves nothing by itself and lives as long as the Transport; identity
// is proven on top of it by the link proof.
func disposableCertificate() (webrtc.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return webrtc.Certificate{}, nil, fmt.Errorf("rtclink: DTLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return webrtc.Certificate{}, nil, fmt.Errorf("rtclink: DTLS certificate serial: %w", err)
	}
	now := time.Now()
	tpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "rtcmesh"},
		// Backdated a day so a peer with a slightly slow clock accepts it.
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(dtlsCertificateValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return webrtc.Certificate{}, nil, fmt.Errorf("rtclink: DTLS certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return webrtc.Certificate{}, nil, fmt.Errorf("rtclink: DTLS certificate: %w", err)
	}
	sum := sha256.Sum256(der)
	return webrtc.CertificateFromX509(key, cert), sum[:], nil
}

// dtlsCertificateValidity outlives any process: pion refuses an expired certificate, and a
// Transport keeps its certificate for its whole life.
const dtlsCertificateValidity = 10 * 365 * 24 * time.Hour

func (p *pionConn) startChannel() error {
	rwc, err := p.dc.Detach()
	if err != nil {
		return fmt.Errorf("detach data channel: %w", err)
	}
	p.rwc = rwc
	p.buf = make([]byte, min(initialReadBuffer, p.maxFrameSize))
	return nil
}

func (p *pionConn) maxMessageSize() int {
	return int(p.pc.SCTP().GetCapabilities().MaxMessageSize)
}

func (p *pionConn) selectedPair() (local, remote string, ok bool) {
	pair, err := p.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
		return "", "", false
	}
	return pair.Local.Typ.String(), pair.Remote.Typ.String(), true
}

func (p *pionConn) send(msg []byte, text bool) error {
	_, err := p.rwc.WriteDataChannel(msg, text) // copies msg
	return err
}

func (p *pionConn) bufferedAmount() int { return int(p.dc.BufferedAmount()) }

// receive reads the next message straight from SCTP: while the reader does not read, SCTP
// stops accepting data and the peer's sends back up (back-pressure).
func (p *pionConn) receive() (inMessage, error) {
	for {
		n, isString, err := p.rwc.ReadDataChannel(p.buf)
		if errors.Is(err, io.ErrShortBuffer) && len(p.buf) < p.maxFrameSize {
			// A message that does not fit stays queued in SCTP, so the read is simply
			// retried with a larger buffer.
			p.buf = make([]byte, min(2*len(p.buf), p.maxFrameSize))
			continue
		}
		switch {
		case err == nil:
		case errors.Is(err, io.ErrShortBuffer):
			return inMessage{}, downReason(link.ReasonFrameTooLarge)
		case errors.Is(err, io.EOF), errors.Is(err, sctp.ErrChunk):
			// EOF: stream reset; ErrChunk: the peer aborted the association, which is how
			// pion closes a PeerConnection.
			return inMessage{}, downReason(link.ReasonClosedByPeer)
		default:
			return inMessage{}, err
		}
		if !p.h.arrived() {
			continue
		}
		data := make([]byte, n)
		copy(data, p.buf[:n])
		return inMessage{data: data, text: isString}, nil
	}
}

func (p *pionConn) close() error { return p.pc.GracefulClose() }
