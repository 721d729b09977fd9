package sim

import (
	"container/heap"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/membership"
)

// eventKind says what an event does when its time comes.
type eventKind uint8

const (
	// evMembership delivers mm from node `from` to node `to`.
	evMembership eventKind = iota + 1
	// evGossip delivers gm from node `from` to node `to`.
	evGossip
	// evWake ticks node `to`'s cores because one of their timers is due.
	evWake
	// evPeerDown tells node `to` that its link to node `from` failed (a send to a crashed
	// node, or a heartbeat that stopped).
	evPeerDown
	// evJoin makes node `to` join the overlay through node `from`.
	evJoin
	// evAttack runs one round of attacker `to`'s injected messages.
	evAttack
	// evView delivers a routing VIEW (its Nodes in mm.Nodes) from node `from` to node `to`.
	evView
)

// event is one scheduled happening. Times are whole simulated milliseconds: per-link latencies
// are whole milliseconds, so two messages sent on one link in order arrive in order.
type event struct {
	at       int64
	kind     eventKind
	to, from int32
	mm       membership.Message
	gm       gossip.Message
}

// calendarQueue is a bucket queue keyed by millisecond: a ring of ringSize buckets holds the
// events due within the horizon, and a heap holds the few further away (long timers). Within
// one millisecond events run in the order they were scheduled, which keeps the simulation
// deterministic and each link FIFO. Push and pop are O(1) for events within the horizon,
// which is what lets the simulator run 100,000 nodes: a binary heap over a million pending
// events costs several times more.
//
// A bucket is a list of fixed-size chunks taken from a shared free list and returned to it once
// the bucket has run, so memory follows the number of pending events rather than the largest
// number any bucket of the ring ever held.
type calendarQueue struct {
	now     int64
	buckets []bucket
	pending int // events in the ring
	far     farHeap
	seq     uint64
	free    *chunk
}

type bucket struct{ head, tail *chunk }

const (
	ringSize  = 1 << 16 // 65.5 s of simulated time
	chunkSize = 32
)

type chunk struct {
	evs  [chunkSize]event
	n    int
	next *chunk
}

func newCalendarQueue() *calendarQueue {
	return &calendarQueue{buckets: make([]bucket, ringSize)}
}

// push schedules ev. An event in the past runs at the current millisecond.
func (q *calendarQueue) push(ev event) {
	if ev.at < q.now {
		ev.at = q.now
	}
	if ev.at-q.now >= ringSize {
		q.seq++
		heap.Push(&q.far, farEvent{ev: ev, seq: q.seq})
		return
	}
	q.append(&q.buckets[ev.at&(ringSize-1)], ev)
}

func (q *calendarQueue) append(b *bucket, ev event) {
	if b.tail == nil || b.tail.n == chunkSize {
		c := q.free
		if c != nil {
			q.free = c.next
			c.next = nil
		} else {
			c = new(chunk)
		}
		if b.tail == nil {
			b.head = c
		} else {
			b.tail.next = c
		}
		b.tail = c
	}
	b.tail.evs[b.tail.n] = ev
	b.tail.n++
	q.pending++
}

// len is the number of scheduled events.
func (q *calendarQueue) len() int { return q.pending + len(q.far) }

// nextTime returns the time of the earliest scheduled event; ok is false when there is none.
func (q *calendarQueue) nextTime() (int64, bool) {
	if q.pending > 0 {
		for t := q.now; ; t++ {
			if q.buckets[t&(ringSize-1)].head != nil {
				if len(q.far) > 0 && q.far[0].ev.at < t {
					return q.far[0].ev.at, true
				}
				return t, true
			}
		}
	}
	if len(q.far) > 0 {
		return q.far[0].ev.at, true
	}
	return 0, false
}

// advance moves the clock to t (t >= now), first pulling into the ring every far event that
// comes within the horizon.
func (q *calendarQueue) advance(t int64) {
	q.now = t
	for len(q.far) > 0 && q.far[0].ev.at-q.now < ringSize {
		fe := heap.Pop(&q.far).(farEvent)
		q.append(&q.buckets[fe.ev.at&(ringSize-1)], fe.ev)
	}
}

// runBucket calls fn for every event of the current millisecond in the order they were
// scheduled, including events fn schedules for this same millisecond, then empties the bucket.
func (q *calendarQueue) runBucket(fn func(*event)) {
	b := &q.buckets[q.now&(ringSize-1)]
	// c.n and c.next are read afresh on every step because fn may append to this bucket.
	for c := b.head; c != nil; c = c.next {
		for i := 0; i < c.n; i++ {
			// Chunks never move, and fn only appends after index i, so the pointer stays valid.
			fn(&c.evs[i])
			q.pending--
		}
	}
	for c := b.head; c != nil; {
		next := c.next
		clear(c.evs[:c.n]) // drop references to payloads and node lists
		c.n, c.next = 0, q.free
		q.free = c
		c = next
	}
	b.head, b.tail = nil, nil
}

type farEvent struct {
	ev  event
	seq uint64
}

type farHeap []farEvent

func (h farHeap) Len() int { return len(h) }
func (h farHeap) Less(i, j int) bool {
	if h[i].ev.at != h[j].ev.at {
		return h[i].ev.at < h[j].ev.at
	}
	return h[i].seq < h[j].seq
}
func (h farHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *farHeap) Push(x any)   { *h = append(*h, x.(farEvent)) }
func (h *farHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
