// Package memlink is an in-memory link.Transport: a Network hands out one
// Transport per node ID, and links between them carry frames through
// memory with optional latency. It lets the complete node runtime run
// thousands of nodes in one process, and models the failures the real
// transport sees: partitions (Partition/Heal) and crashed nodes (Crash),
// which their peers notice only after HeartbeatTimeout, as with rtclink,
// unless DetectImmediately is set.
//
// Semantics beyond the link contract:
//   - All events to one node for one link pass through a FIFO, delayed by
//     Latency(from, to): LinkUp, then frames, then LinkDown.
//   - While a link is cut (partition, crashed peer) frames are held, not
//     lost, as SCTP would retransmit them; they count against
//     SendQueueLength, so a sender sees ErrQueueFull on a cut link. If the
//     cut heals before HeartbeatTimeout they are delivered; otherwise the
//     link goes down and they are dropped.
//   - A Dial to an ID with no Transport fails at once ("unreachable"); a Dial
//     across a cut waits until the cut heals or DialTimeout passes.
//   - Simultaneous Dials from both ends make one link.
//
// Everything runs under one Network mutex; each Transport has one delivery
// goroutine that moves due events to its channel.
package memlink

import (
	"container/heap"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rtcmesh/rtcmesh/link"
)

// Config configures a Network. DefaultConfig fills every field; NewNetwork refuses a
// missing or invalid one.
type Config struct {
	// Latency returns the one-way delay from one node to another. Nil means
	// no delay. Frames keep their order whatever it returns.
	Latency func(from, to string) time.Duration
	// HeartbeatTimeout: a link cut by a partition or a crash goes down this
	// long after the cut, as a heartbeat would notice
	// (link.DefaultHeartbeatTimeout, as on rtclink).
	HeartbeatTimeout time.Duration
	// DetectImmediately reports cut links down at once instead.
	DetectImmediately bool
	// DialTimeout: a Dial across a cut fails after this long (15 s).
	DialTimeout time.Duration
	// SendQueueLength bounds the frames in flight on one link in one
	// direction (sent, not yet handed to the receiver's event channel).
	// Send returns ErrQueueFull beyond it (256).
	SendQueueLength int
	// EventQueueLength is the capacity of each Transport's event channel
	// (1024).
	EventQueueLength int
	// MaxFrameSize bounds one frame (64 KiB).
	MaxFrameSize int
	// Clock drives latency and timeouts: RealClock(), or a ManualClock in
	// tests. Required.
	Clock Clock
}

// DefaultConfig returns a Network's defaults: no latency, the links'
// heartbeat timeout, a real clock.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout: link.DefaultHeartbeatTimeout,
		DialTimeout:      15 * time.Second,
		SendQueueLength:  256,
		EventQueueLength: 1024,
		MaxFrameSize:     64 << 10,
		Clock:            RealClock(),
	}
}

// validate refuses a missing or invalid field, the first in field order.
func (c *Config) validate() error {
	switch {
	case c.HeartbeatTimeout <= 0:
		return fmt.Errorf("memlink: Config.HeartbeatTimeout must be positive, got %v", c.HeartbeatTimeout)
	case c.DialTimeout <= 0:
		return fmt.Errorf("memlink: Config.DialTimeout must be positive, got %v", c.DialTimeout)
	case c.SendQueueLength < 1:
		return fmt.Errorf("memlink: Config.SendQueueLength must be at least 1, got %d", c.SendQueueLength)
	case c.EventQueueLength < 1:
		return fmt.Errorf("memlink: Config.EventQueueLength must be at least 1, got %d", c.EventQueueLength)
	case c.MaxFrameSize < 1:
		return fmt.Errorf("memlink: Config.MaxFrameSize must be at least 1, got %d", c.MaxFrameSize)
	case c.Clock == nil:
		return errors.New("memlink: Config.Clock is required (RealClock() or a ManualClock)")
	}
	return nil
}

// Network is a set of in-memory Transports that can link to each other.
type Network struct {
	cfg Config

	mu    sync.Mutex
	nodes map[string]*Transport // live transports
	pairs map[pairKey]*pair
	group map[string]int // partition group; absent = 0
	seq   uint64         // orders events with equal delivery times
}

// NewNetwork validates cfg (start from DefaultConfig) and returns an empty Network.
func NewNetwork(cfg Config) (*Network, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Network{
		cfg:   cfg,
		nodes: make(map[string]*Transport),
		pairs: make(map[pairKey]*pair),
		group: make(map[string]int),
	}, nil
}

// Transport creates the Transport of node id. An ID may be reused after its
// Transport was closed or crashed (a restart).
func (n *Network) Transport(id string) (*Transport, error) {
	if id == "" {
		return nil, errors.New("memlink: empty node ID")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes[id] != nil {
		return nil, fmt.Errorf("memlink: node %q already has a live Transport", id)
	}
	t := &Transport{
		n:      n,
		id:     id,
		links:  make(map[string]*pair),
		events: make(chan link.Event, n.cfg.EventQueueLength),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	n.nodes[id] = t
	t.wg.Add(1)
	go t.deliverLoop()
	return t, nil
}

// Partition cuts the network into groups: nodes in different groups cannot
// reach each other; nodes named in no group form one more group. It replaces
// any earlier partition.
func (n *Network) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = make(map[string]int)
	for i, g := range groups {
		for _, id := range g {
			n.group[id] = i + 1
		}
	}
	n.reevaluateLocked()
}

// Heal removes the partition.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = make(map[string]int)
	n.reevaluateLocked()
}

// Crash kills node id silently: its Transport stops (its event channel is
// closed, Send returns ErrClosed) and says nothing to its peers, whose links
// go down after HeartbeatTimeout (or at once with DetectImmediately).
func (n *Network) Crash(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.nodes[id]
	if t == nil {
		return
	}
	t.stopLocked()
	for _, p := range t.links {
		if p.state == stateOpening {
			n.closePairLocked(p, [2]string{link.ReasonDialTimeout, link.ReasonDialTimeout}, [2]time.Duration{})
			continue
		}
		n.cutLocked(p)
	}
	n.reevaluateLocked()
}

// Close closes every Transport.
func (n *Network) Close() {
	n.mu.Lock()
	ts := make([]*Transport, 0, len(n.nodes))
	for _, t := range n.nodes {
		ts = append(ts, t)
	}
	n.mu.Unlock()
	for _, t := range ts {
		t.Close()
	}
}

func (n *Network) latency(from, to string) time.Duration {
	if n.cfg.Latency == nil {
		return 0
	}
	if d := n.cfg.Latency(from, to); d > 0 {
		return d
	}
	return 0
}

// reachableLocked says whether the two ends of p can talk: both alive and
// in the same partition group.
func (n *Network) reachableLocked(p *pair) bool {
	return !p.tr[0].stopped && !p.tr[1].stopped && n.group[p.ends[0]] == n.group[p.ends[1]]
}

// reevaluateLocked applies reachability to every link: cut the unreachable,
// restore the reachable, establish opening links that can now connect.
func (n *Network) reevaluateLocked() {
	for _, p := range n.pairs {
		r := n.reachableLocked(p)
		switch {
		case p.state == stateOpening && r:
			n.establishLocked(p)
		case p.state == stateUp && !r && !p.cut:
			n.cutLocked(p)
		case p.state == stateUp && r && p.cut:
			n.restoreLocked(p)
		}
	}
}

type pairKey struct{ a, b string } // a < b

func keyOf(x, y string) pairKey {
	if x < y {
		return pairKey{x, y}
	}
	return pairKey{y, x}
}

type pairState uint8

const (
	stateOpening pairState = iota
	stateUp
	stateClosed
)

// pair is one link attempt between ends[0] < ends[1]. Direction d carries
// events to ends[d].
type pair struct {
	key    pairKey
	ends   [2]string
	tr     [2]*Transport // the Transports of ends; one may have crashed since
	state  pairState
	wasUp  bool
	dialed [2]bool
	sideUp [2]bool // LinkUp delivered to this end: it may Send
	cut    bool
	timer  Timer // dial timeout or heartbeat timeout
	since  time.Time

	inflight [2]int       // frames towards ends[d] not yet delivered
	lastAt   [2]time.Time // FIFO: latest delivery time towards ends[d]
	held     [2][]link.Event

	bytesIn, bytesOut, framesIn, framesOut [2]uint64
}

func (p *pair) side(id string) int {
	if p.ends[0] == id {
		return 0
	}
	return 1
}

func (n *Network) newPairLocked(x, y string) *pair {
	k := keyOf(x, y)
	if old := n.pairs[k]; old != nil {
		// A link whose other end crashed and came back: it is replaced.
		n.closePairLocked(old, [2]string{link.ReasonReplaced, link.ReasonReplaced}, [2]time.Duration{})
	}
	p := &pair{key: k, ends: [2]string{k.a, k.b}, tr: [2]*Transport{n.nodes[k.a], n.nodes[k.b]}}
	n.pairs[k] = p
	p.tr[0].links[k.b] = p
	p.tr[1].links[k.a] = p
	return p
}

func (n *Network) establishLocked(p *pair) {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.state, p.wasUp = stateUp, true
	p.since = n.cfg.Clock.Now()
	for d := range 2 {
		n.enqueueLocked(p, d, link.Event{Type: link.LinkUp, Peer: p.ends[1-d], Path: link.PathMemory},
			n.latency(p.ends[1-d], p.ends[d]))
	}
}

func (n *Network) cutLocked(p *pair) {
	if p.cut || p.state != stateUp {
		return
	}
	p.cut = true
	if n.cfg.DetectImmediately {
		n.timeoutLocked(p)
		return
	}
	p.timer = n.cfg.Clock.AfterFunc(n.cfg.HeartbeatTimeout, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if p.cut && p.state == stateUp {
			n.timeoutLocked(p)
		}
	})
}

func (n *Network) timeoutLocked(p *pair) {
	n.closePairLocked(p, [2]string{link.ReasonHeartbeatTimeout, link.ReasonHeartbeatTimeout}, [2]time.Duration{})
}

func (n *Network) restoreLocked(p *pair) {
	p.cut = false
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	for d := range 2 {
		held := p.held[d]
		p.held[d] = nil
		for _, ev := range held {
			n.enqueueLocked(p, d, ev, n.latency(p.ends[1-d], p.ends[d]))
		}
	}
}

// closePairLocked ends p. reasons[d] and delays[d] describe the LinkDown
// towards ends[d], sent to ends that knew of the link (it was up, or they
// dialed it) and are still alive; "" sends nothing.
func (n *Network) closePairLocked(p *pair, reasons [2]string, delays [2]time.Duration) {
	if p.state == stateClosed {
		return
	}
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.state = stateClosed
	if n.pairs[p.key] == p {
		delete(n.pairs, p.key)
	}
	for d := range 2 {
		p.held[d] = nil
		if t := p.tr[d]; !t.stopped {
			if t.links[p.ends[1-d]] == p {
				delete(t.links, p.ends[1-d])
			}
			if reasons[d] != "" && (p.wasUp || p.dialed[d]) {
				n.enqueueLocked(p, d, link.Event{Type: link.LinkDown, Peer: p.ends[1-d], Reason: reasons[d]}, delays[d])
			}
		}
	}
}

// enqueueLocked schedules ev for ends[d] after delay, behind everything
// already scheduled on that direction.
func (n *Network) enqueueLocked(p *pair, d int, ev link.Event, delay time.Duration) {
	t := p.tr[d]
	if t.stopped {
		return
	}
	at := n.cfg.Clock.Now().Add(delay)
	if at.Before(p.lastAt[d]) {
		at = p.lastAt[d]
	}
	p.lastAt[d] = at
	t.pushLocked(&item{at: at, ev: ev, p: p, d: d})
}

// Transport is one node's end of a Network. It implements link.Transport.
type Transport struct {
	n      *Network
	id     string
	events chan link.Event
	wake   chan struct{}
	done   chan struct{}
	wg     sync.WaitGroup

	// Guarded by n.mu.
	links   map[string]*pair
	inbox   itemHeap
	timer   Timer     // wakes the delivery loop for the inbox head
	timerAt time.Time // when timer fires
	stopped bool
}

var _ link.Transport = (*Transport)(nil)

// ID returns the node ID.
func (t *Transport) ID() string { return t.id }

type item struct {
	at  time.Time
	seq uint64
	ev  link.Event
	p   *pair // nil for a refused Dial
	d   int
}

func (t *Transport) pushLocked(it *item) {
	if t.stopped {
		return
	}
	t.n.seq++
	it.seq = t.n.seq
	heap.Push(&t.inbox, it)
	if t.inbox[0] == it {
		t.signal()
	}
}

func (t *Transport) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// deliverLoop moves due events to the channel; it blocks when the consumer
// is behind, which holds frames in flight and makes senders' queues fill.
func (t *Transport) deliverLoop() {
	defer t.wg.Done()
	defer close(t.events)
	n := t.n
	for {
		n.mu.Lock()
		var ev link.Event
		have := false
		for !have && !t.stopped && len(t.inbox) > 0 {
			now := n.cfg.Clock.Now()
			head := t.inbox[0]
			if head.at.After(now) {
				if t.timer == nil || head.at.Before(t.timerAt) {
					if t.timer != nil {
						t.timer.Stop()
					}
					t.timerAt = head.at
					t.timer = n.cfg.Clock.AfterFunc(head.at.Sub(now), t.signal)
				}
				break
			}
			heap.Pop(&t.inbox)
			ev, have = t.popEffectLocked(head)
		}
		stopped := t.stopped
		n.mu.Unlock()
		if stopped {
			return
		}
		if have {
			select {
			case t.events <- ev:
				continue
			case <-t.done:
				return
			}
		}
		select {
		case <-t.wake:
			n.mu.Lock()
			if t.timer != nil && !t.timerAt.After(n.cfg.Clock.Now()) {
				t.timer = nil
			}
			n.mu.Unlock()
		case <-t.done:
			return
		}
	}
}

// popEffectLocked applies the side effects of delivering it and says
// whether to hand its event to the consumer.
func (t *Transport) popEffectLocked(it *item) (link.Event, bool) {
	p := it.p
	if p == nil {
		return it.ev, true
	}
	switch it.ev.Type {
	case link.LinkUp:
		if p.state != stateUp {
			// Closed before the LinkUp arrived; the LinkDown queued behind
			// it still reports the end of the link, so deliver both.
			return it.ev, true
		}
		p.sideUp[it.d] = true
	case link.Frame:
		p.inflight[it.d]--
		p.bytesIn[it.d] += uint64(len(it.ev.Data))
		p.framesIn[it.d]++
	}
	return it.ev, true
}

// stopLocked stops t: no more events, channel closed by the delivery loop.
func (t *Transport) stopLocked() {
	if t.stopped {
		return
	}
	t.stopped = true
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.inbox = nil
	delete(t.n.nodes, t.id)
	close(t.done)
}

// Events implements link.Transport.
func (t *Transport) Events() <-chan link.Event { return t.events }

// Dial implements link.Transport.
func (t *Transport) Dial(peer string) {
	n := t.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if t.stopped {
		return
	}
	if p := t.links[peer]; p != nil {
		p.dialed[p.side(t.id)] = true
		return
	}
	if peer == t.id || n.nodes[peer] == nil {
		t.pushLocked(&item{at: n.cfg.Clock.Now(), ev: link.Event{Type: link.LinkDown, Peer: peer, Reason: link.ReasonUnreachable}})
		return
	}
	p := n.newPairLocked(t.id, peer)
	p.dialed[p.side(t.id)] = true
	if n.reachableLocked(p) {
		n.establishLocked(p)
		return
	}
	p.timer = n.cfg.Clock.AfterFunc(n.cfg.DialTimeout, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if p.state == stateOpening {
			n.closePairLocked(p, [2]string{link.ReasonDialTimeout, link.ReasonDialTimeout}, [2]time.Duration{})
		}
	})
}

// Send implements link.Transport. On a cut link the frame is held (see the
// package comment).
func (t *Transport) Send(peer string, frame []byte) error {
	n := t.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if t.stopped {
		return link.ErrClosed
	}
	p := t.links[peer]
	if p == nil || p.state != stateUp || !p.sideUp[p.side(t.id)] {
		return link.ErrNoLink
	}
	if len(frame) > n.cfg.MaxFrameSize {
		return fmt.Errorf("%w: %d bytes, limit %d", link.ErrFrameTooLarge, len(frame), n.cfg.MaxFrameSize)
	}
	s := p.side(t.id)
	d := 1 - s // towards the peer
	if p.inflight[d] >= n.cfg.SendQueueLength {
		return link.ErrQueueFull
	}
	p.inflight[d]++
	p.bytesOut[s] += uint64(len(frame))
	p.framesOut[s]++
	ev := link.Event{Type: link.Frame, Peer: t.id, Data: append([]byte(nil), frame...)}
	if p.cut {
		p.held[d] = append(p.held[d], ev)
		return nil
	}
	n.enqueueLocked(p, d, ev, n.latency(t.id, peer))
	return nil
}

// CloseLink implements link.Transport.
func (t *Transport) CloseLink(peer, reason string) {
	n := t.n
	n.mu.Lock()
	defer n.mu.Unlock()
	p := t.links[peer]
	if p == nil {
		return
	}
	s := p.side(t.id)
	var reasons [2]string
	var delays [2]time.Duration
	reasons[s] = link.ReasonClosed + ": " + reason
	if !p.cut {
		reasons[1-s] = link.ReasonClosedByPeer + ": " + reasons[s]
		delays[1-s] = n.latency(t.id, peer)
	} else {
		// The peer cannot hear us: it will time out.
		reasons[1-s] = link.ReasonHeartbeatTimeout
		delays[1-s] = n.cfg.HeartbeatTimeout
	}
	n.closePairLocked(p, reasons, delays)
}

// Links implements link.Transport.
func (t *Transport) Links() []link.LinkInfo {
	n := t.n
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]link.LinkInfo, 0, len(t.links))
	for peer, p := range t.links {
		s := p.side(t.id)
		if p.state != stateUp || !p.sideUp[s] {
			continue
		}
		out = append(out, link.LinkInfo{
			Peer:      peer,
			Path:      link.PathMemory,
			Since:     p.since,
			BytesIn:   p.bytesIn[s],
			BytesOut:  p.bytesOut[s],
			FramesIn:  p.framesIn[s],
			FramesOut: p.framesOut[s],
			RTT:       n.latency(t.id, peer) + n.latency(peer, t.id),
		})
	}
	return out
}

// Close implements link.Transport: peers get LinkDown "closed by peer:
// transport closed" after the latency, unless cut off, in which case they
// time out.
func (t *Transport) Close() error {
	n := t.n
	n.mu.Lock()
	if !t.stopped {
		for peer, p := range t.links {
			s := p.side(t.id)
			var reasons [2]string
			var delays [2]time.Duration
			if p.cut {
				reasons[1-s], delays[1-s] = link.ReasonHeartbeatTimeout, n.cfg.HeartbeatTimeout
			} else {
				reasons[1-s], delays[1-s] = link.ReasonClosedByPeer+": transport closed", n.latency(t.id, peer)
			}
			n.closePairLocked(p, reasons, delays)
		}
		t.stopLocked()
	}
	n.mu.Unlock()
	t.wg.Wait()
	return nil
}

type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)   { *h = append(*h, x.(*item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
