package signalserver

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/signaling"
)

// Config holds every knob of the server. Start from DefaultConfig: New refuses a zero or
// negative bound rather than guessing what it was meant to be.
type Config struct {
	// MaxFrameSize is the largest frame a client may send, in bytes. A larger frame gets a
	// fatal frame_too_large. Default 64 KiB; SDPs are a few KiB.
	MaxFrameSize int

	// RateLimit is the sustained number of messages per second a connection may send, and
	// RateBurst how many it may send back to back (token bucket). Exceeding it gets a fatal
	// rate_limited. Both are announced in welcome.limits. Defaults 20/s and 100: a node
	// negotiating a handful of links trickles a few dozen candidates at once.
	// The server's own replies to a connection (challenge, welcome, peer lists, errors: at most
	// one per message it sent) queue up to RateBurst+1 frames, so a client that uses its whole
	// burst and then reads its replies is never cut off; one that lets more pile up is a slow
	// consumer.
	RateLimit float64
	RateBurst int

	// HandshakeTimeout is how long a connection may stay without a valid hello before a fatal
	// handshake_timeout. It bounds how long idle sockets hold server resources. Default 10 s.
	HandshakeTimeout time.Duration

	// MaxPeersPerNetwork bounds the members of one network; the next hello gets a fatal
	// network_full. A reconnect that replaces its own old connection does not count.
	// Default 10,000.
	MaxPeersPerNetwork int

	// MaxConnections bounds all open connections (including those still saying hello); the
	// next one gets a fatal server_full. It also bounds the number of networks. Default 50,000.
	// New lowers it to FileLimit - ReservedFiles when that is smaller, and logs so: each
	// connection holds a file descriptor, and a server out of descriptors cannot even accept
	// the connection it would tell server_full, so clients would hang instead.
	MaxConnections int

	// FileLimit is how many file descriptors the process may hold. 0 (the default) means the
	// soft RLIMIT_NOFILE, read by New (Go raises it to the hard limit at start); on systems
	// without one, MaxConnections is not capped. Set it to cap MaxConnections by another
	// figure.
	FileLimit int
	// ReservedFiles is how many of FileLimit are kept for everything but WebSocket
	// connections: listeners, HTTP requests for /metrics and the page, connections being
	// refused, logs, an embedded relay's sockets (the signaling service adds those). Default
	// 128.
	ReservedFiles int

	// MaxConnectionsPerSource bounds the open connections from one source address, so one
	// host cannot fill the server; the next gets a fatal source_full. A source is an IP
	// address, or for IPv6 its /64 (one subscriber's network). Clients behind one NAT share a
	// source: raise it for a deployment where many nodes share an address. Default 100.
	MaxConnectionsPerSource int
	// ConnectionsPerSourcePerMinute bounds the connections one source may open per minute,
	// and HellosPerSourcePerMinute the hellos it may send (each costs a signature check and
	// may create a network), both as token buckets that hold one minute's worth, so a whole
	// NAT of nodes reconnecting at once after a restart gets in. Beyond them a connection
	// gets a fatal source_rate_limited. Defaults 200 and 100.
	ConnectionsPerSourcePerMinute int
	HellosPerSourcePerMinute      int
	// TrustedProxies are the reverse proxies (a prefix per proxy or proxy network) whose
	// X-Forwarded-For header names the client. For a request from one of them the source is
	// the rightmost X-Forwarded-For address that is not itself a trusted proxy; from anyone
	// else the header is ignored, since a client can write anything there. Behind a proxy and
	// without this setting every client has the proxy's address and shares one source's
	// limits. Empty (the default) trusts no one. The proxy must append to X-Forwarded-For,
	// not pass a client's header through unchanged.
	TrustedProxies []netip.Prefix

	// ContactCount is how many random live peers of the network a welcome carries, and the
	// default size of a peers reply. Default 8, a little more than a HyParView active view.
	ContactCount int

	// MaxPeersReply caps the size of a peer-list reply, whatever the client asks. Default 32.
	MaxPeersReply int

	// SendQueueBytes bounds the relayed frames (offers, answers, candidates, peer-left) queued
	// for one connection, in bytes, counting 64 bytes of bookkeeping per frame. A relay that
	// does not fit is dropped and its sender gets a non-fatal target_busy; a frame larger than
	// the bound is queued only when the queue is empty. A receiver that does not read is
	// disconnected as a slow consumer when a write stalls for WriteTimeout, so its queue is
	// held that long at most. Default 256 KiB: dozens of typical offers, four of the largest.
	SendQueueBytes int
	// MaxQueuedBytes bounds the frames queued for all connections together, in bytes, so that
	// memory does not grow with MaxConnections × SendQueueBytes. When a relay does not fit,
	// the server disconnects the connection with the most bytes queued, if that holds at
	// least half its SendQueueBytes (the receivers that do not read, not the busy ones), and
	// otherwise drops the relay with target_busy. Replies are bounded per connection instead
	// (RateBurst+1 frames of a few KiB) and counted here but never refused. Default 64 MiB.
	MaxQueuedBytes int

	// WriteTimeout bounds writing one frame to a client. Default 10 s.
	WriteTimeout time.Duration

	// PingInterval is how often the server pings each client, and PongTimeout how long a
	// connection may be silent (no pong, no message) before it is considered dead. The pings
	// also keep NAT and proxy mappings open. Defaults 20 s and 60 s; PongTimeout must exceed
	// PingInterval.
	PingInterval time.Duration
	PongTimeout  time.Duration

	// CloseGracePeriod is how long the server waits, after sending a close frame, for the
	// client's close frame before dropping the TCP connection. Waiting lets the client read
	// the error that preceded the close instead of losing it to a TCP reset. Default 1 s.
	CloseGracePeriod time.Duration

	// MaxCorrespondents is how many distinct peers the server remembers per connection as
	// signaling partners (sent or received a relay). When the connection ends, those still
	// connected receive peer-left. Oldest are forgotten first. Default 64; -1 disables
	// peer-left (0 is refused, so that a forgotten field does not silently disable it).
	MaxCorrespondents int

	// AllowedOrigins lists the browser origins (scheme://host[:port], or "*" for any) that may
	// connect. Requests without an Origin header (non-browser clients, which could forge one
	// anyway) and requests whose Origin host equals the request's Host (the page served by this
	// same server) are always allowed. Empty means only those two.
	AllowedOrigins []string

	// NetworkSecret returns the secret of a closed network, or nil if the network is open.
	// Nil means every network is open. A hello to a closed network must carry
	// signaling.NetworkToken(secret, network). Use StaticSecrets for a fixed map, or return
	// one master secret for every network to close them all. Called concurrently.
	NetworkSecret func(network string) []byte

	// PowBits is the proof-of-work difficulty, in bits, required of every identity key: the
	// challenge announces it and a hello whose work nonce falls short gets a fatal
	// insufficient_work (identity.CheckWork, one hash, checked before the signature). It makes
	// each Sybil identity cost 2^PowBits hashes, once per key; closed networks' tokens still
	// apply on top. 0 (the default) requires none; at most identity.MaxWorkBits;
	// identity.RecommendedWorkBits for an open network that wants Sybils to cost work.
	PowBits int

	// ICEServers returns the STUN/TURN servers a welcome carries for nodeID, so an embedded
	// TURN server can mint fresh ephemeral credentials per hello. Nil means none. Called
	// concurrently. An invalid entry makes the welcome fail with internal_error.
	ICEServers func(nodeID string) []signaling.ICEServer

	// Cluster, when set, shares networks with other instances (see Cluster; package
	// signalnats implements it on NATS): contacts and peer samples are drawn from every
	// instance's members, relays reach members of other instances, a hello replaces an older
	// connection of the same ID on any instance, and MaxPeersPerNetwork counts them all. Nil
	// (the default) is a single instance.
	Cluster Cluster

	// Rand picks contacts and peer samples. Nil means a generator seeded from crypto/rand.
	// The server serialises its use.
	Rand *rand.Rand

	// Now is the clock for rate limiting. Nil means time.Now. Socket deadlines always use the
	// real clock.
	Now func() time.Time

	// Logger receives connection and rejection logs. The zero value logs nothing.
	Logger zerolog.Logger
}

// DefaultConfig returns the defaults, suitable for a public server on the Internet.
func DefaultConfig() Config {
	return Config{
		MaxFrameSize:       signaling.DefaultMaxFrameSize,
		RateLimit:          20,
		RateBurst:          100,
		HandshakeTimeout:   10 * time.Second,
		MaxPeersPerNetwork: 10000,
		MaxConnections:     50000,
		ReservedFiles:      128,

		MaxConnectionsPerSource:       100,
		ConnectionsPerSourcePerMinute: 200,
		HellosPerSourcePerMinute:      100,

		ContactCount:      8,
		MaxPeersReply:     32,
		SendQueueBytes:    256 << 10,
		MaxQueuedBytes:    64 << 20,
		WriteTimeout:      10 * time.Second,
		PingInterval:      20 * time.Second,
		PongTimeout:       60 * time.Second,
		CloseGracePeriod:  time.Second,
		MaxCorrespondents: 64,
	}
}

// StaticSecrets returns a Config.NetworkSecret for a fixed map from network name to secret;
// networks not in the map are open. The map is copied.
func StaticSecrets(secrets map[string][]byte) func(network string) []byte {
	copied := make(map[string][]byte, len(secrets))
	for k, v := range secrets {
		copied[k] = append([]byte(nil), v...)
	}
	return func(network string) []byte { return copied[network] }
}

// Validate reports every invalid field of c, as New would, without building a server: a
// caller (the signaling service, a command line) can refuse a configuration before it binds
// anything.
func (c Config) Validate() error {
	_, err := c.validate()
	return err
}

// validate checks every field, in the order they are declared, and returns c with its
// origins normalised and a nil Now replaced by time.Now. Every bound must be set: start from
// DefaultConfig, which holds the one definition of each default.
func (c Config) validate() (Config, error) {
	var errs []error
	positive := func(name string, ok bool, v any) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s must be positive, got %v", name, v))
		}
	}
	positive("MaxFrameSize", c.MaxFrameSize > 0, c.MaxFrameSize)
	if c.MaxFrameSize > 0 && c.MaxFrameSize < minFrameSize {
		errs = append(errs, fmt.Errorf("MaxFrameSize is %d, too small for a hello (minimum %d)", c.MaxFrameSize, minFrameSize))
	}
	positive("RateLimit", c.RateLimit > 0, c.RateLimit) // also refuses NaN
	positive("RateBurst", c.RateBurst > 0, c.RateBurst)
	positive("HandshakeTimeout", c.HandshakeTimeout > 0, c.HandshakeTimeout)
	if err := identity.ValidateWorkBits(c.PowBits); err != nil {
		errs = append(errs, fmt.Errorf("PowBits: %w", err))
	}
	positive("MaxPeersPerNetwork", c.MaxPeersPerNetwork > 0, c.MaxPeersPerNetwork)
	positive("MaxConnections", c.MaxConnections > 0, c.MaxConnections)
	if c.FileLimit < 0 {
		errs = append(errs, fmt.Errorf("FileLimit is %d, want 0 (the process's limit) or positive", c.FileLimit))
	}
	positive("ReservedFiles", c.ReservedFiles > 0, c.ReservedFiles)
	positive("MaxConnectionsPerSource", c.MaxConnectionsPerSource > 0, c.MaxConnectionsPerSource)
	positive("ConnectionsPerSourcePerMinute", c.ConnectionsPerSourcePerMinute > 0, c.ConnectionsPerSourcePerMinute)
	positive("HellosPerSourcePerMinute", c.HellosPerSourcePerMinute > 0, c.HellosPerSourcePerMinute)
	proxies := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("TrustedProxies: %v is not a valid prefix", p))
			continue
		}
		proxies = append(proxies, p.Masked())
	}
	c.TrustedProxies = proxies
	positive("ContactCount", c.ContactCount > 0, c.ContactCount)
	positive("MaxPeersReply", c.MaxPeersReply > 0, c.MaxPeersReply)
	if c.ContactCount > signaling.MaxListLength || c.MaxPeersReply > signaling.MaxListLength {
		errs = append(errs, fmt.Errorf("ContactCount and MaxPeersReply must be at most %d", signaling.MaxListLength))
	}
	positive("SendQueueBytes", c.SendQueueBytes > 0, c.SendQueueBytes)
	positive("MaxQueuedBytes", c.MaxQueuedBytes > 0, c.MaxQueuedBytes)
	if c.SendQueueBytes > 0 && c.MaxQueuedBytes > 0 && c.MaxQueuedBytes < c.SendQueueBytes {
		errs = append(errs, fmt.Errorf("MaxQueuedBytes %d is below SendQueueBytes %d", c.MaxQueuedBytes, c.SendQueueBytes))
	}
	positive("WriteTimeout", c.WriteTimeout > 0, c.WriteTimeout)
	positive("PingInterval", c.PingInterval > 0, c.PingInterval)
	positive("PongTimeout", c.PongTimeout > 0, c.PongTimeout)
	if c.PongTimeout > 0 && c.PingInterval > 0 && c.PongTimeout <= c.PingInterval {
		errs = append(errs, fmt.Errorf("PongTimeout %v must exceed PingInterval %v", c.PongTimeout, c.PingInterval))
	}
	positive("CloseGracePeriod", c.CloseGracePeriod > 0, c.CloseGracePeriod)
	if c.MaxCorrespondents == 0 || c.MaxCorrespondents < -1 {
		errs = append(errs, fmt.Errorf("MaxCorrespondents is %d, want -1 (off) or positive", c.MaxCorrespondents))
	}
	origins := make([]string, 0, len(c.AllowedOrigins))
	for _, o := range c.AllowedOrigins {
		n, err := normalizeOrigin(o)
		if err != nil {
			errs = append(errs, fmt.Errorf("AllowedOrigins: %w", err))
			continue
		}
		origins = append(origins, n)
	}
	c.AllowedOrigins = origins
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("signalserver: invalid config: %w", errors.Join(errs...))
	}
	return c, nil
}

// minFrameSize is the smallest MaxFrameSize that still admits a hello with its token.
const minFrameSize = 512

// normalizeOrigin lower-cases an origin and checks it is "*" or scheme://host[:port].
func normalizeOrigin(o string) (string, error) {
	if o == "*" {
		return o, nil
	}
	u, err := url.Parse(o)
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", o, err)
	}
	if u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("origin %q: want scheme://host[:port]", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}
