// Package link defines links between rtcmesh nodes. A Transport opens links to
// peers by node ID and accepts links from them; the node runtime sees only this
// interface. Two implementations exist: link/rtclink (pion WebRTC data
// channels, for real use) and link/memlink (in-memory, for running thousands of
// complete nodes in one process).
//
// Contract shared by all implementations:
//
//   - At most one link per peer pair. If both sides Dial each other at the same
//     time, exactly one link results (each implementation documents its rule).
//   - Every LinkUp for a peer is followed, eventually, by exactly one LinkDown
//     for that peer (unless the Transport is closed first). Every Dial that
//     does not end in LinkUp ends in exactly one LinkDown. Inbound attempts
//     that fail before coming up produce no event (they are logged).
//   - Frames on one link are delivered in order, reliably, each exactly as
//     sent (one Send = one Frame event), and only between LinkUp and LinkDown.
//   - Events are delivered on one bounded channel. The consumer must drain it
//     continuously: when it is full, the Transport stops reading from links,
//     which back-pressures the senders (their Send returns ErrQueueFull).
//     After Close the channel is closed.
package link

import (
	"errors"
	"fmt"
	"time"
)

// DefaultHeartbeatTimeout is how long a link may stay silent before its Transport reports it
// down. It is the default of every Transport (rtclink, memlink) and of the simulator's model of
// them, defined once here so the three cannot drift apart.
const DefaultHeartbeatTimeout = 5 * time.Second

// Path says how a link's packets travel.
type Path string

// Paths. For WebRTC links these are ICE candidate types of the selected
// pair; see rtclink for the exact rule.
const (
	PathHost   Path = "host"   // direct, to an address of the peer's own interface
	PathSrflx  Path = "srflx"  // through a NAT mapping learnt from STUN
	PathPrflx  Path = "prflx"  // through an address learnt from connectivity checks
	PathRelay  Path = "relay"  // through a TURN relay
	PathMemory Path = "memory" // in-process (memlink)
)

// EventType says what an Event reports.
type EventType uint8

// Event types.
const (
	// LinkUp: a link to Peer is open and Send may be used. Path is set.
	LinkUp EventType = iota + 1
	// LinkDown: the link to Peer is gone, or a Dial failed. Reason says why.
	LinkDown
	// Frame: Peer sent Data on an open link.
	Frame
)

func (t EventType) String() string {
	switch t {
	case LinkUp:
		return "LinkUp"
	case LinkDown:
		return "LinkDown"
	case Frame:
		return "Frame"
	default:
		return fmt.Sprintf("EventType(%d)", uint8(t))
	}
}

// Event is something that happened on a Transport.
type Event struct {
	Type EventType
	Peer string // node ID of the remote end
	Path Path   // LinkUp only
	// Reason is a short human-readable cause, LinkDown only. Standard reasons
	// are the Reason* constants; implementations may add detail after ": ".
	Reason string
	// Data is the frame, Frame only. The receiver owns it.
	Data []byte
}

func (e Event) String() string {
	switch e.Type {
	case LinkUp:
		return fmt.Sprintf("LinkUp %s via %s", e.Peer, e.Path)
	case LinkDown:
		return fmt.Sprintf("LinkDown %s: %s", e.Peer, e.Reason)
	case Frame:
		return fmt.Sprintf("Frame %s %dB", e.Peer, len(e.Data))
	default:
		return fmt.Sprintf("%v %s", e.Type, e.Peer)
	}
}

// Standard LinkDown reasons. Matching on them is meant for logs, metrics and
// tests; the runtime treats every LinkDown alike (PeerDown to the cores).
const (
	ReasonClosed           = "closed"            // CloseLink on this side; the given reason follows ": "
	ReasonClosedByPeer     = "closed by peer"    // the peer closed the link; its reason may follow ": "
	ReasonHeartbeatTimeout = "heartbeat timeout" // nothing received for the heartbeat timeout
	ReasonDialTimeout      = "dial timeout"      // the link did not come up in time
	ReasonIdentityMismatch = "identity mismatch" // the peer's certificate does not hash to its ID
	ReasonFrameTooLarge    = "frame too large"   // the peer sent a frame above our limit
	ReasonUnreachable      = "unreachable"       // the peer is unknown or refused the link
	ReasonTooManyLinks     = "too many links"    // this Transport's link limit is reached
	ReasonReplaced         = "replaced"          // the peer opened a new link that replaces this one
	ReasonConnectionFailed = "connection failed" // the underlying connection failed (e.g. ICE failed)
)

// LinkInfo describes one open link.
type LinkInfo struct {
	Peer      string
	Path      Path
	Since     time.Time // when the link came up
	BytesIn   uint64    // frame payload bytes received
	BytesOut  uint64    // frame payload bytes accepted by Send
	FramesIn  uint64
	FramesOut uint64
	RTT       time.Duration // last heartbeat round trip; 0 if not yet known
}

// Transport opens and accepts links. All methods are safe for concurrent use
// and none blocks on the network.
type Transport interface {
	// Dial starts opening a link to peer. The result is reported as LinkUp or
	// LinkDown. It is a no-op if a link to peer exists or is being opened.
	Dial(peer string)
	// Send queues one frame to peer. It never blocks. Errors: ErrNoLink (no
	// open link), ErrQueueFull (the link's bounded send queue is full; the
	// frame is dropped), ErrFrameTooLarge, ErrClosed. The Transport copies
	// what it needs: the caller may reuse frame after Send returns.
	Send(peer string, frame []byte) error
	// CloseLink closes the link to peer (open or being opened), if any; a
	// LinkDown with reason "closed: <reason>" follows.
	CloseLink(peer, reason string)
	// Events returns the event channel. There must be a single consumer that
	// drains it continuously (see the package comment). Closed after Close.
	Events() <-chan Event
	// Links lists the open links.
	Links() []LinkInfo
	// Close closes every link and stops the Transport. No LinkDown events are
	// sent for links closed by Close. Safe to call more than once.
	Close() error
}

// Errors returned by Send.
var (
	ErrNoLink        = errors.New("link: no open link to peer")
	ErrQueueFull     = errors.New("link: send queue full")
	ErrFrameTooLarge = errors.New("link: frame too large")
	ErrClosed        = errors.New("link: transport closed")
)
