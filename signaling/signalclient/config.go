package signalclient

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/signaling"
)

// Config holds every knob of the client. Start from DefaultConfig: New refuses a zero or
// negative bound rather than guessing what it was meant to be.
type Config struct {
	// URL is the server's WebSocket endpoint, ws://host:port/ws or wss://host/ws.
	URL string
	// FallbackURLs are more endpoints of the same service: signaling instances that share
	// their networks (rtcmesh signal --nats). When a session ends or a dial fails, the next
	// session dials the next URL in turn (URL, then each fallback, then URL again), after
	// MinBackoff; the backoff grows only after every URL failed in a row. Empty (the default)
	// is one server.
	FallbackURLs []string

	// Key is this node's identity key; required. The client answers the server's challenge
	// with it, and its ID (Key.ID()) is the client's node ID. Key.Sign is called from the Run
	// goroutine (never from a JavaScript callback, so a browser key may block it while
	// WebCrypto works), at most once per connection, bounded by HandshakeTimeout.
	Key identity.Signer

	// Network is the network to join and Token the network's token if it is closed (see
	// signaling.NetworkToken). Network must pass signaling.ValidateNetwork.
	Network string
	Token   string

	// Header adds HTTP headers to the WebSocket handshake (for example Origin when the
	// server only admits some origins). Browsers set their own headers and ignore this.
	// The type is http.Header's underlying map, so that the browser build does not link
	// net/http; an http.Header value can be assigned to it.
	Header map[string][]string

	// EventQueueLength bounds the events waiting for the application. When it is full the
	// oldest event is dropped (counted in Stats.EventsDropped): signaling is lossy by nature
	// and the newest news is the most useful, while an unbounded queue would let a stalled
	// application grow memory forever and a blocking one would stall the socket until the
	// server disconnects it as a slow consumer. Default 256.
	EventQueueLength int

	// SendQueueLength bounds the frames waiting to be written; a full queue makes Send return
	// ErrSendQueueFull. Default 64.
	SendQueueLength int

	// MinBackoff and MaxBackoff bound the wait before reconnecting: it starts at MinBackoff,
	// doubles after each failed attempt up to MaxBackoff, and is reset after a session that
	// got a welcome. Each wait is drawn uniformly from [d/2, d] ("equal jitter") so that
	// clients cut off together do not come back together. Defaults 500 ms and 30 s.
	MinBackoff time.Duration
	MaxBackoff time.Duration

	// HandshakeTimeout bounds dialing, waiting for the challenge, signing it and waiting for
	// the welcome. Default 10 s.
	HandshakeTimeout time.Duration

	// MaxPowBits bounds the proof of work the client does for a server: a challenge asking
	// for more bits is refused (Run returns ErrTooMuchWork) instead of spending the CPU a
	// hostile or mistaken server asks for (32 bits is some twenty minutes of a core, hours
	// in a browser). 0 does no work at all. Default 24 (seconds for a Go node, about a
	// minute for a tab); at most identity.MaxWorkBits.
	MaxPowBits int

	// WriteTimeout bounds writing one frame. Default 10 s.
	WriteTimeout time.Duration

	// IdleTimeout is how long the server may stay silent (no frame, no ping) before the
	// connection is considered dead and a reconnect starts. It must exceed the server's
	// PingInterval (default 20 s). Default 75 s.
	IdleTimeout time.Duration

	// MaxFrameSize bounds a frame from the server. It must exceed the server's MaxFrameSize
	// plus the envelope the server adds to relays ("from"). Default 256 KiB.
	MaxFrameSize int

	// Rand draws the backoff jitter. Nil means a generator seeded from crypto/rand. Used only
	// by the Run goroutine.
	Rand *rand.Rand

	// Now is the clock for pacing sends under the server's rate limit. Nil means time.Now.
	Now func() time.Time

	// Logger receives connection logs. The zero value logs nothing.
	Logger zerolog.Logger
}

// DefaultConfig returns the defaults for a client of the server at url that proves key and
// joins network.
func DefaultConfig(url string, key identity.Signer, network string) Config {
	return Config{
		URL:              url,
		Key:              key,
		Network:          network,
		EventQueueLength: 256,
		SendQueueLength:  64,
		MinBackoff:       500 * time.Millisecond,
		MaxBackoff:       30 * time.Second,
		HandshakeTimeout: 10 * time.Second,
		MaxPowBits:       24,
		WriteTimeout:     10 * time.Second,
		IdleTimeout:      75 * time.Second,
		MaxFrameSize:     256 << 10,
	}
}

// validate checks every field, in the order they are declared, and returns c with a nil Now
// replaced by time.Now. Every bound must be set: start from DefaultConfig, which holds the one
// definition of each default.
func (c Config) validate() (Config, error) {
	var errs []error
	for i, raw := range append([]string{c.URL}, c.FallbackURLs...) {
		name := "URL"
		if i > 0 {
			name = fmt.Sprintf("FallbackURLs[%d]", i-1)
		}
		if u, err := url.Parse(raw); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		} else if u.Scheme != "ws" && u.Scheme != "wss" {
			errs = append(errs, fmt.Errorf("%s %q: scheme must be ws or wss", name, raw))
		}
	}
	if err := signaling.ValidateNetwork(c.Network); err != nil {
		errs = append(errs, fmt.Errorf("Network: %w", err))
	}
	if err := signaling.ValidateToken(c.Token); err != nil {
		errs = append(errs, fmt.Errorf("Token: %w", err))
	}
	errs = append(errs, checkKey(c.Key)...)
	positive := func(name string, ok bool, v any) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s must be positive, got %v", name, v))
		}
	}
	positive("EventQueueLength", c.EventQueueLength > 0, c.EventQueueLength)
	positive("SendQueueLength", c.SendQueueLength > 0, c.SendQueueLength)
	positive("MinBackoff", c.MinBackoff > 0, c.MinBackoff)
	positive("MaxBackoff", c.MaxBackoff > 0, c.MaxBackoff)
	if c.MinBackoff > c.MaxBackoff {
		errs = append(errs, fmt.Errorf("MinBackoff %v exceeds MaxBackoff %v", c.MinBackoff, c.MaxBackoff))
	}
	positive("HandshakeTimeout", c.HandshakeTimeout > 0, c.HandshakeTimeout)
	if err := identity.ValidateWorkBits(c.MaxPowBits); err != nil {
		errs = append(errs, fmt.Errorf("MaxPowBits: %w", err))
	}
	positive("WriteTimeout", c.WriteTimeout > 0, c.WriteTimeout)
	positive("IdleTimeout", c.IdleTimeout > 0, c.IdleTimeout)
	positive("MaxFrameSize", c.MaxFrameSize > 0, c.MaxFrameSize)
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("signalclient: invalid config: %w", errors.Join(errs...))
	}
	return c, nil
}

// checkKey checks the identity key: present, and its ID the hash of its public key.
func checkKey(key identity.Signer) []error {
	if key == nil {
		return []error{errors.New("Key is missing: the client needs the node's identity key (identity.Signer) " +
			"to answer the server's challenge")}
	}
	var errs []error
	pub := key.PublicKey()
	if len(pub) != signaling.PublicKeySize {
		errs = append(errs, fmt.Errorf("Key: public key is %d bytes, want %d", len(pub), signaling.PublicKeySize))
	} else if derived := identity.IDFromPublicKey(pub); key.ID() != derived {
		errs = append(errs, fmt.Errorf("Key: ID() is %.60q, but its public key's ID is %s", key.ID(), derived))
	}
	return errs
}
