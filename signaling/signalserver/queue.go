package signalserver

import (
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtcmesh/rtcmesh/signaling"
)

// A connection's outgoing frames wait in two queues that the writer empties, replies first:
// the server's own replies to the client (challenge, welcome, peer lists, errors), at most one
// per message the client sent, so RateBurst+1 of them are room enough for a client that reads;
// and relays from other peers (offers, answers, candidates, peer-left), bounded in bytes by
// SendQueueBytes. Every queued byte also counts against the server's MaxQueuedBytes.

// frameOverhead is what a queued frame costs beyond its bytes: its slice header and
// allocation. Counting it keeps a flood of tiny frames within the byte bounds too.
const frameOverhead = 64

// evictBackoff is how long the server waits, after a search for a connection to evict found
// none worth evicting, before it searches again: a search visits every connection, and while
// the budget is spread thin each relay would otherwise pay for one.
const evictBackoff = 100 * time.Millisecond

func frameCost(frame []byte) int64 { return int64(len(frame)) + frameOverhead }

// enqueue queues one of the server's replies to c without blocking. A client that lets more
// than RateBurst+1 replies pile up reads too slowly: it is disconnected.
func (c *conn) enqueue(frame []byte) {
	n := frameCost(frame)
	c.outMu.Lock()
	if c.outClosed {
		c.outMu.Unlock()
		return
	}
	if len(c.replies) > c.srv.cfg.RateBurst {
		c.outMu.Unlock()
		if c.closeWith(nil, websocket.ClosePolicyViolation, string(signaling.CodeSlowConsumer), signaling.CodeSlowConsumer) {
			c.log.Warn().Int("replies", c.srv.cfg.RateBurst+1).Msg("reply queue overflowed; disconnecting slow consumer")
		}
		return
	}
	c.replies = append(c.replies, frame)
	c.queued.Add(n)
	c.srv.queued.Add(n)
	c.outMu.Unlock()
	c.wakeWriter()
}

// enqueueRelay queues a frame from another peer for c without blocking, and reports false if
// it does not fit c's SendQueueBytes or the server's MaxQueuedBytes. A frame for a connection
// that is going away is dropped and reported as queued.
func (c *conn) enqueueRelay(frame []byte) bool {
	n := frameCost(frame)
	if !c.srv.reserve(n) {
		return false
	}
	c.outMu.Lock()
	switch {
	case c.outClosed:
		c.outMu.Unlock()
		c.srv.queued.Add(-n)
		return true
	case c.relayBytes > 0 && c.relayBytes+n > int64(c.srv.cfg.SendQueueBytes):
		c.outMu.Unlock()
		c.srv.queued.Add(-n)
		return false
	}
	c.relays = append(c.relays, frame)
	c.relayBytes += n
	c.queued.Add(n)
	c.outMu.Unlock()
	c.wakeWriter()
	return true
}

func (c *conn) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// pop takes the next frame for the writer: replies first.
func (c *conn) pop() ([]byte, bool) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	var f []byte
	switch {
	case len(c.replies) > 0:
		f, c.replies[0], c.replies = c.replies[0], nil, c.replies[1:]
		if len(c.replies) == 0 {
			c.replies = nil
		}
	case len(c.relays) > 0:
		f, c.relays[0], c.relays = c.relays[0], nil, c.relays[1:]
		if len(c.relays) == 0 {
			c.relays = nil
		}
		c.relayBytes -= frameCost(f)
	default:
		return nil, false
	}
	n := frameCost(f)
	c.queued.Add(-n)
	c.srv.queued.Add(-n)
	return f, true
}

// releaseQueue drops whatever is still queued for c, for good.
func (c *conn) releaseQueue() {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	c.outClosed = true
	c.srv.queued.Add(-c.queued.Swap(0))
	c.replies, c.relays, c.relayBytes = nil, nil, 0
}

// reserve takes n bytes of MaxQueuedBytes. When they are not there it evicts the connection
// with the most queued, once, if that is worth it.
func (s *Server) reserve(n int64) bool {
	limit := int64(s.cfg.MaxQueuedBytes)
	evicted := false
	for {
		cur := s.queued.Load()
		if cur+n <= limit {
			if s.queued.CompareAndSwap(cur, cur+n) {
				return true
			}
			continue
		}
		if evicted || !s.evictLargest() {
			return false
		}
		evicted = true
	}
}

// evictLargest disconnects the connection with the most bytes queued if it holds at least
// half its SendQueueBytes: with the server's budget used up, the receiver that reads least
// goes, not the relays of everyone else. It reports whether it evicted one.
func (s *Server) evictLargest() bool {
	now := time.Now().UnixNano()
	if now < s.noVictimUntil.Load() {
		return false
	}
	var victim *conn
	var most int64
	s.mu.Lock()
	for c := range s.conns {
		if q := c.queued.Load(); q > most {
			victim, most = c, q
		}
	}
	s.mu.Unlock()
	if victim == nil || most < int64(s.cfg.SendQueueBytes)/2 {
		s.noVictimUntil.Store(now + int64(evictBackoff))
		return false
	}
	if victim.closeWith(nil, websocket.CloseAbnormalClosure, "", signaling.CodeSlowConsumer) {
		victim.log.Warn().Int64("queued_bytes", most).Int("max_queued_bytes", s.cfg.MaxQueuedBytes).
			Msg("server's queue budget used up; disconnecting the connection with the most queued")
	}
	victim.releaseQueue()
	victim.ws.Close() // unblocks a writer stalled on the socket
	return true
}
