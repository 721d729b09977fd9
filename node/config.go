package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/routing"
	"github.com/rtcmesh/rtcmesh/scoring"
	"github.com/rtcmesh/rtcmesh/wire"
)

// Config configures a Node. DefaultConfig fills every field but Key and Transport.
type Config struct {
	// Key is this node's identity key. The node's ID is its hash (Key.ID()): the ID the
	// Transport's peers know the node by, and the origin of its broadcasts, which it signs.
	// Required.
	Key identity.Signer
	// Transport carries frames to peers: link/rtclink for WebRTC, link/memlink in one process.
	// Required. The node owns it from New on and closes it on Close.
	Transport link.Transport
	// Contacts are nodes to join through (the signaling server's welcome hands some out).
	// More can be given later with Join.
	Contacts []string
	// Membership and Gossip are the templates for the two protocol cores; Self, Rand,
	// Contacts and the gossip core's Auth (the broadcast signatures) are filled in by the node.
	// Gossip also holds catch-up (CatchUpWindow and the CatchUp… bounds): how long broadcasts
	// are kept for neighbours that missed them, delivered to those with Delivery.History set.
	// 0 turns it off.
	Membership membership.Config
	Gossip     gossip.Config
	// Scoring is peer scoring (package scoring): a peer whose score falls below its threshold
	// has its link closed and is neither dialled nor accepted for Scoring.CoolingPeriod. The
	// zero value turns it off; DefaultConfig turns it on.
	Scoring scoring.Config
	// Routing routes signed envelopes through the overlay (package routing): direct messages
	// (Send) and the signals of new links (SendSignal). The zero value turns it off (Send then
	// reaches linked peers only); DefaultConfig turns it on.
	Routing routing.Config
	// RouteShuffleReplies sends a SHUFFLE_REPLY to a peer this node has no link to through
	// the overlay (retracing the shuffle's walk, signed like a direct message) when a route is
	// known, instead of opening a link only to carry it. Such links were most of a node's
	// links at rest (about 9 of 14 per node in the lan profile), each costing both ends a
	// WebRTC handshake and its timers. Needs Routing; without a route the node opens a link
	// as before.
	RouteShuffleReplies bool
	// Network is the network (signaling room) the node belongs to, part of what routed
	// envelopes sign, so one cannot be replayed into another network; may be empty.
	Network string
	// DirectQueueLength bounds the direct messages waiting on DirectMessages, and
	// SignalQueueLength the routed link signals waiting on Signals; when full, the oldest
	// direct message, or the new signal, is dropped and counted.
	DirectQueueLength, SignalQueueLength int
	// MaxRoutedSeen bounds the signatures of routed envelopes remembered to refuse replays
	// (each for twice Gossip.MaxClockSkew, the window in which its time is accepted); when
	// full the oldest is forgotten.
	MaxRoutedSeen int
	// Limits bound every frame a peer sends; a frame outside them closes the link.
	Limits wire.Limits
	// TickInterval paces catch-up: while catch-up frames wait for a link, they are handed to
	// it in rounds TickInterval apart (CatchUpFramesPerTick). It is not a clock tick: the
	// node wakes at the cores' deadlines (a Graft, an IHAVE batch, a shuffle round, a
	// catch-up digest) and when a link is due to be closed for silence, so an idle node
	// sleeps between its protocol's own timers.
	TickInterval time.Duration
	// IdleLinkTimeout closes a link to a peer that is no longer a neighbour after this long
	// without a frame either way: the peer was a neighbour over this link and may well be
	// again soon (it stays in the passive view), so the link is kept a while.
	IdleLinkTimeout time.Duration
	// TransientLinkTimeout closes sooner a link whose peer never was a neighbour while it was
	// open: links opened only to carry a SHUFFLE_REPLY, or a NEIGHBOR request that was refused.
	// Their purpose is served by the first frame or the first round trip, and each open link
	// costs both ends CPU (ICE keepalives, heartbeats, SCTP timers) and goroutines until it is
	// closed. It must exceed a request's round trip on an open link, or a link would close
	// under a NEIGHBOR request whose answer is on the way (which the membership core repairs,
	// at a cost); at most IdleLinkTimeout.
	TransientLinkTimeout time.Duration
	// PendingFramesPerPeer bounds the frames queued for a peer while its link is being
	// opened; beyond it frames are dropped and counted.
	PendingFramesPerPeer int
	// DeliveryQueueLength bounds the deliveries waiting for the application to read
	// Deliveries; when it is full the oldest is dropped and counted (Stats.DeliveriesDropped),
	// so a slow reader never stalls the overlay. With catch-up on, up to
	// Gossip.CatchUpMaxMessages more wait inside the node (memory taken only when used): a
	// late joiner may be handed a neighbour's whole history at once, faster than it reads.
	DeliveryQueueLength int
	// EventQueueLength bounds the events waiting on Events, with the same policy.
	EventQueueLength int
	// SlowPeerTimeout is how long a link's send queue may stay full (every frame refused, none
	// taken since the first) before the link is closed as a peer that does not keep up. Until
	// then frames that find it full are dropped and counted (Stats.FramesDropped), and the tree
	// repairs them: a burst must not cost a healthy link. A peer that stopped reading altogether
	// is also caught by the link heartbeat.
	SlowPeerTimeout time.Duration
	// CatchUpFramesPerTick bounds the catch-up frames (DIGEST, HAVE, PULL, HISTORY) handed to
	// one link per TickInterval. A neighbour's PULL is answered with up to
	// Gossip.CatchUpPeerBurst bytes at once, thousands of frames for a late joiner: more than a
	// link's send queue holds (memlink's 256 frames, rtclink's 1 MiB), and a full queue closes
	// the link as slow. So catch-up frames wait in a queue of their own per link (at most twice
	// that burst in bytes) and leave at this pace and at twice Gossip.CatchUpPeerRate in bytes.
	CatchUpFramesPerTick int
	// CatchUpBusyFor is how long after its last catch-up frame a link's full send queue is
	// blamed on catch-up, and the live frame that found it full is dropped (the tree repairs
	// it), rather than on a slow peer, whose link is closed.
	CatchUpBusyFor time.Duration
	// NeedContacts, when set, is called (from the node's goroutine; it must not block) when
	// the node is isolated and every contact it knows failed, or when its repair has made no
	// progress for Membership.StalledRoundsBeforeContacts rounds (a passive view of dead or
	// made-up IDs). It should find live nodes (ask the signaling server) and hand them to
	// Join.
	NeedContacts func()
	// OnMisbehaviour, when set, is told of every broadcast the node refused (a bad signature,
	// a replay, its own ID as origin, a time outside Gossip.MaxClockSkew, a link's or an
	// origin's budget spent) and of the other misbehaviour the gossip core reports (IHave and
	// Graft spam, broken promises), with the peer at fault; peer scoring (Scoring) has weighed
	// it already. It is called from the node's goroutine and must not block. Refusals are
	// counted in Stats either way.
	OnMisbehaviour func(gossip.Misbehaviour)
	// OnMembershipMisbehaviour, when set, is told of every HyParView message the node refused
	// because of its sender (an unsolicited or oversized SHUFFLE_REPLY, a SHUFFLE from a
	// stranger, a flood beyond Membership.PeerMessageRate): the same hook for membership.
	// Same rules as OnMisbehaviour; refusals are counted in Stats.Membership either way.
	OnMembershipMisbehaviour func(membership.Misbehaviour)
	// Seed seeds the cores' random sources; 0 draws one from crypto/rand.
	Seed uint64
	// Now is the clock; nil means time.Now. It is read once at start for the wall-clock time
	// broadcasts carry (the cores run on time since the Unix epoch), then only differences
	// between its readings are used, so the cores' time never goes backwards.
	Now func() time.Time
	// Logger receives the node's logs; the zero value logs nothing.
	Logger zerolog.Logger
}

// DefaultConfig returns the WAN profile: the papers' protocol parameters with timing for links
// that take seconds to open.
func DefaultConfig() Config {
	return Config{
		Membership:           membership.DefaultWANConfig(),
		Gossip:               gossip.DefaultConfig(),
		Scoring:              scoring.DefaultConfig(),
		Routing:              routing.DefaultConfig(),
		RouteShuffleReplies:  true,
		DirectQueueLength:    256,
		SignalQueueLength:    256,
		MaxRoutedSeen:        4096,
		Limits:               wire.DefaultLimits(),
		TickInterval:         100 * time.Millisecond,
		IdleLinkTimeout:      30 * time.Second,
		TransientLinkTimeout: 5 * time.Second,
		PendingFramesPerPeer: 64,
		DeliveryQueueLength:  1024,
		EventQueueLength:     256,
		SlowPeerTimeout:      2 * time.Second,
		CatchUpFramesPerTick: 128,
		CatchUpBusyFor:       2 * time.Second,
		Logger:               zerolog.Nop(),
	}
}

// DefaultLANConfig is DefaultConfig with the LAN timing of membership.DefaultLANConfig, for
// links that open in milliseconds (a LAN, loopback, tests). A message announced but not
// pushed is grafted after 300 ms (Gossip.MissingTimeout; the next announcer 150 ms after
// that) rather than 1 s: on such links a subtree cut off from the tree while broadcasts are
// in flight is repaired within about 350 ms, and the eager path's own delay stays well below
// it while the CPU keeps up (bench/gossipsub at N = 100, 10 ms links, 10 broadcasts a
// second: no Graft, no delivery later than 500 ms).
// Catch-up keeps the same window but compares with a neighbour every 2 s instead of 10 s, so
// what a node missed arrives sooner. It still leaves out of its digests what was sent in the
// last 1.5 s, which the tree may still be delivering, grafts included: a message fetched by
// catch-up while the tree was bringing it costs a payload twice (the core keeps such a race
// from pruning the tree link, see gossip.Core).
func DefaultLANConfig() Config {
	c := DefaultConfig()
	c.Membership = membership.DefaultLANConfig()
	c.IdleLinkTimeout = 10 * time.Second
	c.TransientLinkTimeout = time.Second
	c.Gossip.MissingTimeout = 300 * time.Millisecond
	c.Gossip.GraftRetryTimeout = 150 * time.Millisecond
	c.Gossip.CatchUpInterval = 2 * time.Second
	c.Gossip.CatchUpSettle = 1500 * time.Millisecond
	c.Gossip.CatchUpPullTimeout = 2 * time.Second
	return c
}

// DisableDefences turns off every defence against hostile peers in the protocol cores and peer
// scoring (see overlay.Config.DisableDefences): the paper's trusting protocols, for figures
// beside the defended runs. An open network should never run so.
func (c *Config) DisableDefences() {
	c.Membership.DisableDefences()
	c.Gossip.DisableDefences()
	c.Scoring.DisableDefences()
}

// SetCatchUp sets how far back broadcasts are kept for catch-up (Gossip.CatchUpWindow; 0
// turns catch-up off) and raises Gossip.SeenMaxAge when the window needs it: a message is
// accepted while younger than the larger of the window and Gossip.MaxClockSkew, and its ID
// must be remembered for one skew longer than that (see gossip.Config.MaxClockSkew). It
// refuses a window that is negative or not longer than Gossip.CatchUpInterval plus
// Gossip.CatchUpSettle, which no digest would cover.
func (c *Config) SetCatchUp(window time.Duration) error {
	if window < 0 {
		return fmt.Errorf("node: catch-up window %v must not be negative", window)
	}
	if least := c.Gossip.CatchUpInterval + c.Gossip.CatchUpSettle; window > 0 && window <= least {
		return fmt.Errorf("node: catch-up window %v must be 0 (off) or longer than %v, the catch-up interval (%v) plus settle time (%v)",
			window, least, c.Gossip.CatchUpInterval, c.Gossip.CatchUpSettle)
	}
	c.Gossip.CatchUpWindow = window
	if need := max(window, c.Gossip.MaxClockSkew) + c.Gossip.MaxClockSkew; c.Gossip.SeenMaxAge <= need {
		c.Gossip.SeenMaxAge = need + time.Minute
	}
	return nil
}

// validate refuses a missing or invalid field, the first in field order; the protocol
// templates are checked by overlay.New with the node's fields filled in.
func (c *Config) validate() error {
	switch {
	case c.Transport == nil:
		return errors.New("node: Config.Transport is required")
	case c.Key == nil:
		return errors.New("node: Config.Key is required: the identity key gives the node its ID and signs its broadcasts")
	case c.TickInterval <= 0:
		return fmt.Errorf("node: TickInterval %v must be positive", c.TickInterval)
	case c.IdleLinkTimeout <= 0:
		return fmt.Errorf("node: IdleLinkTimeout %v must be positive", c.IdleLinkTimeout)
	case c.TransientLinkTimeout <= 0 || c.TransientLinkTimeout > c.IdleLinkTimeout:
		return fmt.Errorf("node: TransientLinkTimeout %v must be positive and at most IdleLinkTimeout (%v)", c.TransientLinkTimeout, c.IdleLinkTimeout)
	case c.PendingFramesPerPeer < 1:
		return fmt.Errorf("node: PendingFramesPerPeer %d must be at least 1", c.PendingFramesPerPeer)
	case c.DeliveryQueueLength < 1:
		return fmt.Errorf("node: DeliveryQueueLength %d must be at least 1", c.DeliveryQueueLength)
	case c.EventQueueLength < 1:
		return fmt.Errorf("node: EventQueueLength %d must be at least 1", c.EventQueueLength)
	case c.SlowPeerTimeout < 0:
		return fmt.Errorf("node: SlowPeerTimeout %v must not be negative", c.SlowPeerTimeout)
	case c.CatchUpFramesPerTick < 1:
		return fmt.Errorf("node: CatchUpFramesPerTick %d must be at least 1", c.CatchUpFramesPerTick)
	case c.CatchUpBusyFor < 0:
		return fmt.Errorf("node: CatchUpBusyFor %v must not be negative", c.CatchUpBusyFor)
	case c.DirectQueueLength < 1 || c.SignalQueueLength < 1:
		return fmt.Errorf("node: DirectQueueLength %d and SignalQueueLength %d must be at least 1", c.DirectQueueLength, c.SignalQueueLength)
	case c.MaxRoutedSeen < 1:
		return fmt.Errorf("node: MaxRoutedSeen %d must be at least 1", c.MaxRoutedSeen)
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("node: limits: %w", err)
	}
	if c.Gossip.MaxPayload > c.Limits.MaxPayload {
		return fmt.Errorf("node: Gossip.MaxPayload %d exceeds the wire limit %d: peers would refuse such frames", c.Gossip.MaxPayload, c.Limits.MaxPayload)
	}
	if c.Gossip.CatchUpWindow > 0 {
		if c.Gossip.CatchUpSpans > c.Limits.MaxSpans {
			return fmt.Errorf("node: Gossip.CatchUpSpans %d exceeds the wire limit MaxSpans %d: peers would refuse such Digests", c.Gossip.CatchUpSpans, c.Limits.MaxSpans)
		}
		if c.Gossip.CatchUpMaxRefs > c.Limits.MaxRefs {
			return fmt.Errorf("node: Gossip.CatchUpMaxRefs %d exceeds the wire limit MaxRefs %d: peers would refuse such Haves and Pulls", c.Gossip.CatchUpMaxRefs, c.Limits.MaxRefs)
		}
	}
	return nil
}
