package sim

import (
	"encoding/binary"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/wire"
)

// unixMillis stands for the runtime's clock in the sizes of encoded messages: the runtime
// stamps broadcasts with milliseconds since the Unix epoch (about 1.8×10¹², 6 bytes as a
// varint), the simulator with milliseconds since its start (2 or 3 bytes).
const unixMillis = 1_800_000_000_000

// wireSize returns the size of m's frame as package wire encodes it for the runtime, using buf
// as scratch space (returned, possibly grown). The frame is encoded with the simulator's times,
// and each time wire writes as an absolute value (not as a difference) is counted at the
// length it would have in Unix milliseconds. ok is false when wire refuses the message.
func wireSize(buf []byte, m *gossip.Message) (size int, grown []byte, ok bool) {
	frame, err := wire.AppendGossip(buf[:0], *m)
	if err != nil {
		return 0, buf, false
	}
	size = len(frame)
	switch m.Type {
	case gossip.Gossip, gossip.History:
		size += epochBytes(m.Time)
	case gossip.Digest:
		size += epochBytes(m.Spans[0].From) // the spans after it are widths
	case gossip.Have:
		for _, s := range m.Spans {
			size += epochBytes(s.From)
		}
	}
	if (m.Type == gossip.Have || m.Type == gossip.Pull) && len(m.Refs) > 0 {
		size += epochBytes(m.Refs[0].Time) // the times after it are differences
	}
	return size, frame, true
}

// epochBytes is how many more bytes time t takes as a varint in Unix milliseconds.
func epochBytes(t int64) int { return varintLen(t+unixMillis) - varintLen(t) }

func varintLen(v int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], v)
}
