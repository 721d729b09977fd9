package gossip

import "time"

// stamped is one record of an insertion-ordered expiry queue: the ID and the core time at
// which it was inserted. Core time only moves forward, so insertion order is also age order
// and both the count bound and the age bound evict from the front.
type stamped struct {
	id MessageID
	at time.Duration
}

// fifo is a slice-backed queue with O(1) amortised push and pop. It is not a ring because the
// bounds it serves are large (SeenMaxIDs) while the typical fill of a simulated core is a few
// hundred entries: a growing slice allocates only what is used.
type fifo struct {
	items []stamped
	head  int
}

func (q *fifo) len() int { return len(q.items) - q.head }

func (q *fifo) push(s stamped) { q.items = append(q.items, s) }

// front returns the oldest record; the queue must not be empty.
func (q *fifo) front() stamped { return q.items[q.head] }

// pop removes the oldest record; the queue must not be empty.
func (q *fifo) pop() stamped {
	s := q.items[q.head]
	q.items[q.head] = stamped{}
	q.head++
	switch {
	case q.head == len(q.items):
		// Empty: reuse the whole backing array.
		q.items, q.head = q.items[:0], 0
	case q.head >= 32 && q.head*2 >= len(q.items):
		// Mostly dead space at the front: slide the live records down so that the backing
		// array stays within twice the live size.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return s
}
