package gossip

import (
	"slices"
	"time"
)

// announcer is a lazy peer that announced a message we have not received, with the hop count
// at which it received that message.
type announcer struct {
	peer string
	hops uint16
}

// missingEntry tracks one message heard of by IHave but not yet received: the paper's
// "missing" set together with its timer.
type missingEntry struct {
	id MessageID
	// announcers in the order their IHaves arrived. announcers[:next] have already been
	// grafted for this message; announcers[next] is the one the next timer expiry grafts.
	announcers []announcer
	next       int
	// grafted is the announcer sent the last Graft for this message, until the payload
	// arrives or the next expiry finds that it broke its promise ("" for none).
	grafted string
	// deadline is when the timer fires: MissingTimeout after the first announcement, then
	// GraftRetryTimeout after each Graft.
	deadline time.Duration
	// seq orders timers with equal deadlines by the time they were armed, so that expiry
	// order (and therefore output) never depends on heap layout.
	seq uint64
	// index is the entry's position in the timer heap.
	index int
}

// announcedBy reports whether peer announced the message.
func (e *missingEntry) announcedBy(peer string) bool {
	for _, a := range e.announcers {
		if a.peer == peer {
			return true
		}
	}
	return false
}

// removeAnnouncer forgets peer as an announcer, keeping the graft cursor on the same next
// candidate.
func (e *missingEntry) removeAnnouncer(peer string) {
	for i, a := range e.announcers {
		if a.peer == peer {
			if e.grafted == peer {
				e.grafted = "" // gone: its link failed, which is no broken promise
			}
			e.announcers = slices.Delete(e.announcers, i, i+1)
			if i < e.next {
				e.next--
			}
			return
		}
	}
}

// timerHeap is a binary min-heap of missing entries ordered by (deadline, seq). Entries know
// their index, so a message that arrives cancels its timer in O(log n).
type timerHeap []*missingEntry

func (h timerHeap) less(i, j int) bool {
	if h[i].deadline != h[j].deadline {
		return h[i].deadline < h[j].deadline
	}
	return h[i].seq < h[j].seq
}

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h timerHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

func (h timerHeap) down(i int) {
	for {
		smallest := i
		if l := 2*i + 1; l < len(h) && h.less(l, smallest) {
			smallest = l
		}
		if r := 2*i + 2; r < len(h) && h.less(r, smallest) {
			smallest = r
		}
		if smallest == i {
			return
		}
		h.swap(i, smallest)
		i = smallest
	}
}

func (h *timerHeap) push(e *missingEntry) {
	e.index = len(*h)
	*h = append(*h, e)
	h.up(e.index)
}

// remove takes e out of the heap.
func (h *timerHeap) remove(e *missingEntry) {
	i, last := e.index, len(*h)-1
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = nil
	*h = (*h)[:last]
	if i != last {
		h.fix(i)
	}
	e.index = -1
}

// fix restores heap order after the entry at i changed its deadline.
func (h timerHeap) fix(i int) {
	h.down(i)
	h.up(i)
}
