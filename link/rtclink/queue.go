package rtclink

import (
	"sync"

	"github.com/rtcmesh/rtcmesh/link"
)

// eventQueue orders a Transport's events and feeds them to the consumer's
// channel through one pump goroutine. Link up/down events are appended
// without blocking (they come from API calls and WebRTC callbacks that must not
// wait on the consumer, and there are at most two per link); Frame events
// block their producer, a link's read loop, while limit frames are waiting,
// which stops reading that link and back-pressures the sender.
//
// Per-link ordering (LinkUp, Frames, LinkDown) holds because the up/down
// state of a link changes under mu together with the append of its event,
// and a Frame is appended only if its link's LinkDown is not queued yet.
type eventQueue struct {
	mu     sync.Mutex
	room   *sync.Cond // signalled when a frame leaves the queue or on close
	items  []link.Event
	head   int
	frames int // Frame events in items
	limit  int
	closed bool
	wake   chan struct{} // cap 1: items became non-empty
}

func newEventQueue(limit int) *eventQueue {
	q := &eventQueue{limit: limit, wake: make(chan struct{}, 1)}
	q.room = sync.NewCond(&q.mu)
	return q
}

// pushLocked appends a control event. q.mu must be held.
func (q *eventQueue) pushLocked(ev link.Event) {
	if q.closed {
		return
	}
	q.items = append(q.items, ev)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pushFrame appends a Frame event for c, waiting for room. It returns false
// if the frame was dropped because c went down or the queue closed.
func (q *eventQueue) pushFrame(c *conn, ev link.Event) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.frames >= q.limit && !q.closed && !c.downQueued {
		q.room.Wait()
	}
	if q.closed || c.downQueued {
		return false
	}
	q.frames++
	q.pushLocked(ev)
	return true
}

// pop removes the oldest event; ok is false if the queue is empty.
func (q *eventQueue) pop() (ev link.Event, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return link.Event{}, false
	}
	ev = q.items[q.head]
	q.items[q.head] = link.Event{}
	q.head++
	if q.head == len(q.items) {
		// Reuse the backing array once drained, so a steady stream does
		// not grow it.
		q.items = q.items[:0]
		q.head = 0
	}
	if ev.Type == link.Frame {
		q.frames--
		q.room.Broadcast()
	}
	return ev, true
}

func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.items = nil
	q.head = 0
	q.room.Broadcast()
	q.mu.Unlock()
}

// pump moves events to out until done is closed.
func (q *eventQueue) pump(out chan<- link.Event, done <-chan struct{}) {
	for {
		ev, ok := q.pop()
		if !ok {
			select {
			case <-q.wake:
				continue
			case <-done:
				return
			}
		}
		select {
		case out <- ev:
		case <-done:
			return
		}
	}
}
