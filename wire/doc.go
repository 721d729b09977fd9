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
// Decoded payloads and proofs alias the frame (see Gossip below): the caller must not reuse a
// frame's buffer while the decoded message is in use. The runtime hands every received frame its own
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
//	0       1     version   format version; this package writes and reads 2
//	1       1     protocol  1 membership (HyParView), 2 gossip (Plumtree), 3 link control,
//	                        4 routing
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
//	varint   a signed 64-bit integer as encoding/binary.AppendVarint writes it: zigzag
//	         (0, -1, 1, -2, ... become 0, 1, 2, 3, ...), then a uvarint as above
//	hops     uvarint at most 65535
//	id       uvarint length n, then n bytes of valid UTF-8; 1 <= n <= 255 (a node ID; the
//	         receiver bounds n by Limits.MaxIDLength)
//	str      uvarint length n, then n bytes of valid UTF-8; 0 <= n <= 255 (the receiver
//	         bounds n by the Limits field named with the message)
//	msgid    16 raw bytes (gossip.MessageID)
//	u64be    8 raw bytes, an unsigned 64-bit integer, most significant byte first
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
//	1     GOSSIP  ID msgid, Origin id, Hops hops, Seq uvarint, Time varint,
//	              Payload bytes (n <= Limits.MaxPayload), Proof bytes (n <= Limits.MaxProof)
//	2     IHAVE   IHave list(announcement) (count <= Limits.MaxAnnouncements), where
//	              announcement = ID msgid, Hops hops
//	3     GRAFT   ID msgid (all zero: repair the tree only)
//	4     PRUNE   (none)
//	5     DIGEST  Salt u64be, Spans dspans (1 <= count <= Limits.MaxSpans)
//	6     HAVE    flags: bit 0 Reply; Spans list(hspan) (count <= Limits.MaxSpans); Refs refs
//	7     PULL    Refs refs (count >= 1)
//	8     HISTORY  the fields of GOSSIP, with the same bounds
//
// GOSSIP is a signed broadcast: Seq is the origin's sequence number (gossip.Message.Seq),
// Time the origin's clock in milliseconds when it broadcast (since the Unix epoch in the
// runtime), Proof the origin's proof of authorship over ID, Origin, Seq, Time and Payload (the
// runtime's: Ed25519 public key ‖ signature, 96 bytes; empty when unsigned). Hops is not
// signed: each relay adds one. The format checks none of it (a Seq of 0 or an empty Proof
// decode): the gossip core does, before it delivers or forwards.
//
// Types 5–8 carry catch-up (anti-entropy, see gossip/catchup.go), by which neighbours find and
// fetch the broadcasts one of them missed; times are origin times in milliseconds, as a
// GOSSIP's Time, and a span is the range [From, To) of them:
//
//	dspans  uvarint count n, then the first span's From varint, then n times: width
//	        uvarint (To - From, > 0), Count uvarint (<= 2^32-1), Hash u64be. Each span
//	        starts where the previous one ends, so a DIGEST's spans are consecutive by
//	        construction.
//	hspan   From varint, width uvarint (To - From, > 0), Count uvarint (<= 2^32-1). Each
//	        From is at least the previous span's To (increasing, not overlapping). A HAVE's
//	        spans carry no Hash.
//	refs    uvarint count c (<= Limits.MaxRefs), then c times: Time varint, the difference
//	        from the previous ref's Time (the first ref's Time itself), then ID msgid. Refs
//	        need not be sorted, but two consecutive times must differ by what an int64 holds.
//
// A To (From + width) or a ref's Time (previous Time + difference) beyond the int64 range is
// malformed. AppendGossip refuses what the format cannot carry: an empty or reversed span,
// spans not consecutive in a DIGEST or overlapping in a HAVE, a HAVE span with a Hash,
// consecutive ref times too far apart, a DIGEST without spans, a PULL without refs. HISTORY answers a PULL
// with a message's payload, exactly as a GOSSIP carries it. A summary DIGEST with one span,
// ms-since-the-epoch times and a width of a few minutes takes 30 or 31 bytes; a HAVE or PULL
// of 1,024 refs sorted by time about 18 KB (17 or 18 bytes a ref).
//
// The decoded Payload and Proof of a GOSSIP or HISTORY are subslices of the frame, capped
// (cap == len) so that an append to them cannot overwrite the frame; a zero-length one decodes
// as nil. Empty lists (IHAVE, SHUFFLE, SHUFFLE_REPLY, a HAVE's spans and refs) decode as nil.
//
// # Protocol 3: link control
//
// Link control is the runtime's own conversation with its neighbour on a link, below the
// protocols: is it still there, why is it going away.
//
//	type  name   fields
//	1     HELLO  NodeID id, Network str (n <= Limits.MaxIDLength; may be empty)
//	2     PING   Seq uvarint
//	3     PONG   Seq uvarint (the Seq of the PING answered)
//	4     CLOSE  Reason str (n <= Limits.MaxReasonLength; may be empty)
//
// HELLO carries a node ID and a network (signaling room). Nothing in rtcmesh sends it or reads
// it today, and its NodeID proves nothing, so no receiver may act on it: who is at the other
// end of a link is the link layer's business (link/rtclink checks the peer's DTLS certificate
// against its ID, and is to prove the peer's identity key before any frame is accepted).
// PING/PONG is the heartbeat that notices a silent peer long before ICE does. CLOSE is the
// last frame before a deliberate close, with a human-readable reason.
//
// # Protocol 4: routing
//
// Package routing's messages (AppendRouting): envelopes routed through the overlay, and the
// active views neighbours tell each other so that each knows two hops around it.
//
//	type  name    fields
//	1     ROUTED  Source id, Target id, Via str (n <= Limits.MaxIDLength; may be empty),
//	              HopLimit byte, Waypoints byte, Kind byte (1 signal, 2 direct),
//	              Time varint (Unix ms),
//	              Body bytes (n <= Limits.MaxPayload), Proof bytes (n <= Limits.MaxProof)
//	2     VIEW    Nodes ids
//
// Relays change only HopLimit, Via and Waypoints; the source signs the rest and the target's runtime
// checks the Proof. Body and Proof alias the frame, like a GOSSIP's payload.
//
// # Example
//
// A FORWARD_JOIN for node "n1" with TTL 6 is the 7 bytes
//
//	02 01 03 02 6e 31 06
//	|  |  |  |  '-----'  '- TTL 6
//	|  |  |  '- Node: length 2, "n1"
//	|  |  '- type 3 FORWARD_JOIN
//	|  '- protocol 1 membership
//	'- version 2
//
// and a GOSSIP of origin "src" (ID 60 61 ... 6f), received at hop 2, sequence number 300,
// time 1,700,000,000,000 ms, payload "hi" and a 96-byte proof is
//
//	02 02 01 60..6f 03 73 72 63 02 ac 02 80 a0 ab fe f9 62 02 68 69 60 <96 bytes>
//	         |      |           |  |     |                 |        '- Proof: length 96
//	         |      |           |  |     |                 '- Payload: length 2, "hi"
//	         |      |           |  |     '- Time: zigzag 3,400,000,000,000 as a uvarint
//	         |      |           |  '- Seq 300
//	         |      |           '- Hops 2
//	         |      '- Origin: length 3, "src"
//	         '- ID, 16 bytes
//
// testdata/vectors.txt holds a frame of every type, checked by the tests in both directions.
//
// # Versioning
//
// Byte 0 is the format's version, a major version: any change to any layout (a new field, a
// new message type, a new flag bit, a relaxed bound in the table above) makes a new version,
// because the strict decoder has no room for silent extensions and an old receiver must not
// misread a new frame. A receiver decodes the versions it knows (this package: 2) and refuses
// any other with an error wrapping ErrVersion that names both versions ("frame version 1, this
// node speaks version 2"), so the runtime can log it and close the link instead of guessing.
//
// Version 1 was this format without GOSSIP's Seq, Time and Proof and without the catch-up
// types 5–8, which came in the same release as the signed broadcasts, before any version 2
// node was deployed: every version 2 node speaks them. Version 2 deliberately does not decode
// version 1: an unsigned broadcast is exactly what version 2 exists to refuse, so a node
// of each version cannot talk, and the first frame either sends closes the link with that
// error. Protocol 4 (routing) was added within version 2: a receiver without it refuses its
// frames as an unknown protocol (it never misreads them), so such a node and one with routing
// cannot keep a link, as with a version mismatch, and a network upgrades all at once. A future version that must interoperate with this one has to keep decoding version 2
// and answer a version-2 peer in version 2.
//
// # Limits
//
// The format itself bounds only what is written above (strings of at most 255 bytes, hops of
// at most 65535, span counts of at most 2^32-1, times within int64). Everything else a receiver accepts is its own policy, in Limits; a limit
// exceeded is an error wrapping ErrTooLarge, a frame that breaks the format one wrapping
// ErrMalformed. Decoding never panics and never allocates more than in proportion to the frame:
// every count and length is checked against both its limit and the bytes that remain before
// anything is allocated for it.
package wire
