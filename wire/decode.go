package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/membership"
)

// Smallest encodings of list items, used to refuse a count the remaining bytes cannot hold
// before anything is allocated for it.
const (
	minIDSize           = 2      // length 1, one byte
	minAnnouncementSize = 16 + 1 // message ID, one-byte hops
	minDigestSpanSize   = 1 + 1 + 8
	minHaveSpanSize     = 1 + 1 + 1
	minRefSize          = 1 + 16 // one-byte time delta, message ID
)

// Decode parses one frame under the limits l. It never panics, whatever the input, and
// allocates only in proportion to the frame (the strings, and the Nodes, IHave, Spans and Refs
// slices).
//
// The decoded gossip Payload and Proof alias frame (capped, so appending to them cannot write
// into the frame): the caller must not modify or reuse frame while they are in use. Strings
// are copies.
//
// Errors are *Error values wrapping ErrTooLarge (the frame or a field exceeds l), ErrVersion
// (the version byte is not Version) or ErrMalformed (anything else wrong), naming the field
// and its byte offset.
func (l Limits) Decode(frame []byte) (Frame, error) {
	var f Frame
	r := reader{buf: frame, limits: l}
	if len(frame) > l.MaxFrameSize {
		return f, r.fail("frame", 0, ErrTooLarge, "%d bytes > MaxFrameSize %d", len(frame), l.MaxFrameSize)
	}
	if len(frame) == 0 {
		return f, r.fail("version", 0, ErrMalformed, "empty frame")
	}
	if frame[0] != Version {
		return f, r.fail("version", 0, ErrVersion, "frame version %d, this node speaks version %d", frame[0], Version)
	}
	if len(frame) < headerSize {
		return f, r.fail("header", 0, ErrMalformed, "%d bytes, a header has %d", len(frame), headerSize)
	}
	r.off = headerSize
	r.typ = frame[2]
	var err error
	switch p := Protocol(frame[1]); p {
	case ProtocolMembership:
		r.proto = p
		f.Protocol = p
		f.Membership, err = r.membership()
	case ProtocolGossip:
		r.proto = p
		f.Protocol = p
		f.Gossip, err = r.gossip()
	case ProtocolControl:
		r.proto = p
		f.Protocol = p
		f.Control, err = r.control()
	case ProtocolRouting:
		r.proto = p
		f.Protocol = p
		f.Routing, err = r.routing()
	default:
		return Frame{}, r.fail("protocol", 1, ErrMalformed, "unknown protocol %d", frame[1])
	}
	if err != nil {
		return Frame{}, err
	}
	if r.off != len(frame) {
		return Frame{}, r.fail("end", r.off, ErrMalformed, "%d trailing bytes after the last field", len(frame)-r.off)
	}
	return f, nil
}

// reader walks one frame. Its methods return an *Error naming the field on failure.
type reader struct {
	buf    []byte
	off    int
	limits Limits
	proto  Protocol
	typ    uint8
}

func (r *reader) membership() (membership.Message, error) {
	m := membership.Message{Type: membership.MessageType(r.typ)}
	var err error
	switch m.Type {
	case membership.Join, membership.JoinReply:
	case membership.ForwardJoin:
		if m.Node, err = r.id("node"); err != nil {
			return m, err
		}
		m.TTL, err = r.byte("ttl")
	case membership.Neighbor:
		m.HighPriority, err = r.flag("flags")
	case membership.NeighborReply:
		m.Accepted, err = r.flag("flags")
	case membership.Disconnect:
		m.Leaving, err = r.flag("flags")
	case membership.Shuffle:
		if m.Node, err = r.id("node"); err != nil {
			return m, err
		}
		if m.TTL, err = r.byte("ttl"); err != nil {
			return m, err
		}
		m.Nodes, err = r.ids("nodes")
	case membership.ShuffleReply:
		m.Nodes, err = r.ids("nodes")
	default:
		return m, r.fail("type", 2, ErrMalformed, "unknown membership message type %d", r.typ)
	}
	return m, err
}

func (r *reader) gossip() (gossip.Message, error) {
	m := gossip.Message{Type: gossip.MessageType(r.typ)}
	var err error
	switch m.Type {
	case gossip.Gossip, gossip.History:
		err = r.broadcast(&m)
	case gossip.IHave:
		m.IHave, err = r.announcements("ihave")
	case gossip.Graft:
		m.ID, err = r.messageID("id")
	case gossip.Prune:
	case gossip.Digest:
		if m.Salt, err = r.uint64BE("salt"); err != nil {
			return m, err
		}
		m.Spans, err = r.digestSpans("spans")
	case gossip.Have:
		if m.Reply, err = r.flag("flags"); err != nil {
			return m, err
		}
		if m.Spans, err = r.haveSpans("spans"); err != nil {
			return m, err
		}
		m.Refs, err = r.refs("refs", false)
	case gossip.Pull:
		m.Refs, err = r.refs("refs", true)
	default:
		return m, r.fail("type", 2, ErrMalformed, "unknown gossip message type %d", r.typ)
	}
	return m, err
}

// broadcast reads the fields of a GOSSIP or HISTORY.
func (r *reader) broadcast(m *gossip.Message) error {
	var err error
	if m.ID, err = r.messageID("id"); err != nil {
		return err
	}
	if m.Origin, err = r.id("origin"); err != nil {
		return err
	}
	if m.Hops, err = r.hops("hops"); err != nil {
		return err
	}
	if m.Seq, err = r.uvarint("seq"); err != nil {
		return err
	}
	if m.Time, err = r.varint("time"); err != nil {
		return err
	}
	if m.Payload, err = r.bytes("payload", r.limits.MaxPayload, "MaxPayload"); err != nil {
		return err
	}
	m.Proof, err = r.bytes("proof", r.limits.MaxProof, "MaxProof")
	return err
}

func (r *reader) control() (Control, error) {
	c := Control{Type: ControlType(r.typ)}
	var err error
	switch c.Type {
	case ControlHello:
		if c.NodeID, err = r.id("node_id"); err != nil {
			return c, err
		}
		c.Network, err = r.str("network", r.limits.MaxIDLength, "MaxIDLength")
	case ControlPing, ControlPong:
		c.Seq, err = r.uvarint("seq")
	case ControlClose:
		c.Reason, err = r.str("reason", r.limits.MaxReasonLength, "MaxReasonLength")
	default:
		return c, r.fail("type", 2, ErrMalformed, "unknown control message type %d", r.typ)
	}
	return c, err
}

func (r *reader) remaining() int { return len(r.buf) - r.off }

func (r *reader) byte(field string) (byte, error) {
	if r.off >= len(r.buf) {
		return 0, r.truncated(field, 1)
	}
	b := r.buf[r.off]
	r.off++
	return b, nil
}

// flag reads a flags byte with only bit 0 defined.
func (r *reader) flag(field string) (bool, error) {
	start := r.off
	b, err := r.byte(field)
	if err != nil {
		return false, err
	}
	if b&^flagBit0 != 0 {
		return false, r.fail(field, start, ErrMalformed, "unknown flag bits %#02x", b&^flagBit0)
	}
	return b == flagBit0, nil
}

// uvarint reads a minimal uvarint of at most 10 bytes.
func (r *reader) uvarint(field string) (uint64, error) {
	start := r.off
	var x uint64
	var shift uint
	for i := 0; ; i++ {
		if start+i >= len(r.buf) {
			return 0, r.fail(field, start, ErrMalformed, "truncated varint")
		}
		b := r.buf[start+i]
		if i == 9 && b > 1 {
			return 0, r.fail(field, start, ErrMalformed, "varint overflows 64 bits")
		}
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, r.fail(field, start, ErrMalformed, "varint not minimal")
			}
			r.off = start + i + 1
			return x | uint64(b)<<shift, nil
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
}

// varint reads a signed varint as encoding/binary.AppendVarint writes it (zigzag, then a
// minimal uvarint), so every value has one encoding.
func (r *reader) varint(field string) (int64, error) {
	u, err := r.uvarint(field)
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x, err
}

// length reads a uvarint length or count bounded by limit (named limitName in errors) and by
// what the remaining bytes can hold at itemSize bytes per item, in that order, so a hostile
// count is refused before anything is allocated for it.
func (r *reader) length(field string, limit int, limitName string, itemSize int) (int, error) {
	start := r.off
	v, err := r.uvarint(field)
	if err != nil {
		return 0, err
	}
	if v > uint64(max(limit, 0)) {
		return 0, r.fail(field, start, ErrTooLarge, "length %d > %s %d", v, limitName, limit)
	}
	if v > uint64(r.remaining()/itemSize) {
		return 0, r.fail(field, start, ErrMalformed, "length %d needs at least %d bytes, %d remain",
			v, int(v)*itemSize, r.remaining())
	}
	return int(v), nil
}

// str reads a string of at most MaxStringLength (the format's bound, ErrMalformed) and limit
// (the receiver's, ErrTooLarge) bytes of valid UTF-8.
func (r *reader) str(field string, limit int, limitName string) (string, error) {
	start := r.off
	v, err := r.uvarint(field)
	if err != nil {
		return "", err
	}
	if v > MaxStringLength {
		return "", r.fail(field, start, ErrMalformed, "length %d > %d, the format's bound", v, MaxStringLength)
	}
	n := int(v)
	if n > limit {
		return "", r.fail(field, start, ErrTooLarge, "length %d > %s %d", n, limitName, limit)
	}
	if n > r.remaining() {
		return "", r.fail(field, start, ErrMalformed, "length %d needs %d bytes, %d remain", n, n, r.remaining())
	}
	b := r.buf[r.off : r.off+n]
	if !utf8.Valid(b) {
		return "", r.fail(field, start, ErrMalformed, "not valid UTF-8")
	}
	r.off += n
	return string(b), nil
}

// id reads a non-empty node ID bounded by MaxIDLength.
func (r *reader) id(field string) (string, error) {
	start := r.off
	s, err := r.str(field, r.limits.MaxIDLength, "MaxIDLength")
	if err == nil && s == "" {
		return "", r.fail(field, start, ErrMalformed, "empty node ID")
	}
	return s, err
}

// ids reads a list of node IDs bounded by MaxNodes.
func (r *reader) ids(field string) ([]string, error) {
	n, err := r.length(field, r.limits.MaxNodes, "MaxNodes", minIDSize)
	if err != nil || n == 0 {
		return nil, err
	}
	out := make([]string, n)
	for i := range out {
		if out[i], err = r.id(field); err != nil {
			err.(*Error).Field = fmt.Sprintf("%s[%d]", field, i)
			return nil, err
		}
	}
	return out, nil
}

func (r *reader) hops(field string) (uint16, error) {
	// Fast path: hop counts below 128, nearly all of them, are one byte.
	if r.off < len(r.buf) && r.buf[r.off] < 0x80 {
		r.off++
		return uint16(r.buf[r.off-1]), nil
	}
	start := r.off
	v, err := r.uvarint(field)
	if err != nil {
		return 0, err
	}
	if v > MaxHops {
		return 0, r.fail(field, start, ErrMalformed, "hops %d > %d", v, MaxHops)
	}
	return uint16(v), nil
}

func (r *reader) messageID(field string) (gossip.MessageID, error) {
	var id gossip.MessageID
	if r.remaining() < len(id) {
		return id, r.truncated(field, len(id))
	}
	copy(id[:], r.buf[r.off:])
	r.off += len(id)
	return id, nil
}

// bytes reads a byte string (a payload or a proof) bounded by limit, aliasing the frame with
// cap == len.
func (r *reader) bytes(field string, limit int, limitName string) ([]byte, error) {
	n, err := r.length(field, limit, limitName, 1)
	if err != nil || n == 0 {
		return nil, err
	}
	p := r.buf[r.off : r.off+n : r.off+n]
	r.off += n
	return p, nil
}

// announcements reads an IHave list bounded by MaxAnnouncements.
func (r *reader) announcements(field string) ([]gossip.Announcement, error) {
	n, err := r.length(field, r.limits.MaxAnnouncements, "MaxAnnouncements", minAnnouncementSize)
	if err != nil || n == 0 {
		return nil, err
	}
	out := make([]gossip.Announcement, n)
	for i := range out {
		a := &out[i]
		// The ID is read inline: this loop is the decoder's hottest (64 items an IHave).
		if r.remaining() >= len(a.ID) {
			a.ID = gossip.MessageID(r.buf[r.off : r.off+len(a.ID)])
			r.off += len(a.ID)
			if r.off < len(r.buf) && r.buf[r.off] < 0x80 {
				a.Hops = uint16(r.buf[r.off])
				r.off++
			} else {
				a.Hops, err = r.hops(field)
			}
		} else {
			err = r.truncated(field, len(a.ID))
		}
		if err != nil {
			err.(*Error).Field = fmt.Sprintf("%s[%d]", field, i)
			return nil, err
		}
	}
	return out, nil
}

// uint64BE reads 8 bytes, most significant first.
func (r *reader) uint64BE(field string) (uint64, error) {
	if r.remaining() < 8 {
		return 0, r.truncated(field, 8)
	}
	v := binary.BigEndian.Uint64(r.buf[r.off:])
	r.off += 8
	return v, nil
}

// spanEnd reads a span's width and returns its To: from plus a positive width that does not
// overflow int64.
func (r *reader) spanEnd(field string, from int64) (int64, error) {
	start := r.off
	w, err := r.uvarint(field)
	if err != nil {
		return 0, err
	}
	if w == 0 {
		return 0, r.fail(field, start, ErrMalformed, "width 0: a span is never empty")
	}
	// The room above from in int64, computed in uint64, where it cannot overflow.
	if room := uint64(math.MaxInt64) - uint64(from); w > room {
		return 0, r.fail(field, start, ErrMalformed, "from %d + width %d overflows int64", from, w)
	}
	return int64(uint64(from) + w), nil
}

// count reads a span's Count, a uint32.
func (r *reader) count(field string) (uint32, error) {
	start := r.off
	v, err := r.uvarint(field)
	if err != nil {
		return 0, err
	}
	if v > math.MaxUint32 {
		return 0, r.fail(field, start, ErrMalformed, "count %d > %d", v, uint64(math.MaxUint32))
	}
	return uint32(v), nil
}

// digestSpans reads a DIGEST's spans: the count (1..MaxSpans), the first From, then per span
// its width, count and hash; each span starts where the previous one ends.
func (r *reader) digestSpans(field string) ([]gossip.Span, error) {
	start := r.off
	n, err := r.length(field, r.limits.MaxSpans, "MaxSpans", minDigestSpanSize)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, r.fail(field, start, ErrMalformed, "count 0: a DIGEST summarises at least one span")
	}
	from, err := r.varint(field)
	if err != nil {
		err.(*Error).Field = field + "[0].from"
		return nil, err
	}
	out := make([]gossip.Span, n)
	for i := range out {
		s := &out[i]
		s.From = from
		var sub string
		if s.To, err = r.spanEnd(field, from); err != nil {
			sub = "width"
		} else if s.Count, err = r.count(field); err != nil {
			sub = "count"
		} else if s.Hash, err = r.uint64BE(field); err != nil {
			sub = "hash"
		}
		if err != nil {
			err.(*Error).Field = fmt.Sprintf("%s[%d].%s", field, i, sub)
			return nil, err
		}
		from = s.To
	}
	return out, nil
}

// haveSpans reads a HAVE's spans: the count (0..MaxSpans), then per span its From, width and
// count; each span starts at or after the end of the previous one.
func (r *reader) haveSpans(field string) ([]gossip.Span, error) {
	n, err := r.length(field, r.limits.MaxSpans, "MaxSpans", minHaveSpanSize)
	if err != nil || n == 0 {
		return nil, err
	}
	out := make([]gossip.Span, n)
	for i := range out {
		s := &out[i]
		var sub string
		start := r.off
		if s.From, err = r.varint(field); err != nil {
			sub = "from"
		} else if i > 0 && s.From < out[i-1].To {
			sub = "from"
			err = r.fail(field, start, ErrMalformed,
				"from %d < the previous span's to %d: a HAVE's spans increase and do not overlap", s.From, out[i-1].To)
		} else if s.To, err = r.spanEnd(field, s.From); err != nil {
			sub = "width"
		} else if s.Count, err = r.count(field); err != nil {
			sub = "count"
		}
		if err != nil {
			err.(*Error).Field = fmt.Sprintf("%s[%d].%s", field, i, sub)
			return nil, err
		}
	}
	return out, nil
}

// refs reads a refs list of at most MaxRefs refs, and at least one if atLeastOne (PULL): per
// ref, its time as a delta from the previous ref's (from 0 for the first) and its ID.
func (r *reader) refs(field string, atLeastOne bool) ([]gossip.MessageRef, error) {
	start := r.off
	n, err := r.length(field, r.limits.MaxRefs, "MaxRefs", minRefSize)
	if err != nil {
		return nil, err
	}
	if n == 0 && atLeastOne {
		return nil, r.fail(field, start, ErrMalformed, "count 0: a PULL asks for at least one message")
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]gossip.MessageRef, n)
	prev := int64(0)
	for i := range out {
		ref := &out[i]
		at := r.off
		var d int64
		if d, err = r.varint(field); err == nil {
			ref.Time = prev + d
			if (prev^ref.Time)&(d^ref.Time) < 0 {
				err = r.fail(field, at, ErrMalformed, "previous time %d + delta %d overflows int64", prev, d)
			}
		}
		if err != nil {
			err.(*Error).Field = fmt.Sprintf("%s[%d].time", field, i)
			return nil, err
		}
		// The ID is read inline, as in announcements: this loop runs up to MaxRefs times.
		if r.remaining() < len(ref.ID) {
			return nil, r.truncated(fmt.Sprintf("%s[%d].id", field, i), len(ref.ID))
		}
		ref.ID = gossip.MessageID(r.buf[r.off : r.off+len(ref.ID)])
		r.off += len(ref.ID)
		prev = ref.Time
	}
	return out, nil
}

func (r *reader) truncated(field string, need int) error {
	return r.fail(field, r.off, ErrMalformed, "truncated: needs %d bytes, %d remain", need, r.remaining())
}

func (r *reader) fail(field string, off int, kind error, format string, args ...any) error {
	return &Error{Op: "decode", Protocol: r.proto, Type: r.typ, Field: field, Offset: off,
		Kind: kind, Detail: fmt.Sprintf(format, args...)}
}
