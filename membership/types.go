// Package membership implements HyParView (Leitão, Pereira, Rodrigues, DSN 2007), the
// partial-view membership protocol of rtcmesh, as a deterministic state machine.
//
// The core never touches the network, a clock, a goroutine or a global random source. A driver
// (the simulator in sim/, or the runtime in node/) feeds it messages with Step, time with Tick
// and link failures with PeerDown, then collects what to do with Ready: messages to send and
// NeighborUp/NeighborDown events. Every peer is addressed by its node ID; how a message reaches
// a peer (an open link, a temporary link, a simulated network) is the driver's business, and a
// send that cannot be delivered comes back as PeerDown.
//
// Each node keeps a small symmetric active view (the peers it has links to, the overlay's
// edges) and a larger passive view (a random sample of the network used to repair the active
// view). The active view changes only when something happens (a join, a failure, a
// disconnect); the passive view is refreshed by a periodic shuffle, a random walk that trades
// samples with a distant node.
package membership

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// MessageType identifies a HyParView message.
type MessageType uint8

// The HyParView messages. The numeric values are part of the wire format (see package wire)
// and must never be reused.
const (
	// Join is sent by a new node to its contact. The contact adds the sender to its active view,
	// answers with JoinReply and starts a ForwardJoin walk along each of its other neighbours.
	Join MessageType = 1
	// JoinReply tells the joining node that the contact added it to its active view, so the
	// joiner adds the contact in turn and the link is symmetric.
	JoinReply MessageType = 2
	// ForwardJoin carries the joining node (Node) on a random walk of TTL hops. At the end of the
	// walk (TTL 0, or a node with a single neighbour) the receiver asks the joiner to become its
	// neighbour with a high-priority Neighbor request; at TTL == PRWL it also adds the joiner to
	// its passive view.
	ForwardJoin MessageType = 3
	// Neighbor asks the receiver to add the sender to its active view. A high-priority request
	// (the sender has no other neighbour, it ends a join walk, or its repair found every
	// passive peer full for two shuffle rounds) is always accepted, dropping a random active
	// peer if the view is full; a low-priority one is accepted only when there is room.
	Neighbor MessageType = 4
	// NeighborReply answers Neighbor. Accepted true means the replier added the sender to its
	// active view, and the sender now does the same (or, if it no longer wants the link,
	// answers Disconnect); false means the request was refused and the sender tries another
	// passive peer.
	NeighborReply MessageType = 5
	// Disconnect tells the receiver that the sender removed it from its active view. The receiver
	// removes the sender too and keeps it in its passive view, unless Leaving is set (the sender
	// is shutting down), in which case it forgets the sender. Either way the receiver then
	// tries to fill the freed slot from its passive view.
	Disconnect MessageType = 6
	// Shuffle carries a sample of the origin's views (Nodes) on a random walk of TTL hops. The
	// node where the walk ends answers the origin with ShuffleReply and merges the sample into
	// its passive view.
	Shuffle MessageType = 7
	// ShuffleReply carries a sample of the replier's passive view back to the shuffle's origin,
	// which merges it into its passive view, evicting first the entries it had sent.
	ShuffleReply MessageType = 8
)

var messageTypeNames = [...]string{
	Join: "JOIN", JoinReply: "JOIN_REPLY", ForwardJoin: "FORWARD_JOIN", Neighbor: "NEIGHBOR",
	NeighborReply: "NEIGHBOR_REPLY", Disconnect: "DISCONNECT", Shuffle: "SHUFFLE",
	ShuffleReply: "SHUFFLE_REPLY",
}

// String returns the message type's name as the paper writes it, e.g. "FORWARD_JOIN".
func (t MessageType) String() string {
	if int(t) < len(messageTypeNames) && messageTypeNames[t] != "" {
		return messageTypeNames[t]
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Valid reports whether t is one of the defined message types.
func (t MessageType) Valid() bool { return t >= Join && t <= ShuffleReply }

// Message is one HyParView message. It is a flat struct, like raft's pb.Message: only the fields
// its Type documents are meaningful, the others are zero. The sender is not part of the message;
// the driver passes it to Step (on the real network it is the authenticated peer at the other
// end of the link).
type Message struct {
	Type MessageType
	// Node is the joining node (ForwardJoin) or the origin of the walk (Shuffle).
	Node string
	// TTL is the number of hops the walk may still take (ForwardJoin, Shuffle).
	TTL uint8
	// HighPriority marks a Neighbor request that must not be refused.
	HighPriority bool
	// Accepted is the answer to a Neighbor request (NeighborReply).
	Accepted bool
	// Leaving marks a Disconnect sent because the sender shuts down.
	Leaving bool
	// Nodes is the sample of node IDs exchanged by Shuffle and ShuffleReply.
	Nodes []string
}

// Envelope is a message the driver must deliver to a peer.
type Envelope struct {
	To  string
	Msg Message
}

// EventType says what changed in the active view.
type EventType uint8

const (
	// NeighborUp: the peer entered the active view; both ends agreed, so the link is symmetric.
	NeighborUp EventType = 1
	// NeighborDown: the peer left the active view (failure, disconnect or eviction).
	NeighborDown EventType = 2
	// NeedContacts: the node cannot find neighbours by itself: it is isolated and every
	// contact it knows failed (after a mass failure its passive view and its contacts may all
	// be dead), or its active view is not full and its passive view is empty (a few nodes of a
	// small overlay that know only each other). Peer is empty. The driver should find live
	// nodes elsewhere (the signaling server's peer list) and call Join with one that is not
	// already a neighbour. Repeated at most once per RejoinBackoff while the condition lasts.
	NeedContacts EventType = 3
)

// String returns "NeighborUp" or "NeighborDown".
func (t EventType) String() string {
	switch t {
	case NeighborUp:
		return "NeighborUp"
	case NeighborDown:
		return "NeighborDown"
	case NeedContacts:
		return "NeedContacts"
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Event reports a change of the active view (Plumtree, package gossip, consumes these) or that
// the node needs fresh contacts.
type Event struct {
	Type EventType
	Peer string
}

// Ready is what the driver must do after Step, Tick, PeerDown, Join or Leave: send Messages
// (in order; per destination the order matters) and hand Events to the layers above. The
// slices belong to the caller.
type Ready struct {
	Messages []Envelope
	Events   []Event
}

// Empty reports whether there is nothing to do.
func (rd Ready) Empty() bool { return len(rd.Messages) == 0 && len(rd.Events) == 0 }

// Stats are counters and gauges a driver may export as metrics.
type Stats struct {
	ActiveSize, PassiveSize int
	// MessagesReceived counts every message handed to Step, by type.
	MessagesReceived [ShuffleReply + 1]uint64
	// MessagesSent counts every message put into Ready, by type.
	MessagesSent [ShuffleReply + 1]uint64
	// PeerDowns counts PeerDown reports; Rejoins counts joins restarted through a contact
	// because both views ran empty.
	PeerDowns, Rejoins uint64
	// InvalidMessages counts messages Step refused with an error.
	InvalidMessages uint64
}

// Config configures one HyParView core. DefaultConfig returns the paper's parameters; the
// named profiles (DefaultLANConfig, DefaultWANConfig) differ only in timing.
type Config struct {
	// Self is this node's ID. Required. A message that names Self as a peer is ignored.
	Self string
	// Rand is this node's random source: peer selection, walks and samples. Required. It is
	// never shared between cores, so a seeded source makes the core fully deterministic.
	Rand *rand.Rand
	// Contacts are the nodes to join through, tried in order by Join and again (in random
	// order) whenever both views run empty, so a node never stays isolated.
	Contacts []string

	// ActiveSize is the maximum size of the active view (the paper's fanout + 1; 5).
	ActiveSize int
	// PassiveSize is the maximum size of the passive view (30).
	PassiveSize int
	// ARWL, the active random walk length, is the TTL of a ForwardJoin walk (6).
	ARWL uint8
	// PRWL, the passive random walk length: a ForwardJoin that arrives with this TTL also puts
	// the joiner into the receiver's passive view (3). Must not exceed ARWL.
	PRWL uint8
	// ShuffleActive (ka) is how many active peers a shuffle sample carries (3).
	ShuffleActive int
	// ShufflePassive (kp) is how many passive peers a shuffle sample carries (4).
	ShufflePassive int
	// ShuffleTTL is the length of the shuffle's random walk. The paper uses ARWL (6).
	ShuffleTTL uint8
	// ShuffleInterval is the period of the shuffle, one membership round. Each core starts
	// its first round at a random offset within the interval so rounds do not synchronise.
	// A node whose active view is not full also retries its repair every round.
	ShuffleInterval time.Duration
	// NeighborTimeout bounds how long a Neighbor request (or a Join) waits for its reply
	// before the peer is treated as unreachable and the next candidate is tried.
	NeighborTimeout time.Duration
	// RejoinBackoff is how long an isolated node waits between attempts to re-join through
	// its contacts, and how long a node emptied twice in a row by evictions waits before
	// asking again (which stops eviction chains in overlays with fewer slots than nodes).
	RejoinBackoff time.Duration
	// MaxMessageNodes bounds Message.Nodes accepted from a peer; a longer list is an error.
	MaxMessageNodes int
}

// DefaultConfig returns the paper's parameters (active 5, passive 30, ARWL 6, PRWL 3, ka 3,
// kp 4) with timing suited to a WAN of WebRTC links. Self and Rand must still be set.
func DefaultConfig() Config { return DefaultWANConfig() }

// DefaultWANConfig is DefaultConfig: timing for links across the internet, where a new link
// takes a signaling round trip and ICE checks (seconds) to open.
func DefaultWANConfig() Config {
	return Config{
		ActiveSize: 5, PassiveSize: 30, ARWL: 6, PRWL: 3,
		ShuffleActive: 3, ShufflePassive: 4, ShuffleTTL: 6,
		ShuffleInterval: 10 * time.Second,
		NeighborTimeout: 15 * time.Second,
		RejoinBackoff:   5 * time.Second,
		MaxMessageNodes: 64,
	}
}

// DefaultLANConfig has the paper's sizes with faster timing for a LAN or a test, where links
// open in milliseconds.
func DefaultLANConfig() Config {
	c := DefaultWANConfig()
	c.ShuffleInterval = 2 * time.Second
	c.NeighborTimeout = 3 * time.Second
	c.RejoinBackoff = time.Second
	return c
}
