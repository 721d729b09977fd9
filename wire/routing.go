package wire

import (
	"encoding/binary"

	"github.com/rtcmesh/rtcmesh/routing"
)

// Routing frames (protocol 4, ProtocolRouting) carry package routing's messages:
//
//	ROUTED (1): source id, target id, via str (may be empty), hop limit byte, waypoints
//	            byte, kind byte, time varint (Unix ms), body bytes (<= MaxPayload), proof
//	            bytes (<= MaxProof)
//	VIEW   (2): nodes (a list of ids, <= MaxNodes)
//
// The body and proof alias the frame like a GOSSIP's payload. The proof is the source's
// signature, checked by the target's runtime (package node), never by relays.

// AppendRouting appends m's frame to dst and returns the extended buffer. A message that
// cannot be encoded (unknown type or kind, an empty or over-long ID, a field its type does
// not carry) is refused with an error wrapping ErrInvalidMessage, and dst is returned
// unchanged.
func AppendRouting(dst []byte, m routing.Message) ([]byte, error) {
	if err := checkRouting(&m); err != nil {
		return dst, err
	}
	dst = append(dst, Version, byte(ProtocolRouting), byte(m.Type))
	switch m.Type {
	case routing.Routed:
		dst = appendString(dst, m.Source)
		dst = appendString(dst, m.Target)
		dst = appendString(dst, m.Via)
		dst = append(dst, m.HopLimit, m.Waypoints, byte(m.Kind))
		dst = binary.AppendVarint(dst, m.Time)
		dst = binary.AppendUvarint(dst, uint64(len(m.Body)))
		dst = append(dst, m.Body...)
		dst = binary.AppendUvarint(dst, uint64(len(m.Proof)))
		dst = append(dst, m.Proof...)
	case routing.View:
		dst = appendStrings(dst, m.Nodes)
	}
	return dst, nil
}

// checkRouting refuses a message AppendRouting cannot encode faithfully.
func checkRouting(m *routing.Message) error {
	p, t := ProtocolRouting, uint8(m.Type)
	switch m.Type {
	case routing.Routed:
		if err := checkID(p, t, "source", m.Source); err != nil {
			return err
		}
		if err := checkID(p, t, "target", m.Target); err != nil {
			return err
		}
		if err := checkString(p, t, "via", m.Via); err != nil {
			return err
		}
		if !m.Kind.Valid() {
			return encodeError(p, t, "kind", "unknown kind %d", uint8(m.Kind))
		}
		if len(m.Nodes) != 0 {
			return notCarried(p, t, "nodes")
		}
	case routing.View:
		if m.Source != "" || m.Target != "" || m.Via != "" {
			return notCarried(p, t, "source/target/via")
		}
		if m.HopLimit != 0 || m.Waypoints != 0 || m.Kind != 0 || m.Time != 0 {
			return notCarried(p, t, "hop_limit/waypoints/kind/time")
		}
		if len(m.Body) != 0 || len(m.Proof) != 0 {
			return notCarried(p, t, "body/proof")
		}
		for _, n := range m.Nodes {
			if err := checkID(p, t, "nodes", n); err != nil {
				return err
			}
		}
	default:
		return encodeError(p, t, "type", "unknown routing message type %d", t)
	}
	return nil
}

func (r *reader) routing() (routing.Message, error) {
	m := routing.Message{Type: routing.MessageType(r.typ)}
	var err error
	switch m.Type {
	case routing.Routed:
		if m.Source, err = r.id("source"); err != nil {
			return m, err
		}
		if m.Target, err = r.id("target"); err != nil {
			return m, err
		}
		if m.Via, err = r.str("via", r.limits.MaxIDLength, "MaxIDLength"); err != nil {
			return m, err
		}
		if m.HopLimit, err = r.byte("hop_limit"); err != nil {
			return m, err
		}
		if m.Waypoints, err = r.byte("waypoints"); err != nil {
			return m, err
		}
		start := r.off
		var k byte
		if k, err = r.byte("kind"); err != nil {
			return m, err
		}
		if m.Kind = routing.Kind(k); !m.Kind.Valid() {
			return m, r.fail("kind", start, ErrMalformed, "unknown kind %d", k)
		}
		if m.Time, err = r.varint("time"); err != nil {
			return m, err
		}
		if m.Body, err = r.bytes("body", r.limits.MaxPayload, "MaxPayload"); err != nil {
			return m, err
		}
		m.Proof, err = r.bytes("proof", r.limits.MaxProof, "MaxProof")
	case routing.View:
		m.Nodes, err = r.ids("nodes")
	default:
		return m, r.fail("type", 2, ErrMalformed, "unknown routing message type %d", r.typ)
	}
	return m, err
}

// largestRouted is the size of the largest ROUTED frame the limits admit.
func (l Limits) largestRouted() int {
	id := uvarintLen(uint64(l.MaxIDLength)) + l.MaxIDLength
	return headerSize + 3*id + 3 + binaryMaxVarintLen64 +
		uvarintLen(uint64(l.MaxPayload)) + l.MaxPayload + uvarintLen(uint64(l.MaxProof)) + l.MaxProof
}
