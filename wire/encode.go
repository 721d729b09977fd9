package wire

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/membership"
)

// flagBit0 is the single flag bit defined for NEIGHBOR, NEIGHBOR_REPLY and DISCONNECT.
const flagBit0 = 0x01

// AppendMembership appends m's frame to dst and returns the extended buffer. It does not
// allocate when dst has room for the frame. A message that cannot be encoded (unknown type, a
// field its type does not carry is set, an empty, non-UTF-8 or over-long node ID) is refused
// with an error wrapping ErrInvalidMessage, and dst is returned unchanged.
//
// Receivers' Limits are not checked here: they are each receiver's policy, and a core
// configured within them (membership.Config.MaxMessageNodes <= Limits.MaxNodes) never
// exceeds them.
func AppendMembership(dst []byte, m membership.Message) ([]byte, error) {
	if err := checkMembership(m); err != nil {
		return dst, err
	}
	dst = append(dst, Version, byte(ProtocolMembership), byte(m.Type))
	switch m.Type {
	case membership.ForwardJoin:
		dst = appendString(dst, m.Node)
		dst = append(dst, m.TTL)
	case membership.Neighbor:
		dst = append(dst, flagByte(m.HighPriority))
	case membership.NeighborReply:
		dst = append(dst, flagByte(m.Accepted))
	case membership.Disconnect:
		dst = append(dst, flagByte(m.Leaving))
	case membership.Shuffle:
		dst = appendString(dst, m.Node)
		dst = append(dst, m.TTL)
		dst = appendStrings(dst, m.Nodes)
	case membership.ShuffleReply:
		dst = appendStrings(dst, m.Nodes)
	}
	return dst, nil
}

// checkMembership refuses a message AppendMembership cannot encode faithfully.
func checkMembership(m membership.Message) error {
	p, t := ProtocolMembership, uint8(m.Type)
	if !m.Type.Valid() {
		return encodeError(p, t, "type", "unknown membership message type %d", t)
	}
	walk := m.Type == membership.ForwardJoin || m.Type == membership.Shuffle
	withNodes := m.Type == membership.Shuffle || m.Type == membership.ShuffleReply
	if walk {
		if err := checkID(p, t, "node", m.Node); err != nil {
			return err
		}
	} else {
		if m.Node != "" {
			return notCarried(p, t, "node")
		}
		if m.TTL != 0 {
			return notCarried(p, t, "ttl")
		}
	}
	if m.HighPriority && m.Type != membership.Neighbor {
		return notCarried(p, t, "high_priority")
	}
	if m.Accepted && m.Type != membership.NeighborReply {
		return notCarried(p, t, "accepted")
	}
	if m.Leaving && m.Type != membership.Disconnect {
		return notCarried(p, t, "leaving")
	}
	if !withNodes && len(m.Nodes) != 0 {
		return notCarried(p, t, "nodes")
	}
	for i, n := range m.Nodes {
		if err := checkID(p, t, "nodes[]", n); err != nil {
			err.(*Error).Field = fmt.Sprintf("nodes[%d]", i)
			return err
		}
	}
	return nil
}

// AppendGossip appends m's frame to dst and returns the extended buffer. It does not allocate
// when dst has room for the frame. A message that cannot be encoded is refused with an error
// wrapping ErrInvalidMessage, and dst is returned unchanged: an unknown type, a field its type
// does not carry is set, an empty, non-UTF-8 or over-long origin, a span that is empty (To <=
// From), spans out of order (HAVE) or not consecutive (DIGEST), a DIGEST without spans, a
// PULL without refs, or two consecutive refs whose times differ by more than an int64 holds.
// Receivers' Limits are not checked (see AppendMembership).
func AppendGossip(dst []byte, m gossip.Message) ([]byte, error) {
	if err := checkGossip(&m); err != nil {
		return dst, err
	}
	dst = append(dst, Version, byte(ProtocolGossip), byte(m.Type))
	switch m.Type {
	case gossip.Gossip, gossip.History:
		dst = append(dst, m.ID[:]...)
		dst = appendString(dst, m.Origin)
		dst = appendHops(dst, m.Hops)
		dst = binary.AppendUvarint(dst, m.Seq)
		dst = binary.AppendVarint(dst, m.Time)
		dst = binary.AppendUvarint(dst, uint64(len(m.Payload)))
		dst = append(dst, m.Payload...)
		dst = binary.AppendUvarint(dst, uint64(len(m.Proof)))
		dst = append(dst, m.Proof...)
	case gossip.IHave:
		dst = binary.AppendUvarint(dst, uint64(len(m.IHave)))
		// One growth for the whole list (hops take at most 3 bytes) instead of one per item.
		dst = slices.Grow(dst, len(m.IHave)*(len(gossip.MessageID{})+3))
		for i := range m.IHave {
			a := &m.IHave[i]
			dst = append(dst, a.ID[:]...)
			dst = appendHops(dst, a.Hops)
		}
	case gossip.Graft:
		dst = append(dst, m.ID[:]...)
	case gossip.Digest:
		dst = binary.BigEndian.AppendUint64(dst, m.Salt)
		dst = binary.AppendUvarint(dst, uint64(len(m.Spans)))
		dst = binary.AppendVarint(dst, m.Spans[0].From)
		// Widths and counts of a few bytes each, and the 8-byte hash.
		dst = slices.Grow(dst, len(m.Spans)*(4+3+8))
		for i := range m.Spans {
			s := &m.Spans[i]
			dst = binary.AppendUvarint(dst, spanWidth(s))
			dst = binary.AppendUvarint(dst, uint64(s.Count))
			dst = binary.BigEndian.AppendUint64(dst, s.Hash)
		}
	case gossip.Have:
		dst = append(dst, flagByte(m.Reply))
		dst = binary.AppendUvarint(dst, uint64(len(m.Spans)))
		for i := range m.Spans {
			s := &m.Spans[i]
			dst = binary.AppendVarint(dst, s.From)
			dst = binary.AppendUvarint(dst, spanWidth(s))
			dst = binary.AppendUvarint(dst, uint64(s.Count))
		}
		dst = appendRefs(dst, m.Refs)
	case gossip.Pull:
		dst = appendRefs(dst, m.Refs)
	}
	return dst, nil
}

// spanWidth is s.To - s.From, which checkGossip made sure is positive; as a uint64 it cannot
// overflow even when the int64 difference would.
func spanWidth(s *gossip.Span) uint64 { return uint64(s.To) - uint64(s.From) }

// appendRefs appends a refs list: the count, then per ref its Time as a delta from the
// previous ref's (from 0 for the first) and its ID.
func appendRefs(dst []byte, refs []gossip.MessageRef) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(refs)))
	// One growth for the whole list: the ID and a delta of a few bytes (refs sorted by time
	// differ by little; the first time, in ms since the epoch, takes 6 bytes).
	dst = slices.Grow(dst, len(refs)*(len(gossip.MessageID{})+3)+binaryMaxVarintLen64)
	prev := int64(0)
	for i := range refs {
		r := &refs[i]
		dst = binary.AppendVarint(dst, r.Time-prev)
		dst = append(dst, r.ID[:]...)
		prev = r.Time
	}
	return dst
}

// checkGossip refuses a message AppendGossip cannot encode faithfully.
func checkGossip(m *gossip.Message) error {
	p, t := ProtocolGossip, uint8(m.Type)
	if !m.Type.Valid() {
		return encodeError(p, t, "type", "unknown gossip message type %d", t)
	}
	broadcast := m.Type == gossip.Gossip || m.Type == gossip.History
	if broadcast {
		if err := checkID(p, t, "origin", m.Origin); err != nil {
			return err
		}
	} else {
		if m.Origin != "" {
			return notCarried(p, t, "origin")
		}
		if m.Hops != 0 {
			return notCarried(p, t, "hops")
		}
		if len(m.Payload) != 0 {
			return notCarried(p, t, "payload")
		}
		if m.Seq != 0 {
			return notCarried(p, t, "seq")
		}
		if m.Time != 0 {
			return notCarried(p, t, "time")
		}
		if len(m.Proof) != 0 {
			return notCarried(p, t, "proof")
		}
	}
	if m.ID != (gossip.MessageID{}) && !broadcast && m.Type != gossip.Graft {
		return notCarried(p, t, "id")
	}
	if len(m.IHave) != 0 && m.Type != gossip.IHave {
		return notCarried(p, t, "ihave")
	}
	if m.Reply && m.Type != gossip.Have {
		return notCarried(p, t, "reply")
	}
	if m.Salt != 0 && m.Type != gossip.Digest {
		return notCarried(p, t, "salt")
	}
	if len(m.Spans) != 0 && m.Type != gossip.Digest && m.Type != gossip.Have {
		return notCarried(p, t, "spans")
	}
	if len(m.Refs) != 0 && m.Type != gossip.Have && m.Type != gossip.Pull {
		return notCarried(p, t, "refs")
	}
	switch m.Type {
	case gossip.Digest:
		if len(m.Spans) == 0 {
			return encodeError(p, t, "spans", "none: a DIGEST summarises at least one span")
		}
		return checkSpans(p, t, m.Spans, true)
	case gossip.Have:
		if err := checkSpans(p, t, m.Spans, false); err != nil {
			return err
		}
		return checkRefs(p, t, m.Refs)
	case gossip.Pull:
		if len(m.Refs) == 0 {
			return encodeError(p, t, "refs", "none: a PULL asks for at least one message")
		}
		return checkRefs(p, t, m.Refs)
	}
	return nil
}

// checkSpans refuses spans the format cannot carry: an empty or reversed span, a span that
// does not start where the previous one ended (digest) or before it ended (have), and a
// HAVE span's Hash, which HAVE does not carry.
func checkSpans(p Protocol, t uint8, spans []gossip.Span, digest bool) error {
	for i := range spans {
		s := &spans[i]
		if s.To <= s.From {
			return encodeError(p, t, fmt.Sprintf("spans[%d]", i), "empty or reversed: to %d <= from %d", s.To, s.From)
		}
		if i == 0 {
			continue
		}
		prev := spans[i-1].To
		if digest && s.From != prev {
			return encodeError(p, t, fmt.Sprintf("spans[%d]", i),
				"from %d is not the previous span's to %d: a DIGEST's spans are consecutive", s.From, prev)
		}
		if s.From < prev {
			return encodeError(p, t, fmt.Sprintf("spans[%d]", i),
				"from %d < the previous span's to %d: a HAVE's spans increase and do not overlap", s.From, prev)
		}
	}
	if !digest {
		for i := range spans {
			if spans[i].Hash != 0 {
				return notCarried(p, t, fmt.Sprintf("spans[%d].hash", i))
			}
		}
	}
	return nil
}

// checkRefs refuses refs whose times cannot be written as deltas: two consecutive times
// that differ by more than an int64 holds.
func checkRefs(p Protocol, t uint8, refs []gossip.MessageRef) error {
	for i := 1; i < len(refs); i++ {
		a, b := refs[i-1].Time, refs[i].Time
		if d := b - a; (b^a)&(b^d) < 0 {
			return encodeError(p, t, fmt.Sprintf("refs[%d].time", i),
				"time %d minus the previous ref's %d overflows int64", b, a)
		}
	}
	return nil
}

// AppendControl appends c's frame to dst and returns the extended buffer. It does not allocate
// when dst has room for the frame. A message that cannot be encoded (unknown type, a field its
// type does not carry is set, an empty Hello NodeID, a non-UTF-8 string, a string longer than
// MaxStringLength) is refused with an error wrapping ErrInvalidMessage, and dst is returned
// unchanged. Receivers' Limits are not checked: a Close reason longer than a receiver's
// MaxReasonLength (128 by default) costs the receiver's log its reason, so keep reasons short.
func AppendControl(dst []byte, c Control) ([]byte, error) {
	if err := checkControl(c); err != nil {
		return dst, err
	}
	dst = append(dst, Version, byte(ProtocolControl), byte(c.Type))
	switch c.Type {
	case ControlHello:
		dst = appendString(dst, c.NodeID)
		dst = appendString(dst, c.Network)
	case ControlPing, ControlPong:
		dst = binary.AppendUvarint(dst, c.Seq)
	case ControlClose:
		dst = appendString(dst, c.Reason)
	}
	return dst, nil
}

// checkControl refuses a message AppendControl cannot encode faithfully.
func checkControl(c Control) error {
	p, t := ProtocolControl, uint8(c.Type)
	if !c.Type.Valid() {
		return encodeError(p, t, "type", "unknown control message type %d", t)
	}
	if c.Type == ControlHello {
		if err := checkID(p, t, "node_id", c.NodeID); err != nil {
			return err
		}
		if err := checkString(p, t, "network", c.Network); err != nil {
			return err
		}
	} else {
		if c.NodeID != "" {
			return notCarried(p, t, "node_id")
		}
		if c.Network != "" {
			return notCarried(p, t, "network")
		}
	}
	if c.Seq != 0 && c.Type != ControlPing && c.Type != ControlPong {
		return notCarried(p, t, "seq")
	}
	if c.Type == ControlClose {
		if err := checkString(p, t, "reason", c.Reason); err != nil {
			return err
		}
	} else if c.Reason != "" {
		return notCarried(p, t, "reason")
	}
	return nil
}

// checkID refuses a node ID the format cannot carry: empty, or not a valid str.
func checkID(p Protocol, t uint8, field, s string) error {
	if s == "" {
		return encodeError(p, t, field, "empty node ID")
	}
	return checkString(p, t, field, s)
}

// checkString refuses a string the format cannot carry: longer than MaxStringLength or not
// valid UTF-8.
func checkString(p Protocol, t uint8, field, s string) error {
	if len(s) > MaxStringLength {
		return encodeError(p, t, field, "length %d > %d, the format's bound", len(s), MaxStringLength)
	}
	if !utf8.ValidString(s) {
		return encodeError(p, t, field, "not valid UTF-8")
	}
	return nil
}

// appendHops appends h as a uvarint, with a fast path for the common one-byte case.
func appendHops(dst []byte, h uint16) []byte {
	if h < 0x80 {
		return append(dst, byte(h))
	}
	return binary.AppendUvarint(dst, uint64(h))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ss)))
	for _, s := range ss {
		dst = appendString(dst, s)
	}
	return dst
}

func flagByte(b bool) byte {
	if b {
		return flagBit0
	}
	return 0
}

// notCarried refuses a message that sets a field its type does not carry: the receiver would
// never see it.
func notCarried(p Protocol, t uint8, field string) error {
	return encodeError(p, t, field, "set, but %s does not carry it", typeName(p, t))
}

func encodeError(p Protocol, t uint8, field, format string, args ...any) error {
	return &Error{Op: "encode", Protocol: p, Type: t, Field: field, Offset: -1,
		Kind: ErrInvalidMessage, Detail: fmt.Sprintf(format, args...)}
}
