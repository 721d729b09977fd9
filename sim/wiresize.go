package sim

import (
	"encoding/binary"

	"github.com/rtcmesh/rtcmesh/gossip"
)

// wireSize is the encoded size of a catch-up message (Digest, Have, Pull, History).
//
// TEMPORARY: package wire does not encode the catch-up messages yet; until it does, this
// estimates their frames field by field the way wire writes Gossip (a 3-byte header, varints
// for numbers, a length before each byte string, 16-byte IDs, 8-byte hashes and salts), and
// is replaced by wire.AppendGossip once it has them.
func wireSize(m *gossip.Message) int {
	n := 3
	switch m.Type {
	case gossip.History, gossip.Gossip:
		n += len(m.ID) + uvarintLen(uint64(len(m.Origin))) + len(m.Origin) + uvarintLen(uint64(m.Hops)) +
			uvarintLen(m.Seq) + varintLen(m.Time) +
			uvarintLen(uint64(len(m.Payload))) + len(m.Payload) + uvarintLen(uint64(len(m.Proof))) + len(m.Proof)
	case gossip.Digest:
		n += 8 + uvarintLen(uint64(len(m.Spans)))
		for _, sp := range m.Spans {
			n += varintLen(sp.From) + varintLen(sp.To) + uvarintLen(uint64(sp.Count)) + 8
		}
	case gossip.Have, gossip.Pull:
		if m.Type == gossip.Have {
			n++ // Reply
			n += uvarintLen(uint64(len(m.Spans)))
			for _, sp := range m.Spans {
				n += varintLen(sp.From) + varintLen(sp.To) + uvarintLen(uint64(sp.Count))
			}
		}
		n += uvarintLen(uint64(len(m.Refs)))
		for _, r := range m.Refs {
			n += varintLen(r.Time) + len(r.ID)
		}
	}
	return n
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

func varintLen(v int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], v)
}
