package signalserver

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/internal/tokenbucket"
)

// conn is one client connection. The reader goroutine (ServeHTTP's) reads and dispatches
// frames; the writer goroutine owns every write. Closing is one-way: closeWith records the
// final message and close frame once, the writer sends them, waits up to CloseGracePeriod for
// the client's close frame, and drops the socket.
type conn struct {
	srv *Server
	ws  *websocket.Conn
	log zerolog.Logger // immutable: other goroutines log through it

	// Outgoing frames (see queue.go), guarded by outMu; queued (replies and relays, with
	// overhead) is also read without the lock when looking for a connection to evict.
	outMu      sync.Mutex
	replies    [][]byte
	relays     [][]byte
	relayBytes int64
	outClosed  bool
	queued     atomic.Int64
	wake       chan struct{} // capacity 1: something was queued

	closeOnce  sync.Once
	closing    chan struct{} // closed by closeWith
	final      []byte        // frame to send before the close frame, or nil
	closeCode  int
	closeText  string
	readerDone chan struct{}
	writerDone chan struct{}

	// Reader-goroutine state.
	bucket         *tokenbucket.Bucket
	handshakeTimer *time.Timer
	helloSeen      atomic.Bool // read by the handshake timer
	// nonce is this connection's challenge (signaling.NonceSize random bytes), set before
	// the reader starts; nil if the connection was refused before the challenge.
	nonce []byte

	// src is the source the connection was admitted from (its per-source limits); set
	// before the connection is shared, then read under srv.mu.
	src *source

	// Hub state, guarded by srv.mu (id and network are written once, under the lock,
	// by the reader before any other goroutine can see the connection as registered).
	id, network string
	net         *network
	slot        int
	registered  bool
	// registeredAt is when the hello registered the connection, with a Cluster only: the
	// cluster names the connection it replaces by it.
	registeredAt time.Time
	corr         correspondents
}

// closeWith starts closing the connection: final (if non-nil) is sent, then a close frame
// with code and reason. Only the first call has an effect; it reports whether it was first,
// and if so counts a rejection for countAs (unless empty) before the client can see anything.
func (c *conn) closeWith(final signaling.Message, code int, reason string, countAs signaling.ErrorCode) bool {
	first := false
	c.closeOnce.Do(func() {
		first = true
		if countAs != "" {
			c.srv.countRejection(countAs)
		}
		if final != nil {
			b, err := signaling.Marshal(final)
			if err != nil {
				c.log.Error().Err(err).Msg("marshal final message")
			}
			c.final = b
		}
		c.closeCode, c.closeText = code, reason
		close(c.closing)
	})
	return first
}

func (c *conn) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// fatal sends error code with text and closes the connection.
func (c *conn) fatal(code signaling.ErrorCode, text string) {
	if c.closeWith(&signaling.Error{Code: code, Message: boundedString(text), Fatal: true}, closeCodeFor(code), string(code), code) {
		c.log.Info().Str("code", string(code)).Str("reason", text).Msg("closing connection")
	}
}

// closeCodeFor is the WebSocket close code that goes with a fatal error code.
func closeCodeFor(code signaling.ErrorCode) int {
	switch code {
	case signaling.CodeFrameTooLarge:
		return websocket.CloseMessageTooBig
	case signaling.CodeServerFull, signaling.CodeNetworkFull, signaling.CodeSourceFull, signaling.CodeSourceRateLimited:
		return websocket.CloseTryAgainLater
	case signaling.CodeInternal:
		return websocket.CloseInternalServerErr
	}
	return websocket.ClosePolicyViolation
}

// refuse reports a problem with one message. Before hello every problem is fatal: the
// connection has not identified itself, so there is nothing to keep.
func (c *conn) refuse(code signaling.ErrorCode, text, to string) {
	if !c.helloSeen.Load() {
		c.fatal(code, text)
		return
	}
	frame, err := signaling.Marshal(&signaling.Error{Code: code, Message: boundedString(text), To: to})
	if err != nil {
		c.log.Error().Err(err).Msg("marshal error reply")
		return
	}
	c.srv.countRejection(code)
	c.log.Debug().Str("code", string(code)).Str("reason", text).Msg("message refused")
	c.enqueue(frame)
}

// challenge draws the connection's nonce and queues the challenge, the first message the
// client sees.
func (c *conn) challenge() {
	nonce := make([]byte, signaling.NonceSize)
	if _, err := crand.Read(nonce); err != nil {
		c.log.Error().Err(err).Msg("cannot draw a challenge nonce")
		c.fatal(signaling.CodeInternal, "server could not draw a challenge")
		return
	}
	c.nonce = nonce
	c.sendMessage(&signaling.Challenge{Version: signaling.ProtocolVersion, Nonce: signaling.EncodeBinary(nonce), PowBits: c.srv.cfg.PowBits})
}

func (c *conn) handshakeExpired() {
	if !c.helloSeen.Load() {
		c.fatal(signaling.CodeHandshakeTimeout, fmt.Sprintf("no hello within %v", c.srv.cfg.HandshakeTimeout))
	}
}

// readLoop reads frames until the socket fails, then waits for the writer and removes the
// connection from the hub.
func (c *conn) readLoop() {
	cfg := &c.srv.cfg
	c.ws.SetReadDeadline(time.Now().Add(cfg.PongTimeout))
	c.ws.SetPongHandler(func(string) error {
		if !c.isClosing() {
			c.ws.SetReadDeadline(time.Now().Add(cfg.PongTimeout))
		}
		return nil
	})
	var err error
	for {
		var kind int
		var r io.Reader
		kind, r, err = c.ws.NextReader()
		if err != nil {
			break
		}
		if c.isClosing() {
			// Keep reading only to see the client's close frame; NextReader discards
			// the rest of this frame.
			continue
		}
		var data []byte
		data, err = io.ReadAll(io.LimitReader(r, int64(cfg.MaxFrameSize)+1))
		if err != nil {
			break
		}
		c.ws.SetReadDeadline(time.Now().Add(cfg.PongTimeout))
		if len(data) > cfg.MaxFrameSize {
			c.fatal(signaling.CodeFrameTooLarge, fmt.Sprintf("frame exceeds %d bytes", cfg.MaxFrameSize))
			continue
		}
		if !c.bucket.Allow(cfg.Now()) {
			c.fatal(signaling.CodeRateLimited, fmt.Sprintf("more than %v messages per second (burst %d)", cfg.RateLimit, cfg.RateBurst))
			continue
		}
		if kind != websocket.TextMessage {
			c.refuse(signaling.CodeMalformed, "binary frames are not supported; send JSON text frames", "")
			continue
		}
		c.handleFrame(data)
	}
	if c.handshakeTimer != nil {
		c.handshakeTimer.Stop()
	}
	close(c.readerDone)
	if c.closeWith(nil, websocket.CloseNormalClosure, "", "") {
		c.log.Debug().Err(err).Msg("connection ended by client")
	}
	<-c.writerDone
	c.ws.Close()
	c.releaseQueue()
	c.srv.remove(c)
}

func (c *conn) handleFrame(data []byte) {
	helloPhase := !c.helloSeen.Load()
	m, err := signaling.ParseMessage(data, c.srv.cfg.MaxFrameSize)
	if err != nil {
		var me *signaling.MessageError
		if helloPhase && errors.As(err, &me) && me.Type != "" && me.Type != signaling.TypeHello &&
			!errors.Is(err, signaling.ErrUnknownType) {
			c.fatal(signaling.CodeHelloRequired, fmt.Sprintf("first message must be hello, got %s", me.Type))
			return
		}
		if helloPhase && errors.As(err, &me) && errors.Is(err, signaling.ErrUnsupportedVersion) {
			c.fatal(signaling.CodeUnsupportedVersion, fmt.Sprintf("this server speaks signaling protocol %d; %s",
				signaling.ProtocolVersion, me.Detail))
			return
		}
		c.refuse(signaling.CodeFor(err, helloPhase), err.Error(), "")
		return
	}
	if helloPhase {
		h, ok := m.(*signaling.Hello)
		if !ok {
			c.fatal(signaling.CodeHelloRequired, fmt.Sprintf("first message must be hello, got %s", m.Type()))
			return
		}
		c.handleHello(h)
		return
	}
	switch m := m.(type) {
	case *signaling.Offer:
		c.relay(m.To, &signaling.Offer{From: c.id, SDP: m.SDP})
	case *signaling.Answer:
		c.relay(m.To, &signaling.Answer{From: c.id, SDP: m.SDP})
	case *signaling.Candidate:
		c.relay(m.To, &signaling.Candidate{From: c.id, Candidate: m.Candidate})
	case *signaling.PeersRequest:
		c.sendMessage(&signaling.PeerList{Peers: c.srv.samplePeers(c, m.Max)})
	case *signaling.Hello:
		c.refuse(signaling.CodeUnexpectedMessage, "hello was already accepted on this connection", "")
	default:
		c.refuse(signaling.CodeUnexpectedMessage, fmt.Sprintf("%s is sent by the server, not by clients", m.Type()), "")
	}
}

func (c *conn) handleHello(h *signaling.Hello) {
	c.helloSeen.Store(true)
	c.handshakeTimer.Stop()
	if !c.srv.allowHello(c) {
		c.fatal(signaling.CodeSourceRateLimited, fmt.Sprintf("your address %s sent more than %d hellos in a minute",
			sourceName(c.src.key), c.srv.cfg.HellosPerSourcePerMinute))
		return
	}
	// The work comes first: it costs one hash, so a flood of hellos without it never costs
	// a signature check. It reveals nothing (the challenge announced the difficulty).
	if err := c.checkWork(h); err != nil {
		c.fatal(signaling.CodeInsufficientWork, err.Error())
		return
	}
	// The proof comes next: an unproven hello learns nothing about the network (not even
	// whether it is closed) and touches no member and no TURN credential.
	id, err := c.verifyHello(h)
	if err != nil {
		c.fatal(signaling.CodeBadProof, err.Error())
		return
	}
	if get := c.srv.cfg.NetworkSecret; get != nil {
		if secret := get(h.Network); secret != nil && !signaling.VerifyNetworkToken(secret, h.Network, h.Token) {
			what := "wrong token"
			if h.Token == "" {
				what = "missing token"
			}
			c.fatal(signaling.CodeUnauthorized, fmt.Sprintf("network %q is closed: %s", h.Network, what))
			return
		}
	}
	welcome, code, text := c.srv.register(c, id, h)
	if welcome == nil {
		if code == "" {
			c.closeWith(&signaling.Bye{Reason: "server shutting down"}, websocket.CloseGoingAway, "shutting down", "")
		} else {
			c.fatal(code, text)
		}
		return
	}
	frame, err := signaling.Marshal(welcome)
	if err != nil {
		c.log.Error().Err(err).Msg("cannot build welcome (check the ICEServers hook)")
		c.fatal(signaling.CodeInternal, "server could not build the welcome")
		return
	}
	c.log.Debug().Str("id", id).Str("network", h.Network).Int("contacts", len(welcome.Contacts)).Msg("welcomed")
	c.enqueue(frame)
}

// verifyHello checks that h proves possession of the key it carries, for this connection's
// nonce and h's network, and returns the ID derived from that key. The error's text is short
// enough to reach the client whole (it becomes the bad_proof message); the identity error it
// wraps is for errors.Is.
func (c *conn) verifyHello(h *signaling.Hello) (string, error) {
	if c.nonce == nil { // unreachable: hellos are read only after the challenge was queued
		return "", errors.New("this connection has no challenge")
	}
	pub, err := h.PublicKeyBytes()
	if err != nil {
		return "", fmt.Errorf("hello: %w", err)
	}
	sig, err := h.SignatureBytes()
	if err != nil {
		return "", fmt.Errorf("hello: %w", err)
	}
	id := identity.IDFromPublicKey(pub)
	if h.ID != "" && h.ID != id {
		return "", &proofError{msg: "hello.id is not the ID of hello.public_key, " + id, err: identity.ErrKeyMismatch}
	}
	msg := identity.Transcript(identity.LabelSignalingHello, c.nonce, []byte(h.Network))
	if err := identity.Verify(id, pub, msg, sig); err != nil {
		return "", &proofError{msg: "hello.signature does not sign this connection's challenge and network under hello.public_key", err: err}
	}
	return id, nil
}

// checkWork checks that h's work nonce reaches the server's PowBits for h's public key.
func (c *conn) checkWork(h *signaling.Hello) error {
	if c.srv.cfg.PowBits <= 0 {
		return nil
	}
	pub, err := h.PublicKeyBytes()
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	work, err := h.WorkBytes()
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	return identity.CheckWork(pub, work, c.srv.cfg.PowBits)
}

// proofError is a failed proof: a message for the client, and the cause.
type proofError struct {
	msg string
	err error
}

func (e *proofError) Error() string { return e.msg }
func (e *proofError) Unwrap() error { return e.err }

// relay hands m, whose From the caller set to c's proven ID (never to what the client sent),
// to the target's queue.
func (c *conn) relay(to string, m signaling.Message) {
	if to == "" {
		c.refuse(signaling.CodeMalformed, fmt.Sprintf("%s needs a \"to\"", m.Type()), "")
		return
	}
	if to == c.id {
		c.refuse(signaling.CodeUnknownTarget, "cannot relay to yourself", to)
		return
	}
	target := c.srv.lookupTarget(c, to)
	if target == nil {
		if c.relayRemote(to, m) {
			return
		}
		c.refuse(signaling.CodeUnknownTarget, fmt.Sprintf("%q is not connected in network %q", to, c.network), to)
		return
	}
	frame, err := signaling.Marshal(m)
	if err != nil {
		c.log.Error().Err(err).Msg("marshal relay")
		return
	}
	if !target.enqueueRelay(frame) {
		c.refuse(signaling.CodeTargetBusy, fmt.Sprintf("%q has too much waiting to be written; try again later", to), to)
		return
	}
	c.srv.relayed.Add(1)
}

func (c *conn) sendMessage(m signaling.Message) {
	frame, err := signaling.Marshal(m)
	if err != nil {
		c.log.Error().Err(err).Str("type", string(m.Type())).Msg("marshal reply")
		return
	}
	c.enqueue(frame)
}

// writeLoop owns all writes: queued frames, pings, and the final error and close frame.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	cfg := &c.srv.cfg
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	sendPing := func() bool {
		if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)); err != nil {
			c.log.Debug().Err(err).Msg("ping failed")
			return false
		}
		return true
	}
	broken := false
	for !broken {
		select {
		case <-c.closing:
			c.finish(false)
			return
		case <-ping.C: // due even while frames keep coming
			broken = !sendPing()
			continue
		default:
		}
		frame, ok := c.pop()
		if !ok {
			select {
			case <-c.wake:
			case <-ping.C:
				broken = !sendPing()
			case <-c.closing:
			}
			continue
		}
		c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
		if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
			broken = true
			// A write that cannot finish within WriteTimeout means the client is not
			// reading: the same fault as a queue overflow, and counted as one.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if c.closeWith(nil, websocket.CloseAbnormalClosure, "", signaling.CodeSlowConsumer) {
					c.log.Warn().Dur("write_timeout", cfg.WriteTimeout).Msg("write timed out; disconnecting slow consumer")
				}
			} else {
				c.log.Debug().Err(err).Msg("write failed")
			}
		}
	}
	c.closeWith(nil, websocket.CloseAbnormalClosure, "", "")
	c.finish(true)
}

// finish sends the final frames (unless the socket is broken), waits for the client's close
// frame for at most CloseGracePeriod, and drops the socket so the reader ends.
func (c *conn) finish(broken bool) {
	cfg := &c.srv.cfg
	if !broken {
		deadline := time.Now().Add(cfg.WriteTimeout)
		if c.final != nil {
			c.ws.SetWriteDeadline(deadline)
			if err := c.ws.WriteMessage(websocket.TextMessage, c.final); err != nil {
				broken = true
			}
		}
		if !broken && c.closeCode != websocket.CloseAbnormalClosure {
			c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, c.closeText), deadline)
		}
	}
	grace := time.NewTimer(cfg.CloseGracePeriod)
	defer grace.Stop()
	select {
	case <-c.readerDone:
	case <-grace.C:
	}
	c.ws.Close()
}
