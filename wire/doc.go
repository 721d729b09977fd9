// Package wire is rtcmesh's binary wire format: how the messages of HyParView (package
// membership), Plumtree (package gossip) and the link-control protocol defined here travel
// between two neighbours over their WebRTC data channel.
//
// The encoding is hand-written, versioned and strict. AppendMembership, AppendGossip and
// AppendControl append one frame to a buffer (no allocation when the buffer has room);
// Limits.Decode parses one frame and refuses anything that is not exactly a frame this package
// could have written, with an *Error that says which field at which byte offset was wrong and
// wraps one of ErrMalformed, ErrVersion or ErrTooLarge. Strictness (no trailing bytes, no
// unknown flag bits, minimal varints, no padding) keeps the format honest: every frame has one
// encoding, so decoding and re-encoding any accepted frame gives back the same bytes, and a
// peer that sends anything else is sending garbage and can be disconnected.
//
// Decoded payloads alias the frame (see Gossip below): the caller must not reuse a frame's
// buffer while the decoded message is in use. The runtime hands every received frame its own
// buffer, so aliasing saves a copy of every payload on the hot path.
//
// # Frames
//
// One frame is one data channel message. The transport (SCTP over DTLS, reliable and ordered)
// delimits messages, so a frame has no length prefix of its own: its length is the message's.
// A receiver refuses a frame longer than Limits.MaxFrameSize before looking at it.
//
// Every frame starts with a three-byte header, followed by the fields of its message type in
// the order listed below, and nothing else:
//
//	offset  size  field
//	0       1     version   format version; this package writes and reads 1
//	1       1     protocol  1 membership (HyParView), 2 gossip (Plumtree), 3 link control
//	2       1     type      message type within the protocol (membership.MessageType,
//	                        gossip.MessageType or ControlType: the numeric constants)
//	3       ...   fields    per type, below
//
// # Field encodings
//
//	u8       one byte
//	flags    one byte of bits; a bit not defined for the message type must be 0
//	uvarint  unsigned LEB128 as encoding/binary.AppendUvarint writes it: 7 bits per byte, least
//	         significant group first, high bit set on every byte but the last; at most 10
//	         bytes and minimal (no trailing 0x80 padding groups: 0x80 0x00 is not 0)
//	hops     uvarint at most 65535
//	id       uvarint length n, then n bytes of valid UTF-8; 1 <= n <= 255 (a node ID; the
//	         receiver bounds n by Limits.MaxIDLength)
//	str      uvarint length n, then n bytes of valid UTF-8; 0 <= n <= 255 (the receiver
//	         bounds n by the Limits field named with the message)
//	msgid    16 raw bytes (gossip.MessageID)
//	bytes    uvarint length n, then n raw bytes
//	list(T)  uvarint count c, then c items of T
//
// Strings are UTF-8 because node IDs and network names also travel through the JSON
// signaling protocol and into logs, where invalid UTF-8 would be silently rewritten.
//
// # Protocol 1: membership (HyParView)
//
// A message's fields not listed for its type are zero: AppendMembership refuses a message that
// sets them (they would be lost on the wire, so a core that relies on them has a bug that only
// the real network would show).
//
//	type  name            fields
//	1     JOIN            (none)
//	2     JOIN_REPLY      (none)
//	3     FORWARD_JOIN    Node id, TTL u8
//	4     NEIGHBOR        flags: bit 0 HighPriority
//	5     NEIGHBOR_REPLY  flags: bit 0 Accepted
//	6     DISCONNECT      flags: bit 0 Leaving
//	7     SHUFFLE         Node id, TTL u8, Nodes list(id)  (count <= Limits.MaxNodes)
//	8     SHUFFLE_REPLY   Nodes list(id)  (count <= Limits.MaxNodes)
//
// # Protocol 2: gossip (Plumtree)
//
//	type  name    fields
//	1     GOSSIP  ID msgid, Origin id, Hops hops, Payload bytes (n <= Limits.MaxPayload)
//	2     IHAVE   IHave list(announcement) (count <= Limits.MaxAnnouncements), where
//	              announcement = ID msgid, Hops hops
//	3     GRAFT   ID msgid (all zero: repair the tree only)
//	4     PRUNE   (none)
//
// The decoded Payload of a GOSSIP is a subslice of the frame, capped (cap == len) so that an
// append to it cannot overwrite the frame; a zero-length payload decodes as nil. Empty lists
// (IHAVE, SHUFFLE, SHUFFLE_REPLY) decode as nil.
//
// # Protocol 3: link control
//
// Link control is the runtime's own conversation with its neighbour on a link, below the
// protocols: who is at the other end, is it still there, why is it going away.
//
//	type  name   fields
//	1     HELLO  NodeID id, Network str (n <= Limits.MaxIDLength; may be empty)
//	2     PING   Seq uvarint
//	3     PONG   Seq uvarint (the Seq of the PING answered)
//	4     CLOSE  Reason str (n <= Limits.MaxReasonLength; may be empty)
//
// HELLO is the first frame each side sends on a new link: the identity it claims, which the
// runtime checks against the peer's DTLS certificate fingerprint, and the network (signaling
// room) it belongs to. PING/PONG is the heartbeat that notices a silent peer long before ICE
// does. CLOSE is the last frame before a deliberate close, with a human-readable reason.
//
// # Example
//
// A FORWARD_JOIN for node "n1" with TTL 6 is the 7 bytes
//
//	01 01 03 02 6e 31 06
//	|  |  |  |  '-----'  '- TTL 6
//	|  |  |  '- Node: length 2, "n1"
//	|  |  '- type 3 FORWARD_JOIN
//	|  '- protocol 1 membership
//	'- version 1
//
// testdata/vectors.txt holds a frame of every type, checked by the tests in both directions.
//
// # Versioning
//
// Byte 0 is the format's version, a major version: any change to any layout (a new field, a
// new message type, a new flag bit, a relaxed bound in the table above) makes a new version,
// because the strict decoder has no room for silent extensions and an old receiver must not
// misread a new frame. A receiver decodes the versions it knows (this package: 1) and refuses
// any other with an error wrapping ErrVersion that names the version, so the runtime can log
// "peer speaks wire version N" and close the link instead of guessing. A future version that
// must interoperate with this one has to keep decoding version 1 and answer a version-1 peer
// in version 1; the HELLO exchange, the first frame on every link, is where a node learns
// which version its peer speaks.
//
// # Limits
//
// The format itself bounds only what is written above (strings of at most 255 bytes, hops of
// at most 65535). Everything else a receiver accepts is its own policy, in Limits; a limit
// exceeded is an error wrapping ErrTooLarge, a frame that breaks the format one wrapping
// ErrMalformed. Decoding never panics and never allocates more than in proportion to the frame:
// every count and length is checked against both its limit and the bytes that remain before
// anything is allocated for it.
package wire
