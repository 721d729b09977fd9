// Package signalclient is the Go client of rtcmesh's signaling service. A Client keeps one
// WebSocket session to the server alive: it answers the server's challenge with a hello
// signed by the node's identity key (Config.Key), hands the application the welcome
// and every relayed offer, answer and candidate as Events, and reconnects with jittered
// exponential backoff whenever the session ends. While the server is away the application
// keeps working; Send methods then return ErrNotConnected.
//
// All WebSocket library calls sit behind the transport interface (transport.go) so that a
// browser twin (transport_js.go) can be added without touching the rest.
package signalclient

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/internal/tokenbucket"
)

// Errors returned by Send methods and Run.
var (
	// ErrNotConnected: no session with a welcome is up; the client is (re)connecting.
	ErrNotConnected = errors.New("signalclient: not connected to the signaling server")
	// ErrRateLimited: sending now would exceed the rate the server announced; the frame was
	// not sent (the server would have disconnected the client). Try again shortly.
	ErrRateLimited = errors.New("signalclient: send rate limit reached")
	// ErrSendQueueFull: Config.SendQueueLength frames are already waiting to be written.
	ErrSendQueueFull = errors.New("signalclient: send queue full")
	// ErrFrameTooLarge: the message exceeds the server's announced frame limit.
	ErrFrameTooLarge = errors.New("signalclient: message exceeds the server's frame limit")
	// ErrAlreadyRunning: Run was called twice.
	ErrAlreadyRunning = errors.New("signalclient: Run already called")
	// ErrServerGoingAway: the server said bye (it is shutting down); the client reconnects.
	ErrServerGoingAway = errors.New("signalclient: server going away")
	// ErrUnsupportedVersion: the server's challenge is of another signaling protocol version.
	// Run returns it: reconnecting would not change the server.
	ErrUnsupportedVersion = errors.New("signalclient: the server speaks another signaling protocol version")
	// ErrTooMuchWork: the server's challenge asks for more proof of work than the client's
	// MaxPowBits allows. Run returns it: reconnecting would not change the server.
	ErrTooMuchWork = errors.New("signalclient: the server asks for more proof of work than MaxPowBits allows")
)

// Event is something the application should know about. Exactly one field is set.
type Event struct {
	// Message is a message from the server: *signaling.Welcome (a session started),
	// *signaling.Offer, *signaling.Answer, *signaling.Candidate (with From set),
	// *signaling.PeerList, *signaling.PeerLeft, or a non-fatal *signaling.Error.
	Message signaling.Message
	// Disconnected is set when a session that had been welcomed ended; the error says why
	// (a *signaling.Error for fatal server errors, ErrServerGoingAway, or a transport error).
	// Unless Run returns, the client is reconnecting.
	Disconnected error
}

// Stats counts what the client has done, for metrics and tests.
type Stats struct {
	// Sessions counts welcomes received.
	Sessions uint64
	// DialFailures counts sessions that ended before a welcome.
	DialFailures uint64
	// EventsDropped counts events dropped because the event queue was full.
	EventsDropped uint64
	// Sent counts frames handed to the writer; Received counts frames parsed.
	Sent, Received uint64
	// Failovers counts moves to the next of several server URLs (Config.FallbackURLs) after
	// a session ended or a dial failed.
	Failovers uint64
}

// Client keeps a signaling session alive. Create it with New, run Run in a goroutine, read
// Events, and call the Send methods from any goroutine.
type Client struct {
	cfg    Config
	id     string // cfg.Key.ID()
	log    zerolog.Logger
	rng    *rand.Rand // used only by the Run goroutine
	events chan Event
	// urls is Config.URL then Config.FallbackURLs, and current the index of the one the next
	// session dials; used only by the Run goroutine.
	urls    []string
	current int

	mu      sync.Mutex
	running bool
	sess    *session // the welcomed session, nil while (re)connecting
	stats   Stats
}

// session is one welcomed connection.
type session struct {
	welcome *signaling.Welcome
	send    chan []byte
	pacer   *tokenbucket.Bucket // nil when the server announced no rate; guarded by Client.mu
	// writerDone is closed when the session's writer goroutine has ended.
	writerDone chan struct{}
}

// New validates cfg and returns a client. Nothing happens until Run.
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	rng := cfg.Rand
	if rng == nil {
		var seed [16]byte
		if _, err := crand.Read(seed[:]); err != nil {
			return nil, fmt.Errorf("signalclient: seeding random source: %w", err)
		}
		rng = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	id := cfg.Key.ID()
	return &Client{
		cfg:    cfg,
		id:     id,
		log:    cfg.Logger.With().Str("id", id).Str("network", cfg.Network).Logger(),
		rng:    rng,
		events: make(chan Event, cfg.EventQueueLength),
		urls:   append([]string{cfg.URL}, cfg.FallbackURLs...),
	}, nil
}

// ID is the client's node ID, the ID of Config.Key.
func (c *Client) ID() string { return c.id }

// Events delivers events in order, holding at most Config.EventQueueLength (the oldest is
// dropped when full). It is closed when Run returns.
func (c *Client) Events() <-chan Event { return c.events }

// Connected reports whether a welcomed session is up.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// SendOffer relays an SDP offer to the peer with ID to.
func (c *Client) SendOffer(to, sdp string) error {
	return c.send(&signaling.Offer{To: to, SDP: sdp})
}

// SendAnswer relays an SDP answer to the peer with ID to.
func (c *Client) SendAnswer(to, sdp string) error {
	return c.send(&signaling.Answer{To: to, SDP: sdp})
}

// SendCandidate relays one ICE candidate (opaque, e.g. JSON of RTCIceCandidateInit) to to.
func (c *Client) SendCandidate(to, candidate string) error {
	return c.send(&signaling.Candidate{To: to, Candidate: candidate})
}

// RequestPeers asks for a random sample of up to max live peers (0: the server's default);
// the answer arrives as a *signaling.PeerList event.
func (c *Client) RequestPeers(max int) error {
	return c.send(&signaling.PeersRequest{Max: max})
}

// send never blocks: the frame is queued for the session's writer or refused with an error.
func (c *Client) send(m signaling.Message) error {
	frame, err := signaling.Marshal(m)
	if err != nil {
		return fmt.Errorf("signalclient: send %s: %w", m.Type(), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sess
	if s == nil {
		return ErrNotConnected
	}
	if limit := s.welcome.Limits.MaxFrameSize; limit > 0 && len(frame) > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(frame), limit)
	}
	if s.pacer != nil && !s.pacer.Allow(c.cfg.Now()) {
		return ErrRateLimited
	}
	select {
	case s.send <- frame:
		c.stats.Sent++
		return nil
	default:
		return ErrSendQueueFull
	}
}

// Run connects, keeps the session alive and reconnects until ctx is done (it then returns
// ctx.Err()) or the server refuses the client for a reason that retrying cannot fix: it then
// returns an error wrapping the server's *signaling.Error with code replaced (another
// connection proved this node's key: the key is in use elsewhere), unauthorized, bad_hello,
// bad_proof, unsupported_version or origin_not_allowed, or wrapping ErrUnsupportedVersion
// (the server speaks another protocol version) or ErrTooMuchWork (it asks for more proof of
// work than MaxPowBits). Run closes the Events channel when it
// returns and may be called only once.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return ErrAlreadyRunning
	}
	c.running = true
	c.mu.Unlock()
	defer close(c.events)

	attempt := 0
	tried := 0 // URLs tried since the last welcome or full round, for failover
	for {
		welcomed, err := c.runSession(ctx)
		if ctx.Err() != nil {
			if welcomed {
				c.emit(Event{Disconnected: ctx.Err()})
			}
			return ctx.Err()
		}
		if welcomed {
			c.emit(Event{Disconnected: err})
			attempt, tried = 0, 0
		} else {
			c.mu.Lock()
			c.stats.DialFailures++
			c.mu.Unlock()
		}
		if permanent(err) {
			c.log.Error().Err(err).Msg("server refused this client; not reconnecting")
			var se *signaling.Error
			if errors.As(err, &se) && se.Code == signaling.CodeReplaced {
				return fmt.Errorf("signalclient: another connection proved this node's identity key (id %s) to the server, "+
					"so the key is in use elsewhere (another instance of this node?); not reconnecting: %w", c.id, err)
			}
			return fmt.Errorf("signalclient: %w", err)
		}
		// With several URLs, the next session dials the next one. Another instance sharing
		// the networks (see package signalnats) serves the node as well, so the first
		// failover is quick; only after every URL failed in a row does the backoff grow.
		tried++
		delay := c.backoff(0)
		if tried >= len(c.urls) {
			tried = 0
			delay = c.backoff(attempt)
			attempt++
		}
		if len(c.urls) > 1 {
			c.current = (c.current + 1) % len(c.urls)
			c.mu.Lock()
			c.stats.Failovers++
			c.mu.Unlock()
		}
		c.log.Info().Err(err).Dur("retry_in", delay).Str("next_url", c.urls[c.current]).Msg("signaling session ended")
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// permanent reports whether err means reconnecting would fail the same way or do harm.
func permanent(err error) bool {
	if errors.Is(err, ErrUnsupportedVersion) || errors.Is(err, ErrTooMuchWork) {
		return true
	}
	var se *signaling.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case signaling.CodeReplaced, signaling.CodeUnauthorized, signaling.CodeBadHello, signaling.CodeBadProof,
		signaling.CodeUnsupportedVersion, signaling.CodeOriginNotAllowed:
		return true
	}
	return false
}

// backoff returns the wait before reconnect attempt n (0-based).
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.MinBackoff
	for i := 0; i < n && d < c.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.cfg.MaxBackoff)
	half := d / 2
	return half + time.Duration(c.rng.Int64N(int64(d-half)+1))
}

// emit queues ev, dropping the oldest event if the queue is full. Only the Run goroutine
// sends on c.events, so the loop ends after at most one drop.
func (c *Client) emit(ev Event) {
	for {
		select {
		case c.events <- ev:
			return
		default:
		}
		select {
		case old := <-c.events:
			c.mu.Lock()
			c.stats.EventsDropped++
			c.mu.Unlock()
			c.log.Warn().Str("dropped", describe(old)).Msg("event queue full; dropped the oldest event")
		default:
		}
	}
}

func describe(ev Event) string {
	if ev.Message != nil {
		return string(ev.Message.Type())
	}
	return "disconnected"
}

// runSession dials, answers the challenge with a signed hello, waits for the welcome and then
// reads until the connection ends. It reports whether a welcome arrived and why the session
// ended.
func (c *Client) runSession(ctx context.Context) (welcomed bool, err error) {
	dialCtx, cancel := context.WithTimeout(ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	t, err := dial(dialCtx, dialOptions{
		url:          c.urls[c.current],
		header:       c.cfg.Header,
		maxFrameSize: c.cfg.MaxFrameSize,
		writeTimeout: c.cfg.WriteTimeout,
		idleTimeout:  c.cfg.IdleTimeout,
		maxUnread:    c.cfg.EventQueueLength,
	})
	if err != nil {
		return false, err
	}
	defer t.Close()
	// Closing the transport is the one way to interrupt a blocked read, for both
	// cancellation and the handshake deadline.
	stopOnCancel := context.AfterFunc(ctx, func() { t.Close() })
	defer stopOnCancel()
	var timedOut atomic.Bool
	handshakeTimer := time.AfterFunc(c.cfg.HandshakeTimeout, func() {
		timedOut.Store(true)
		t.Close()
	})
	defer handshakeTimer.Stop()

	nonce, powBits, err := c.awaitChallenge(t)
	if err != nil {
		if timedOut.Load() {
			return false, fmt.Errorf("no challenge from the server within %v (a server of signaling protocol 1 sends none): %w",
				c.cfg.HandshakeTimeout, err)
		}
		return false, err
	}
	work, err := c.work(ctx, powBits)
	if err != nil {
		return false, err
	}
	if timedOut.Load() {
		// The search outlasted the handshake; the work is kept with the key (a WorkProver's),
		// so the next session, after the usual backoff, answers at once.
		return false, fmt.Errorf("the proof of work (%d bits) took longer than the %v handshake; reconnecting with it", powBits, c.cfg.HandshakeTimeout)
	}
	hello, err := c.signHello(dialCtx, nonce, work)
	if err != nil {
		return false, err
	}
	if err := t.WriteMessage(hello); err != nil {
		return false, fmt.Errorf("send hello: %w", err)
	}

	var s *session
	stopWriter := make(chan struct{})
	defer func() {
		if s == nil {
			return
		}
		c.mu.Lock()
		c.sess = nil
		c.mu.Unlock()
		close(stopWriter)
		t.Close()
		<-s.writerDone
	}()

	// ended is the first explanation of why the session ends: a fatal error or a bye from the
	// server beats the transport error that follows it.
	var ended error
	for {
		frame, err := t.ReadMessage()
		if err != nil {
			if ended == nil {
				ended = err
				if s == nil {
					ended = fmt.Errorf("waiting for welcome: %w", err)
				}
			}
			return s != nil, ended
		}
		m, err := signaling.ParseMessage(frame, c.cfg.MaxFrameSize)
		if err != nil {
			// A newer server may send types this client does not know (see the protocol's
			// evolution rule); anything unparsable is logged and skipped.
			c.log.Warn().Err(err).Msg("ignoring unparsable frame from server")
			continue
		}
		c.mu.Lock()
		c.stats.Received++
		c.mu.Unlock()
		switch m := m.(type) {
		case *signaling.Welcome:
			if s != nil {
				c.log.Warn().Msg("ignoring a second welcome")
				continue
			}
			if m.ID != c.id {
				return false, fmt.Errorf("server welcomed id %.60q, but this client's key has id %s", m.ID, c.id)
			}
			handshakeTimer.Stop()
			s = c.startSession(m, t, stopWriter)
			c.emit(Event{Message: m})
		case *signaling.Error:
			if m.Fatal {
				if ended == nil {
					ended = m
				}
				continue
			}
			c.emit(Event{Message: m})
		case *signaling.Bye:
			if ended == nil {
				ended = fmt.Errorf("%w: %s", ErrServerGoingAway, m.Reason)
			}
		case *signaling.Challenge:
			c.log.Warn().Msg("ignoring a second challenge")
		case *signaling.Offer, *signaling.Answer, *signaling.Candidate, *signaling.PeerList, *signaling.PeerLeft:
			if s == nil {
				c.log.Warn().Str("type", string(m.Type())).Msg("ignoring message before welcome")
				continue
			}
			c.emit(Event{Message: m})
		default:
			c.log.Warn().Str("type", string(m.Type())).Msg("ignoring client-to-server message type from server")
		}
	}
}

// awaitChallenge reads until the server's challenge and returns its nonce. A fatal error or a
// bye before it ends the session; frames of unknown types are skipped (see the protocol's
// evolution rule), but a challenge of another protocol version is ErrUnsupportedVersion.
func (c *Client) awaitChallenge(t transport) ([]byte, int, error) {
	for {
		frame, err := t.ReadMessage()
		if err != nil {
			return nil, 0, fmt.Errorf("waiting for challenge: %w", err)
		}
		m, err := signaling.ParseMessage(frame, c.cfg.MaxFrameSize)
		if err != nil {
			if errors.Is(err, signaling.ErrUnsupportedVersion) {
				return nil, 0, fmt.Errorf("%w: this client speaks signaling protocol %d: %v", ErrUnsupportedVersion, signaling.ProtocolVersion, err)
			}
			c.log.Warn().Err(err).Msg("ignoring unparsable frame from server while waiting for the challenge")
			continue
		}
		c.mu.Lock()
		c.stats.Received++
		c.mu.Unlock()
		switch m := m.(type) {
		case *signaling.Challenge:
			nonce, err := m.NonceBytes()
			if err != nil { // unreachable: ParseMessage validated it
				return nil, 0, fmt.Errorf("challenge: %w", err)
			}
			return nonce, m.PowBits, nil
		case *signaling.Error:
			if m.Fatal {
				return nil, 0, m
			}
			c.emit(Event{Message: m})
		case *signaling.Bye:
			return nil, 0, fmt.Errorf("%w: %s", ErrServerGoingAway, m.Reason)
		default:
			c.log.Warn().Str("type", string(m.Type())).Msg("ignoring message before the challenge")
		}
	}
}

// work returns the work nonce the hello carries for a challenge asking for powBits: none if it
// asks for none, else the key's. If that falls short and powBits is within MaxPowBits, it is
// searched for first (identity.EnsureWork, which keeps it beside the key, so this happens once
// per key and difficulty). The search heeds ctx but not the handshake deadline: if it outlasts
// the server's patience, the session fails and the next one, after the usual backoff, finds
// the work done.
func (c *Client) work(ctx context.Context, powBits int) ([]byte, error) {
	if powBits <= 0 {
		return nil, nil
	}
	if have := identity.WorkOf(c.cfg.Key); identity.CheckWork(c.cfg.Key.PublicKey(), have, powBits) == nil {
		return have, nil // done before, whatever MaxPowBits says now
	}
	if powBits > c.cfg.MaxPowBits {
		return nil, fmt.Errorf("%w: %d bits asked, at most %d searched for (2^%d hashes on average)", ErrTooMuchWork, powBits, c.cfg.MaxPowBits, powBits)
	}
	c.log.Info().Int("pow_bits", powBits).Msg("the signaling server requires proof of work on identity keys: searching (once per key)")
	start := time.Now()
	w, err := identity.EnsureWork(ctx, c.cfg.Key, powBits)
	if err != nil {
		return nil, fmt.Errorf("proof of work for the server's %d bits: %w", powBits, err)
	}
	c.log.Info().Int("pow_bits", powBits).Dur("took", time.Since(start)).Msg("proof of work found")
	return w, nil
}

// signHello builds the hello that answers nonce. Signing runs in its own goroutine so that a
// key that never answers (a stuck browser) cannot hold the session past ctx, the handshake
// deadline; the goroutine ends when Sign returns.
func (c *Client) signHello(ctx context.Context, nonce, work []byte) ([]byte, error) {
	transcript := identity.Transcript(identity.LabelSignalingHello, nonce, []byte(c.cfg.Network))
	type result struct {
		sig []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		sig, err := c.cfg.Key.Sign(transcript)
		done <- result{sig, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("sign the challenge: %w", ctx.Err())
	}
	if r.err != nil {
		return nil, fmt.Errorf("sign the challenge: %w", r.err)
	}
	h := &signaling.Hello{
		Version:   signaling.ProtocolVersion,
		ID:        c.id,
		Network:   c.cfg.Network,
		Token:     c.cfg.Token,
		PublicKey: signaling.EncodeBinary(c.cfg.Key.PublicKey()),
		Signature: signaling.EncodeBinary(r.sig),
	}
	if len(work) > 0 {
		h.Work = signaling.EncodeBinary(work)
	}
	hello, err := signaling.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("build hello: %w", err)
	}
	return hello, nil
}

// startSession publishes the welcomed session to the Send methods and starts its writer,
// which runs until stop is closed or a write fails.
func (c *Client) startSession(w *signaling.Welcome, t transport, stop <-chan struct{}) *session {
	s := &session{
		welcome:    w,
		send:       make(chan []byte, c.cfg.SendQueueLength),
		writerDone: make(chan struct{}),
	}
	if w.Limits.Rate > 0 && w.Limits.Burst > 0 {
		// Pace a little under the server's bucket: the server also counted the hello, and
		// network jitter can bunch frames that left here evenly spaced.
		now := c.cfg.Now()
		pacer, err := tokenbucket.New(w.Limits.Rate*0.9, max(1, w.Limits.Burst*9/10), now)
		if err == nil {
			pacer.Allow(now) // the hello
			s.pacer = pacer
		}
	}
	go func() {
		defer close(s.writerDone)
		for {
			select {
			case <-stop:
				return
			case frame := <-s.send:
				if err := t.WriteMessage(frame); err != nil {
					c.log.Debug().Err(err).Msg("write failed; ending session")
					t.Close()
					return
				}
			}
		}
	}()
	c.mu.Lock()
	c.sess = s
	c.stats.Sessions++
	c.mu.Unlock()
	return s
}
