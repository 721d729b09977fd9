package rtclink

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
)

// MDNSMode says whether ICE uses multicast DNS for host candidates.
type MDNSMode int

const (
	// MDNSQueryAndGather (the default) publishes host candidates as
	// <uuid>.local names and resolves such names from peers, the way
	// browsers do: same-LAN peers connect with no server in the path and
	// private addresses are not revealed to the signaling server.
	MDNSQueryAndGather MDNSMode = iota
	// MDNSQueryOnly resolves peers' .local candidates but publishes plain
	// host addresses.
	MDNSQueryOnly
	// MDNSDisabled turns mDNS off entirely (tests, vnet, servers).
	MDNSDisabled
)

// ICEServer is one STUN or TURN server, as the signaling welcome gives it.
type ICEServer struct {
	// URLs are stun:, turn: or turns: URLs of one server.
	URLs []string
	// Username and Credential authenticate to a TURN server.
	Username, Credential string
}

// Config configures a Transport. Start from DefaultConfig: New fills in nothing, and every
// duration and size must be positive. The zero values of MDNS, RelayOnly, ICEServers, Logger
// and SettingEngine are meaningful, as their fields say.
type Config struct {
	// Key is this node's identity key: the node ID is its hash, and every
	// link proves it by signing both ends' DTLS fingerprints with it. The
	// DTLS certificate itself is made per Transport and thrown away with it.
	// Required.
	Key identity.Signer
	// Signaler carries offers, answers and candidates to peers. Required.
	Signaler Signaler
	// PowBits is the proof-of-work difficulty, in bits, required of every peer's identity key
	// (identity.CheckWork): its link proof must carry a work nonce that reaches it, or the
	// link closes ("identity mismatch: insufficient proof of work") before any frame. It
	// makes Sybil identities cost work even when they never pass a signaling server that asks
	// for it. Use the same value on every node of a network (and on its signaling server).
	// 0 (the default) requires none; at most identity.MaxWorkBits. Transport.RequireWork
	// raises it at run time.
	PowBits int
	// ICEServers are the STUN/TURN servers for new PeerConnections. They
	// usually arrive in the signaling welcome: see Transport.SetICEServers.
	ICEServers []ICEServer
	// MDNS selects mDNS use. Default MDNSQueryAndGather. pion opens one mDNS
	// socket per PeerConnection (v4 has no way to share one).
	MDNS MDNSMode
	// UDPSocket selects the UDP sockets of the links' ICE: one shared by the links this end
	// answers (the default), or one per link.
	UDPSocket UDPSocketConfig
	// RelayOnly makes every link go through a TURN relay of ICEServers: only
	// relay candidates are gathered and offered (ICE transport policy
	// "relay"), without their related address, so peers and the signaling
	// server never learn this node's own or NAT-mapped addresses. Links cost
	// a relay hop and fail when no TURN server is configured or reachable.
	// Default false.
	RelayOnly bool

	// ICEDisconnectedTimeout: no traffic for this long marks ICE disconnected.
	// Default 3s (pion's 5s).
	ICEDisconnectedTimeout time.Duration
	// ICEFailedTimeout: disconnected for this long more fails the connection,
	// which closes the link (pion's default is 25s). Default 6s.
	ICEFailedTimeout time.Duration
	// ICEKeepaliveInterval: how often ICE sends a binding request on the
	// selected pair (pion sends it whatever other traffic there is: it is
	// consent freshness, RFC 7675), which also keeps NAT mappings open. The
	// heartbeat's pings and pongs already cross the pair every
	// HeartbeatInterval, so ICE never sees a pair quiet for
	// ICEDisconnectedTimeout; this only has to stay well inside NAT timeouts
	// (30 s and more) and browsers' 30 s consent expiry. Default 2s: 1s
	// cost an idle link one more STUN round trip a second.
	ICEKeepaliveInterval time.Duration

	// HeartbeatInterval: how often a ping goes out on every open link. Any
	// message received counts as a sign of life. Default 1s.
	HeartbeatInterval time.Duration
	// HeartbeatTimeout: a link on which nothing was received for this long is
	// closed with reason "heartbeat timeout". Must exceed HeartbeatInterval.
	// ICE alone notices a silent peer only when its timeouts expire, and not
	// at all if the peer's ICE agent still answers while its node is stuck.
	// Default link.DefaultHeartbeatTimeout (5s). SetHeartbeatTimeout sets it
	// together with a fitting HeartbeatInterval.
	HeartbeatTimeout time.Duration
	// DialTimeout bounds the time from Dial (or an incoming offer) to LinkUp.
	// Default 15s.
	DialTimeout time.Duration
	// AnswerTimeout bounds the wait for the answer to this end's offer: an offer that went
	// nowhere (a relay dropped it on a stale route, the peer is gone) fails the attempt as
	// unreachable after this long rather than after DialTimeout, so the node moves on to
	// another peer. A live peer answers within its signaling round trip; ICE, DTLS and SCTP,
	// which take longer, come after the answer. Default 5s; 0 (or a value beyond
	// DialTimeout) leaves it to DialTimeout.
	AnswerTimeout time.Duration
	// CloseTimeout bounds how long Close waits for the Transport's goroutines. A connection
	// wedged inside the WebRTC stack (pion/sctp can block a read loop on a retransmitted
	// COOKIE ECHO under heavy load, and writers behind it) must not hang the node's shutdown:
	// past it Close gives up on them, logs, and returns an error. Default 10s.
	CloseTimeout time.Duration

	// MaxFrameSize is the largest frame Send accepts and the largest the peer
	// may send; the pion build advertises it as the SCTP max-message-size (a
	// browser advertises its own). A peer that sends more is disconnected
	// ("frame too large"). Browsers handle up to 256 KiB. Default 64 KiB.
	MaxFrameSize int
	// SendBufferBytes bounds the bytes queued for sending on one link (the
	// data channel's buffered amount). Send returns ErrQueueFull beyond it.
	// Must be at least MaxFrameSize. Default 1 MiB.
	SendBufferBytes int
	// EventQueueLength bounds the Frame events waiting for the consumer;
	// when full, links stop being read (back-pressure). A page cannot stop
	// reading a data channel, so in the browser it also bounds each link's
	// unread messages, and a link beyond it is closed. Link up/down events
	// are never dropped and are bounded by MaxLinks. Default 1024.
	EventQueueLength int
	// MaxLinks bounds links open or being opened, each costing ~150 KiB and
	// ~15 goroutines. Dials beyond it fail with "too many links"; offers
	// beyond it are refused. Default 128.
	MaxLinks int
	// MaxPendingCandidates bounds remote ICE candidates buffered per link
	// before the remote description arrives. Default 32.
	MaxPendingCandidates int

	// Logger receives the Transport's logs and pion's (scoped by "pion").
	// The zero Logger discards everything.
	Logger zerolog.Logger
	// SettingEngine is an escape hatch for pion settings not exposed above
	// (tests use it for loopback-only gathering or a vnet). It is copied;
	// the fields above override the matching settings in it, and data
	// channels are always detached. Browsers have no such settings: there
	// SettingEngine is an empty type and the field is ignored.
	SettingEngine *SettingEngine
}

// UDPSocketConfig selects the UDP sockets ICE uses for host candidates. By default every link
// a Transport answers shares one socket per local address (pion's ICE UDP mux), opened by New
// and closed by Close, and every link it offers has sockets of its own, as all links had
// before: pion's mux tells its connections apart by the peer's address, so two connections
// between the same two shared sockets (glare, a successor beside a live link) would take each
// other's packets, and an offered connection never meets the peer's shared socket on both
// ends. About half of a node's links then need no socket of their own, and its answered host
// candidates carry one port. The sockets are never shared with another Transport of the
// process either: two ICE agents on one socket cannot reach each other. Server-reflexive
// candidates (STUN) and relay candidates (TURN) keep sockets of their own; mDNS names the
// shared socket's host candidates as it names per-link ones. The browser ignores all of this.
type UDPSocketConfig struct {
	// Shared makes the links this end answers share the sockets. It applies only when the
	// Transport knows which addresses ICE may use: with no SettingEngine, or with Networks set
	// (SetICENetworks sets both). A SettingEngine set by hand (a vnet, other filters) cannot
	// be inspected, so its links keep a socket each. Default true.
	Shared bool
	// Port is the shared sockets' port; 0 (the default) picks a free one per address. A fixed
	// port lets a firewall admit the links peers open to this node by one rule.
	Port int
	// Networks restricts the shared sockets to local addresses inside these networks, as
	// NetworkSettings restricts gathering; nil: every address of every interface that is up,
	// loopback excluded.
	Networks []netip.Prefix
}

// SetICENetworks restricts ICE to local and remote addresses inside networks: the
// SettingEngine becomes NetworkSettings(networks) and the shared UDP socket listens inside
// them. With 127.0.0.0/8, every packet stays on the machine's loopback.
func (c *Config) SetICENetworks(networks []netip.Prefix) {
	c.SettingEngine = NetworkSettings(networks)
	c.UDPSocket.Networks = append([]netip.Prefix(nil), networks...)
}

// DefaultConfig returns a Config for the given identity and signaler with every other field
// at its default. It is the one place the defaults are defined: start from it and change what
// you need, because New does not fill in zero values.
func DefaultConfig(key identity.Signer, s Signaler) Config {
	return Config{
		Key:                    key,
		Signaler:               s,
		MDNS:                   MDNSQueryAndGather,
		UDPSocket:              UDPSocketConfig{Shared: true},
		ICEDisconnectedTimeout: 3 * time.Second,
		ICEFailedTimeout:       6 * time.Second,
		ICEKeepaliveInterval:   2 * time.Second,
		HeartbeatInterval:      time.Second,
		HeartbeatTimeout:       link.DefaultHeartbeatTimeout,
		DialTimeout:            15 * time.Second,
		AnswerTimeout:          5 * time.Second,
		CloseTimeout:           10 * time.Second,
		MaxFrameSize:           64 << 10,
		SendBufferBytes:        1 << 20,
		EventQueueLength:       1024,
		MaxLinks:               128,
		MaxPendingCandidates:   32,
	}
}

// SetHeartbeatTimeout sets HeartbeatTimeout to d and derives HeartbeatInterval from it, so
// that a caller choosing only the timeout (a command-line flag) gets a valid pair. The
// interval is kept while at least two pings fit in the timeout (interval <= d/2), so a single
// late ping does not expire a link; otherwise it becomes d/4. A d that is not positive is
// stored as given and rejected by New.
func (c *Config) SetHeartbeatTimeout(d time.Duration) {
	c.HeartbeatTimeout = d
	if c.HeartbeatInterval*2 > d {
		c.HeartbeatInterval = d / 4
	}
}

// maxFrameSizeLimit keeps frames well inside what SCTP and browsers handle.
const maxFrameSizeLimit = 16 << 20

// validate reports the first missing or invalid field, always checking in the same order
// (the order of the fields in Config), so a Config with several faults gets the same error
// on every run.
func (c *Config) validate() error {
	if c.Key == nil {
		return errors.New("rtclink: Config.Key is required: the node's identity key proves its ID on every link")
	}
	if c.Signaler == nil {
		return errors.New("rtclink: Config.Signaler is required")
	}
	if err := identity.ValidateWorkBits(c.PowBits); err != nil {
		return fmt.Errorf("rtclink: Config.PowBits: %w", err)
	}
	if c.MDNS < MDNSQueryAndGather || c.MDNS > MDNSDisabled {
		return fmt.Errorf("rtclink: Config.MDNS %d is not a valid mode", c.MDNS)
	}
	if c.UDPSocket.Port < 0 || c.UDPSocket.Port > 65535 {
		return fmt.Errorf("rtclink: Config.UDPSocket.Port %d out of range", c.UDPSocket.Port)
	}
	if err := firstNotPositive(
		named("ICEDisconnectedTimeout", c.ICEDisconnectedTimeout),
		named("ICEFailedTimeout", c.ICEFailedTimeout),
		named("ICEKeepaliveInterval", c.ICEKeepaliveInterval),
		named("HeartbeatInterval", c.HeartbeatInterval),
		named("HeartbeatTimeout", c.HeartbeatTimeout),
		named("DialTimeout", c.DialTimeout),
		named("CloseTimeout", c.CloseTimeout),
	); err != nil {
		return err
	}
	if c.AnswerTimeout < 0 {
		return fmt.Errorf("rtclink: Config.AnswerTimeout %v must not be negative", c.AnswerTimeout)
	}
	if c.HeartbeatTimeout <= c.HeartbeatInterval {
		return fmt.Errorf("rtclink: Config.HeartbeatTimeout (%v) must exceed HeartbeatInterval (%v)",
			c.HeartbeatTimeout, c.HeartbeatInterval)
	}
	if err := firstNotPositive(
		named("MaxFrameSize", c.MaxFrameSize),
		named("SendBufferBytes", c.SendBufferBytes),
		named("EventQueueLength", c.EventQueueLength),
		named("MaxLinks", c.MaxLinks),
		named("MaxPendingCandidates", c.MaxPendingCandidates),
	); err != nil {
		return err
	}
	if c.MaxFrameSize > maxFrameSizeLimit {
		return fmt.Errorf("rtclink: Config.MaxFrameSize %d exceeds %d", c.MaxFrameSize, maxFrameSizeLimit)
	}
	if c.SendBufferBytes < c.MaxFrameSize {
		return fmt.Errorf("rtclink: Config.SendBufferBytes (%d) must be at least MaxFrameSize (%d)",
			c.SendBufferBytes, c.MaxFrameSize)
	}
	return nil
}

// namedValue is a Config field's name and value, for validate.
type namedValue[T int | time.Duration] struct {
	name  string
	value T
}

func named[T int | time.Duration](name string, value T) namedValue[T] {
	return namedValue[T]{name, value}
}

// firstNotPositive returns an error for the first of fields, in the order given, that is
// zero or negative. A slice, not a map, so that the error is the same on every run.
func firstNotPositive[T int | time.Duration](fields ...namedValue[T]) error {
	for _, f := range fields {
		if f.value <= 0 {
			return fmt.Errorf("rtclink: Config.%s must be positive, not %v (start from DefaultConfig)", f.name, f.value)
		}
	}
	return nil
}
