package gossip

import (
	"math/bits"
	"time"
)

// originState is what a core remembers of one origin's sequence numbers: the highest it
// delivered (hw), which of the ReplayWindow numbers below it it delivered (bits), and the
// times that tell a restart from a replay. It exists only for origins of messages that
// verified, so forged origins cannot evict real ones.
//
// An origin's core numbers its broadcasts from 1 and restarts at 1 when the process restarts
// with the same identity (a browser tab keeps its key across reloads). A number at or below
// hw whose Time is later than every Time delivered from the origin (newest) cannot be an old
// message of the current run, whose times are at most newest: it is a new run. The state then
// starts over from that number, and floor = the old newest refuses every message of the
// earlier runs, all of which carry a Time of at most floor. So a replay is refused whether it
// is within the window (its bit), below it, or from an earlier run; the cost is an origin
// whose clock steps back across a restart, refused until it is forgotten.
type originState struct {
	origin string
	hw     uint64
	// bits: bit i (word i/64, bit i%64) is set when sequence number hw-i was delivered. It
	// grows as hw does, up to ReplayWindow/64 words, so an origin heard from once costs one
	// word.
	bits   []uint64
	newest int64
	floor  int64
	// limit is the origin's forwarding budget (Config.OriginRate, Config.OriginByteRate).
	limit limiter
	// prev and next link the origins from most (Core.originsHead) to least recently heard
	// (Core.originsTail), for eviction.
	prev, next *originState
}

// seqCheck is the verdict on a sequence number, before the message is verified.
type seqCheck uint8

const (
	seqNew     seqCheck = iota // a number this node has not delivered
	seqRestart                 // the origin restarted: start its state over
	seqReplay                  // refuse
)

// checkSeq judges m's sequence number and time against the origin's state, without changing
// it. A missing state (an origin not heard from, or forgotten) accepts every number.
func (c *Core) checkSeq(st *originState, m *Message) seqCheck {
	if st == nil {
		return seqNew
	}
	if m.Time <= st.floor {
		return seqReplay
	}
	if m.Seq > st.hw {
		return seqNew
	}
	if m.Time > st.newest {
		return seqRestart
	}
	back := st.hw - m.Seq
	if back >= uint64(c.cfg.ReplayWindow) {
		return seqReplay
	}
	if w := int(back / 64); w < len(st.bits) && st.bits[w]&(1<<(back%64)) != 0 {
		return seqReplay
	}
	return seqNew
}

// acceptSeq records m's sequence number, after m verified, creating the origin's state (and
// forgetting the least recently heard origin if MaxOrigins are tracked) or starting it over on
// a restart. It makes the origin the most recently heard.
func (c *Core) acceptSeq(st *originState, m *Message, verdict seqCheck) {
	if st == nil {
		if c.origins == nil {
			c.origins = make(map[string]*originState)
		}
		for len(c.origins) >= c.cfg.MaxOrigins {
			old := c.originsTail
			c.unlinkOrigin(old)
			delete(c.origins, old.origin)
			c.stats.OriginsEvicted++
		}
		st = &originState{origin: m.Origin, hw: m.Seq, bits: []uint64{1}, newest: m.Time, floor: minTime}
		c.origins[m.Origin] = st
		c.pushOrigin(st)
		return
	}
	switch {
	case verdict == seqRestart:
		c.stats.OriginRestarts++
		st.floor = st.newest
		st.hw = m.Seq
		st.bits = append(st.bits[:0], 1)
	case m.Seq > st.hw:
		st.shift(m.Seq-st.hw, c.cfg.ReplayWindow)
		st.hw = m.Seq
		st.bits[0] |= 1
	default:
		back := st.hw - m.Seq
		st.grow(int(back/64)+1, c.cfg.ReplayWindow)
		st.bits[back/64] |= 1 << (back % 64)
	}
	st.newest = max(st.newest, m.Time)
	c.unlinkOrigin(st)
	c.pushOrigin(st)
}

// minTime is below every Time: the floor of an origin not seen to restart.
const minTime = -1 << 63

// grow extends bits to n words (at most window/64), zero-filled.
func (st *originState) grow(n, window int) {
	n = min(n, window/64)
	for len(st.bits) < n {
		st.bits = append(st.bits, 0)
	}
}

// shift moves the bitmap up by d numbers, for a new highest number hw+d: bit i becomes bit
// i+d, and bits past the window fall off.
func (st *originState) shift(d uint64, window int) {
	if d >= uint64(window) {
		clear(st.bits)
		return
	}
	// Grow to cover the lowest number that was delivered and is still in the window.
	top := -1
	for j := len(st.bits) - 1; j >= 0; j-- {
		if st.bits[j] != 0 {
			top = j*64 + bits.Len64(st.bits[j]) - 1
			break
		}
	}
	if top < 0 {
		return
	}
	st.grow((top+int(d))/64+1, window)
	words, bitsBy := int(d/64), uint(d%64)
	for j := len(st.bits) - 1; j >= 0; j-- {
		var v uint64
		if src := j - words; src >= 0 {
			v = st.bits[src] << bitsBy
			if bitsBy > 0 && src > 0 {
				v |= st.bits[src-1] >> (64 - bitsBy)
			}
		}
		st.bits[j] = v
	}
}

func (c *Core) pushOrigin(st *originState) {
	st.prev, st.next = nil, c.originsHead
	if c.originsHead != nil {
		c.originsHead.prev = st
	}
	c.originsHead = st
	if c.originsTail == nil {
		c.originsTail = st
	}
}

func (c *Core) unlinkOrigin(st *originState) {
	if st.prev != nil {
		st.prev.next = st.next
	} else {
		c.originsHead = st.next
	}
	if st.next != nil {
		st.next.prev = st.prev
	} else {
		c.originsTail = st.prev
	}
	st.prev, st.next = nil, nil
}

// HighWater returns the highest sequence number delivered from origin (this node's own last
// broadcast for Self), or 0 when none is remembered: the origin sent nothing yet, or it was
// forgotten (Config.MaxOrigins). It restarts low when the origin restarts. Catch-up compares
// it with the numbers peers hold to find gaps.
func (c *Core) HighWater(origin string) uint64 {
	if origin == c.cfg.Self {
		return c.seq
	}
	if st := c.origins[origin]; st != nil {
		return st.hw
	}
	return 0
}

// nowMillis is the core's clock in milliseconds, the unit of Message.Time.
func (c *Core) nowMillis() int64 { return int64(c.now / time.Millisecond) }
