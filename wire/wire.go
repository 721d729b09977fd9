package wire

import (
	"errors"
	"fmt"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/routing"
)

// Version is the format version this package writes and the only one it reads. Version 2
// added the signed-broadcast fields of GOSSIP (Seq, Time, Proof) and the catch-up types 5–8
// (DIGEST, HAVE, PULL, HISTORY); version 1 frames are refused.
const Version = 2

// Format bounds: what version 2 can carry at all, whatever a receiver's Limits say.
const (
	// MaxStringLength bounds every string field (node IDs, network names, close reasons).
	MaxStringLength = 255
	// MaxHops bounds every hop count; it is the range of gossip's uint16 Hops.
	MaxHops = 65535
)

// headerSize is the version, protocol and type bytes that start every frame.
const headerSize = 3

// Protocol says which protocol a frame belongs to (byte 1 of every frame).
type Protocol uint8

// The protocols of version 2 (unchanged since version 1). The numeric values are part of the
// format.
const (
	// ProtocolMembership frames carry a membership.Message (HyParView).
	ProtocolMembership Protocol = 1
	// ProtocolGossip frames carry a gossip.Message (Plumtree).
	ProtocolGossip Protocol = 2
	// ProtocolControl frames carry a Control message (link control).
	ProtocolControl Protocol = 3
	// ProtocolRouting frames carry a routing.Message: a signed envelope routed through the
	// overlay, or a neighbour's active view (routing.go). Added within version 2: a node
	// that predates it refuses the frame as an unknown protocol, and its link is closed.
	ProtocolRouting Protocol = 4
)

// String returns "membership", "gossip", "control" or "routing".
func (p Protocol) String() string {
	switch p {
	case ProtocolMembership:
		return "membership"
	case ProtocolGossip:
		return "gossip"
	case ProtocolControl:
		return "control"
	case ProtocolRouting:
		return "routing"
	}
	return fmt.Sprintf("Protocol(%d)", uint8(p))
}

// ControlType identifies a link-control message.
type ControlType uint8

// The link-control messages. The numeric values are part of the format and must never be
// reused.
const (
	// ControlHello carries a node ID and a network (signaling room). It proves nothing: the
	// runtime does not send it today, and an ID it carries must not be trusted (a link's
	// peer is proven by the link layer).
	ControlHello ControlType = 1
	// ControlPing asks the peer to answer with a ControlPong carrying the same Seq; the
	// runtime's heartbeat, which notices a silent peer long before ICE does.
	ControlPing ControlType = 2
	// ControlPong answers the ControlPing with the same Seq.
	ControlPong ControlType = 3
	// ControlClose is the last frame before a deliberate close, with a readable Reason.
	ControlClose ControlType = 4
)

var controlTypeNames = [...]string{
	ControlHello: "HELLO", ControlPing: "PING", ControlPong: "PONG", ControlClose: "CLOSE",
}

// String returns the type's name, e.g. "HELLO".
func (t ControlType) String() string {
	if int(t) < len(controlTypeNames) && controlTypeNames[t] != "" {
		return controlTypeNames[t]
	}
	return fmt.Sprintf("ControlType(%d)", uint8(t))
}

// Valid reports whether t is one of the defined link-control types.
func (t ControlType) Valid() bool { return t >= ControlHello && t <= ControlClose }

// Control is one link-control message, a flat struct like the cores' messages: only the fields
// its Type documents are meaningful, the others are zero.
type Control struct {
	Type ControlType
	// NodeID is the ID the sender claims, unproven (Hello). Non-empty.
	NodeID string
	// Network is the network (signaling room) the sender belongs to (Hello). May be empty.
	Network string
	// Seq numbers a heartbeat (Ping, and the Pong that answers it).
	Seq uint64
	// Reason says why the sender closes the link (Close). May be empty.
	Reason string
}

// Frame is one decoded frame. Exactly one of Membership, Gossip, Control and Routing is
// meaningful, the one Protocol names; the others are zero.
type Frame struct {
	Protocol   Protocol
	Membership membership.Message
	Gossip     gossip.Message
	Control    Control
	Routing    routing.Message
}

// Limits is what a receiver accepts from a peer, beyond the format's own bounds. A frame that
// exceeds a limit is refused with an error wrapping ErrTooLarge. DefaultLimits matches the
// cores' default configurations; Validate checks a custom set.
type Limits struct {
	// MaxFrameSize bounds a whole frame in bytes; a longer frame is refused before it is
	// parsed. It must hold the largest frame the other limits admit (Validate checks), and
	// should not exceed the data channel's maximum message size (SCTP's negotiated
	// max-message-size; 64 KiB is safe with every browser).
	MaxFrameSize int
	// MaxIDLength bounds a node ID (membership Node and Nodes, gossip Origin, Hello NodeID)
	// and a Hello's Network, in bytes. At most MaxStringLength.
	MaxIDLength int
	// MaxNodes bounds the node list of a SHUFFLE or SHUFFLE_REPLY (membership.Message.Nodes).
	// It should be at least membership.Config.MaxMessageNodes of the peers.
	MaxNodes int
	// MaxAnnouncements bounds the announcements of one IHAVE (gossip.Message.IHave). It should
	// be at least gossip.Config.LazyBatchMax of the peers.
	MaxAnnouncements int
	// MaxPayload bounds a GOSSIP payload in bytes. It should be at least
	// gossip.Config.MaxPayload of the peers, or their largest broadcasts cannot cross.
	MaxPayload int
	// MaxReasonLength bounds a CLOSE reason in bytes. At most MaxStringLength.
	MaxReasonLength int
	// MaxProof bounds a GOSSIP's Proof in bytes (the origin's public key ‖ signature: 96 for
	// Ed25519).
	MaxProof int
	// MaxSpans bounds the spans of one DIGEST or HAVE (gossip.Message.Spans). It should be at
	// least gossip.Config.CatchUpSpans of the peers.
	MaxSpans int
	// MaxRefs bounds the message references of one HAVE or PULL (gossip.Message.Refs). It
	// should be at least gossip.Config.CatchUpMaxRefs of the peers.
	MaxRefs int
}

// DefaultLimits returns the limits for the cores' default configurations: 64 KiB frames,
// node IDs of up to 64 bytes (an ID is 52 characters of base32), the membership and gossip
// defaults for list and payload sizes, IHAVE batches of up to 256, four times what a
// default gossip core sends, so a peer configured to batch more is not cut off, proofs of
// up to 128 bytes (an Ed25519 public key and signature take 96), catch-up spans of up to 64
// per DIGEST or HAVE (four times a default core's) and the default core's 1,024 references
// per HAVE or PULL.
func DefaultLimits() Limits {
	return Limits{
		MaxFrameSize:     64 * 1024,
		MaxIDLength:      64,
		MaxNodes:         membership.DefaultConfig().MaxMessageNodes,
		MaxAnnouncements: 4 * gossip.DefaultConfig().LazyBatchMax,
		MaxPayload:       gossip.DefaultConfig().MaxPayload,
		MaxReasonLength:  128,
		MaxProof:         128,
		MaxSpans:         4 * gossip.DefaultConfig().CatchUpSpans,
		MaxRefs:          gossip.DefaultConfig().CatchUpMaxRefs,
	}
}

// Validate reports whether the limits make sense: every limit positive, string limits within
// the format's MaxStringLength, and MaxFrameSize large enough for the largest frame the other
// limits admit (so no frame is refused for its size that every field of would be accepted).
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"MaxFrameSize", l.MaxFrameSize}, {"MaxIDLength", l.MaxIDLength},
		{"MaxNodes", l.MaxNodes}, {"MaxAnnouncements", l.MaxAnnouncements},
		{"MaxPayload", l.MaxPayload}, {"MaxReasonLength", l.MaxReasonLength},
		{"MaxProof", l.MaxProof}, {"MaxSpans", l.MaxSpans}, {"MaxRefs", l.MaxRefs},
	} {
		if f.v <= 0 {
			return fmt.Errorf("wire: Limits.%s is %d, must be positive", f.name, f.v)
		}
	}
	if l.MaxIDLength > MaxStringLength {
		return fmt.Errorf("wire: Limits.MaxIDLength is %d, the format allows at most %d", l.MaxIDLength, MaxStringLength)
	}
	if l.MaxReasonLength > MaxStringLength {
		return fmt.Errorf("wire: Limits.MaxReasonLength is %d, the format allows at most %d", l.MaxReasonLength, MaxStringLength)
	}
	if need := l.largestFrame(); l.MaxFrameSize < need {
		return fmt.Errorf("wire: Limits.MaxFrameSize is %d, the other limits admit frames of up to %d bytes", l.MaxFrameSize, need)
	}
	return nil
}

// largestFrame is the size of the largest frame that every other limit admits.
func (l Limits) largestFrame() int {
	id := uvarintLen(uint64(l.MaxIDLength)) + l.MaxIDLength
	shuffle := headerSize + id + 1 + uvarintLen(uint64(l.MaxNodes)) + l.MaxNodes*id
	hops := uvarintLen(MaxHops)
	gossipFrame := headerSize + 16 + id + hops + 2*binaryMaxVarintLen64 +
		uvarintLen(uint64(l.MaxPayload)) + l.MaxPayload + uvarintLen(uint64(l.MaxProof)) + l.MaxProof
	ihave := headerSize + uvarintLen(uint64(l.MaxAnnouncements)) + l.MaxAnnouncements*(16+hops)
	hello := headerSize + 2*id
	closeFrame := headerSize + uvarintLen(uint64(l.MaxReasonLength)) + l.MaxReasonLength
	// HISTORY has GOSSIP's fields, so gossipFrame covers it.
	return max(shuffle, gossipFrame, ihave, hello, closeFrame, headerSize+10,
		l.largestDigest(), l.largestHave(), l.largestPull(), l.largestRouted())
}

// maxCountLen is the longest encoding of a span's Count (a uint32 as a uvarint).
const maxCountLen = 5

// largestDigest is the size of the largest DIGEST the limits admit: salt, span count, the
// first span's From, then per span its width, count and hash, every varint at its longest.
func (l Limits) largestDigest() int {
	return headerSize + 8 + uvarintLen(uint64(l.MaxSpans)) + binaryMaxVarintLen64 +
		l.MaxSpans*(binaryMaxVarintLen64+maxCountLen+8)
}

// largestHave is the size of the largest HAVE the limits admit: flags, span count, per span
// its From, width and count, then the refs.
func (l Limits) largestHave() int {
	return headerSize + 1 + uvarintLen(uint64(l.MaxSpans)) +
		l.MaxSpans*(2*binaryMaxVarintLen64+maxCountLen) + l.largestRefs()
}

// largestPull is the size of the largest PULL the limits admit.
func (l Limits) largestPull() int { return headerSize + l.largestRefs() }

// largestRefs is the size of the longest refs list the limits admit: the count, then per
// ref a time (delta) and an ID.
func (l Limits) largestRefs() int {
	return uvarintLen(uint64(l.MaxRefs)) + l.MaxRefs*(binaryMaxVarintLen64+16)
}

// binaryMaxVarintLen64 is the longest (u)varint: a GOSSIP's Seq and Time, a span's From and
// width and a ref's time take at most this.
const binaryMaxVarintLen64 = 10

// uvarintLen is the length of v's uvarint encoding.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// The kinds of error. Every error returned by this package is an *Error wrapping one of them,
// so callers test with errors.Is.
var (
	// ErrMalformed: the frame breaks the format (truncated, trailing bytes, unknown protocol,
	// type or flag, bad varint, invalid UTF-8, a value out of the format's range).
	ErrMalformed = errors.New("malformed frame")
	// ErrVersion: the frame's version byte is not one this package reads.
	ErrVersion = errors.New("unsupported version")
	// ErrTooLarge: the frame or one of its fields exceeds the receiver's Limits.
	ErrTooLarge = errors.New("limit exceeded")
	// ErrInvalidMessage: the message given to an Append function cannot be encoded (unknown
	// type, a field its type does not carry is set, a string empty or too long, a hop count
	// out of range).
	ErrInvalidMessage = errors.New("invalid message")
)

// Error describes why a frame could not be decoded or a message encoded.
type Error struct {
	// Op is "decode" or "encode".
	Op string
	// Protocol and Type identify the message, once known (zero before the header is read).
	Protocol Protocol
	Type     uint8
	// Field names the field at fault, e.g. "origin" or "nodes[3]".
	Field string
	// Offset is the byte offset of the field in the frame when decoding, -1 when encoding.
	Offset int
	// Kind is ErrMalformed, ErrVersion, ErrTooLarge or ErrInvalidMessage.
	Kind error
	// Detail says what exactly is wrong.
	Detail string
}

// Error formats the error as, for example,
// "wire: decode gossip GOSSIP: origin at offset 20: limit exceeded: length 80 > MaxIDLength 64".
func (e *Error) Error() string {
	s := "wire: " + e.Op
	if e.Protocol != 0 {
		s += " " + e.Protocol.String() + " " + typeName(e.Protocol, e.Type)
	}
	s += ": " + e.Field
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at offset %d", e.Offset)
	}
	return s + ": " + e.Kind.Error() + ": " + e.Detail
}

// Unwrap returns Kind, so errors.Is(err, ErrMalformed) and friends work.
func (e *Error) Unwrap() error { return e.Kind }

// typeName names message type t of protocol p.
func typeName(p Protocol, t uint8) string {
	switch p {
	case ProtocolMembership:
		return membership.MessageType(t).String()
	case ProtocolGossip:
		return gossip.MessageType(t).String()
	case ProtocolControl:
		return ControlType(t).String()
	case ProtocolRouting:
		return routing.MessageType(t).String()
	}
	return fmt.Sprintf("type(%d)", t)
}
