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
	"github.com/rtcmesh/rtcmesh/signaling/internal/defaults"
)

// Config holds every knob of the client. A zero field takes the default shown in
// DefaultConfig; a negative one is an error from New.
type Config struct {
	// URL is the server's WebSocket endpoint, ws://host:port/ws or wss://host/ws.
	URL string

	// Key is this node's identity key; required. The client answers the server's challenge
	// with it, and its ID (Key.ID()) is the client's node ID. Key.Sign is called from the Run
	// goroutine (never from a JavaScript callback, so a browser key may block it while
	// WebCrypto works), at most once per connection, bounded by HandshakeTimeout.
	Key identity.Signer

	// ID is optional and only checked: if set it must equal Key.ID(). The node ID is always
	// Key.ID(), proven to the server; a configured ID can no longer choose it.
	ID string

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

// DefaultConfig returns the defaults for url, id and network.
func DefaultConfig(url, id, network string) Config {
	return Config{
		URL:              url,
		ID:               id,
		Network:          network,
		EventQueueLength: 256,
		SendQueueLength:  64,
		MinBackoff:       500 * time.Millisecond,
		MaxBackoff:       30 * time.Second,
		HandshakeTimeout: 10 * time.Second,
		WriteTimeout:     10 * time.Second,
		IdleTimeout:      75 * time.Second,
		MaxFrameSize:     256 << 10,
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig(c.URL, c.ID, c.Network)
	var fill defaults.Filler
	defaults.Field(&fill, "EventQueueLength", &c.EventQueueLength, d.EventQueueLength)
	defaults.Field(&fill, "SendQueueLength", &c.SendQueueLength, d.SendQueueLength)
	defaults.Field(&fill, "MaxFrameSize", &c.MaxFrameSize, d.MaxFrameSize)
	defaults.Field(&fill, "MinBackoff", &c.MinBackoff, d.MinBackoff)
	defaults.Field(&fill, "MaxBackoff", &c.MaxBackoff, d.MaxBackoff)
	defaults.Field(&fill, "HandshakeTimeout", &c.HandshakeTimeout, d.HandshakeTimeout)
	defaults.Field(&fill, "WriteTimeout", &c.WriteTimeout, d.WriteTimeout)
	defaults.Field(&fill, "IdleTimeout", &c.IdleTimeout, d.IdleTimeout)
	errs := fill.Errs()
	if c.MinBackoff > c.MaxBackoff {
		errs = append(errs, fmt.Errorf("MinBackoff %v exceeds MaxBackoff %v", c.MinBackoff, c.MaxBackoff))
	}
	if u, err := url.Parse(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("URL: %w", err))
	} else if u.Scheme != "ws" && u.Scheme != "wss" {
		errs = append(errs, fmt.Errorf("URL %q: scheme must be ws or wss", c.URL))
	}
	if err := signaling.ValidateNetwork(c.Network); err != nil {
		errs = append(errs, fmt.Errorf("Network: %w", err))
	}
	if err := signaling.ValidateToken(c.Token); err != nil {
		errs = append(errs, fmt.Errorf("Token: %w", err))
	}
	errs = append(errs, checkKey(c.Key, c.ID)...)
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("signalclient: invalid config: %w", errors.Join(errs...))
	}
	return c, nil
}

// checkKey checks the identity key and the optional configured ID against it.
func checkKey(key identity.Signer, id string) []error {
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
	if id != "" && id != key.ID() {
		errs = append(errs, fmt.Errorf("ID %.60q is not the ID of Key (%s); leave ID empty", id, key.ID()))
	}
	return errs
}
