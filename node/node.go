// Package node is the rtcmesh runtime. One goroutine owns the composition of a HyParView core
// (package membership) and a Plumtree core (package gossip), an overlay.Peer, carries their
// messages to peers over a link.Transport in the wire format, and gives the application a small
// API: Broadcast, Deliveries, Events, Neighbors, Stats and Close, and direct messages to one
// node (Send, DirectMessages; route.go), signed end to end and routed through the overlay
// when there is no link.
//
// Peers are addressed by node ID. To send to a peer the node uses the open link, or dials one
// and queues the frames (a bounded few) until it is up. A link that goes down, or that cannot be
// opened, is reported to the membership core as PeerDown, which repairs the active view; a
// link to a peer that never was a neighbour while it was open (opened for a shuffle reply or a
// refused request) is closed after Config.TransientLinkTimeout without a frame, and a link to
// a former neighbour after Config.IdleLinkTimeout. A peer that sends a frame the wire format refuses, or a
// message its core refuses, is disconnected and logged; the node keeps running. A neighbour
// whose send queue is full is disconnected too, so one slow peer cannot stall the overlay.
package node

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/link"
	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/overlay"
	"github.com/rtcmesh/rtcmesh/routing"
	"github.com/rtcmesh/rtcmesh/scoring"
	"github.com/rtcmesh/rtcmesh/wire"
)

// ErrClosed is returned by calls on a closed Node.
var ErrClosed = errors.New("node: closed")

// Delivery is a broadcast handed to the application, once per message.
type Delivery struct {
	ID     gossip.MessageID
	Origin string
	// Hops is the number of links the message crossed; 0 for this node's own broadcasts.
	Hops int
	Data []byte
	// SentAt is when the origin broadcast the message, by the origin's clock (the signed time
	// every broadcast carries, to the millisecond). Receivers refuse a message whose SentAt is
	// further from their own clock than Config.Gossip.MaxClockSkew, or older than
	// Config.Gossip.CatchUpWindow when that is longer.
	SentAt time.Time
	// History is set when the message came by catch-up rather than through the broadcast
	// tree: the node was paused, cut off or not yet joined when it was sent, and fetched it
	// from a neighbour since (see Config.Gossip.CatchUpWindow). Such a message may have been
	// sent long before ReceivedAt; deliveries of history come in bursts, ordered neither by
	// SentAt nor with the live ones, so an application that shows a timeline sorts by SentAt.
	History bool
	// ReceivedAt is when the node delivered it.
	ReceivedAt time.Time
}

// EventType says what an Event reports.
type EventType uint8

const (
	// NeighborUp: Peer entered the active view; Path says how the link travels.
	NeighborUp EventType = iota + 1
	// NeighborDown: Peer left the active view; Reason says why when the link went down.
	NeighborDown
)

// String returns "neighbor_up" or "neighbor_down", the names the command line prints.
func (t EventType) String() string {
	switch t {
	case NeighborUp:
		return "neighbor_up"
	case NeighborDown:
		return "neighbor_down"
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Event reports a change of the node's neighbours.
type Event struct {
	Type   EventType
	Peer   string
	Path   link.Path
	Reason string
	At     time.Time
}

// Neighbor is one peer of the active view.
type Neighbor struct {
	ID   string
	Path link.Path
	// Eager reports whether the broadcast tree uses this link for payloads (false: lazy,
	// announcements only).
	Eager bool
	Since time.Time
	// RTT is the link's last measured round trip (link.LinkInfo.RTT); 0 if not known yet.
	RTT time.Duration
}

// Stats are the node's counters and the cores' own.
type Stats struct {
	Membership membership.Stats
	Gossip     gossip.Stats
	// Scoring is peer scoring's counters (see Config.Scoring).
	Scoring scoring.Stats
	// RefusedLinks counts links closed because their peer was refused by peer scoring (at
	// the verdict, or when it linked again during its cooling period); RefusedMessages the
	// messages from and to refused peers the overlay dropped.
	RefusedLinks, RefusedMessages uint64
	// Links is the number of open links, neighbours or not.
	Links int
	// FramesSent and FramesReceived count protocol frames.
	FramesSent, FramesReceived uint64
	// BadFrames counts frames the wire format or a core refused (each closed its link);
	// FramesDropped counts frames dropped because a peer's pending queue was full, or its
	// send queue (while catch-up frames were filling it, or for less than
	// Config.SlowPeerTimeout); SlowPeers counts links closed because their send queue stayed
	// full for SlowPeerTimeout.
	BadFrames, FramesDropped, SlowPeers uint64
	// CatchUpFramesDropped counts catch-up frames (DIGEST, HAVE, PULL, HISTORY) dropped
	// because a link's catch-up queue was full: the peer asked for more than its link
	// carries. The core asks again later.
	CatchUpFramesDropped uint64
	// DeliveriesDropped and EventsDropped count what the application did not read in time.
	DeliveriesDropped, EventsDropped uint64
	// LinksClosedIdle counts links to non-neighbours closed for silence; TransientLinksClosed
	// those of them that never carried a neighbour (Config.TransientLinkTimeout).
	LinksClosedIdle, TransientLinksClosed uint64
	// Routing is the overlay router's counters (envelopes relayed and dropped, table size).
	// RoutedSent counts this node's own envelopes (Send, SendSignal), RoutedReceived those
	// addressed to it and verified, RoutedRefused those refused (bad proof, clock, replay);
	// DirectDropped and SignalsDropped what the application or rtcnode did not read in time.
	Routing                                   routing.Stats
	RoutedSent, RoutedReceived, RoutedRefused uint64
	DirectDropped, SignalsDropped             uint64
	// ShuffleRepliesRouted counts this node's SHUFFLE_REPLYs sent through the overlay
	// (Config.RouteShuffleReplies), each a link it did not open; ShuffleRepliesLinked those
	// sent to a peer it has no link to over a link opened for them (no route was known).
	ShuffleRepliesRouted, ShuffleRepliesLinked uint64
}

// peerLink is what the node knows of its link to one peer.
type peerLink struct {
	up         bool
	path       link.Path
	since      time.Time
	lastActive time.Time
	pending    [][]byte // frames waiting for the link to come up
	// carried is set once the peer was a neighbour while this link was up: the link is then
	// closed after IdleLinkTimeout of silence rather than TransientLinkTimeout.
	carried bool
	// closing is set once closeIdleLinks closed the link, until its LinkDown.
	closing bool
	// servedAt is when a SHUFFLE_REPLY arrived on a link that never carried a neighbour: the
	// frame the peer opened it for. Unless something was sent or received after it, the link
	// is closed right after the frame is handled.
	servedAt time.Time

	// Catch-up frames are paced (see sendCatchUp): catchUp holds those waiting, in order,
	// catchUpBytes their size; tickFrames and tickBytes what was handed to the link since the
	// last pacing round (Node.pumpCatchUpAll); catchUpAt when the last one was.
	catchUp               [][]byte
	catchUpBytes          int
	tickFrames, tickBytes int
	catchUpAt             time.Time
	// fullSince is when a send first found the link's queue full with no send accepted since;
	// zero while the queue takes frames.
	fullSince time.Time
}

// Node is one member of the overlay.
type Node struct {
	cfg   Config
	tr    link.Transport
	peer  *overlay.Peer
	start time.Time
	now   func() time.Time
	// elapsed is the cores' time (wall-clock time since the Unix epoch, advanced monotonically
	// from start) read at the top of the current loop iteration, so every call into the cores
	// within one iteration sees the same instant.
	elapsed time.Duration

	// Owned by the loop goroutine.
	links      map[string]*peerLink
	downReason map[string]string // reason of the last LinkDown of a neighbour, until its NeighborDown
	neighbors  map[string]time.Time
	buf        []byte
	// linkDue is when (cores' time) closeIdleLinks runs next: the earliest a link that is not
	// a neighbour's may be closed for silence; 0 when there is none. pumpDue is when the next
	// round of catch-up pacing runs (pumpCatchUpAll): TickInterval after the last one while
	// catch-up frames wait; 0 when none wait. pumpedAt is when the last round ran.
	linkDue, pumpDue, pumpedAt time.Duration

	reqs       chan func()
	deliveries chan Delivery
	// backlog holds, in order, the deliveries that did not fit in the deliveries channel
	// (at most maxBacklog): the loop moves them there as the application reads.
	backlog    []Delivery
	maxBacklog int
	events     chan Event
	// direct and signals carry routed envelopes addressed to this node (route.go);
	// routedSeen and routedOrder remember their signatures against replays.
	direct      chan DirectMessage
	signals     chan RoutedSignal
	routedSeen  map[string]struct{}
	routedOrder []seenRouted
	stop        chan struct{}
	done        chan struct{}
	closeOnce   sync.Once
	stats       Stats // owned by the loop goroutine, read through do
}

// New creates a node and starts its goroutine. The node joins through cfg.Contacts, if any.
func New(cfg Config) (*Node, error) { return newNode(cfg, true) }

// newNode is New; signed false leaves broadcasts unsigned and unverified, which only the
// package's benchmarks use, to measure what the signatures cost.
func newNode(cfg Config, signed bool) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("node: seeding: %w", err)
		}
		seed = binary.LittleEndian.Uint64(b[:])
	}
	oc := overlay.Config{Self: cfg.Key.ID(), Membership: cfg.Membership, Gossip: cfg.Gossip, Scoring: cfg.Scoring, Routing: cfg.Routing}
	if signed {
		oc.Gossip.Auth = newBroadcastAuth(cfg.Key)
	}
	oc.Membership.Rand, oc.Membership.Contacts = mrand.New(mrand.NewPCG(seed, 1)), cfg.Contacts
	oc.Gossip.Rand = mrand.New(mrand.NewPCG(seed, 2))
	peer, err := overlay.New(oc)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	n := &Node{
		cfg: cfg, tr: cfg.Transport, peer: peer, start: now(), now: now,
		links:      map[string]*peerLink{},
		downReason: map[string]string{},
		neighbors:  map[string]time.Time{},
		reqs:       make(chan func()),
		deliveries: make(chan Delivery, cfg.DeliveryQueueLength),
		maxBacklog: backlogLength(cfg),
		events:     make(chan Event, cfg.EventQueueLength),
		direct:     make(chan DirectMessage, cfg.DirectQueueLength),
		signals:    make(chan RoutedSignal, cfg.SignalQueueLength),
		routedSeen: map[string]struct{}{},
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	n.tick()
	// Join through the first contact; with none (the first node of a network, or contacts
	// still to come from the signaling server) the node waits to be joined or for Join.
	n.peer.Join(n.elapsed, "")
	n.flush()
	go n.run()
	return n, nil
}

// ID returns the node's ID, the hash of its identity key.
func (n *Node) ID() string { return n.cfg.Key.ID() }

// Deliveries returns the channel of broadcasts delivered to this node, its own included
// (Hops 0). It is closed by Close.
func (n *Node) Deliveries() <-chan Delivery { return n.deliveries }

// Events returns the channel of neighbour changes. It is closed by Close.
func (n *Node) Events() <-chan Event { return n.events }

// Broadcast sends data to every node of the overlay and delivers it locally. data must not be
// modified afterwards. A broadcast made while the node has no neighbour is kept (at most
// Config.Gossip.MaxUnsent of them) and pushed to its first neighbour; with catch-up on
// (Config.Gossip.CatchUpWindow) nodes that join within the window fetch it too, as history.
func (n *Node) Broadcast(data []byte) (gossip.MessageID, error) {
	var id gossip.MessageID
	var err error
	if e := n.do(func() {
		id, err = n.peer.Broadcast(n.elapsed, data)
	}); e != nil {
		return id, e
	}
	return id, err
}

// Join joins (again) through contact: what a node does with contacts the signaling server
// hands out after the node ran out of its own.
func (n *Node) Join(contact string) error {
	return n.do(func() { n.peer.Join(n.elapsed, contact) })
}

// Neighbors lists the active view, sorted by ID.
func (n *Node) Neighbors() []Neighbor {
	var out []Neighbor
	_ = n.do(func() {
		eager := map[string]bool{}
		for _, p := range n.peer.EagerPeers() {
			eager[p] = true
		}
		for _, p := range n.peer.ActiveView() {
			nb := Neighbor{ID: p, Eager: eager[p], Since: n.neighbors[p]}
			if l := n.links[p]; l != nil {
				nb.Path = l.path
			}
			out = append(out, nb)
		}
	})
	// Link statistics come from the Transport, outside the runtime's goroutine.
	rtt := map[string]time.Duration{}
	for _, l := range n.cfg.Transport.Links() {
		rtt[l.Peer] = l.RTT
	}
	for i := range out {
		out[i].RTT = rtt[out[i].ID]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// PassiveView returns a copy of the membership passive view.
func (n *Node) PassiveView() []string {
	var out []string
	_ = n.do(func() { out = n.peer.PassiveView() })
	return out
}

// PeerScore returns this node's peer score for peer (Config.Scoring; 0 for a peer it holds no
// record of) and whether peer is refused now: scored below the threshold and cooling off, its
// links closed and refused.
func (n *Node) PeerScore(peer string) (score float64, refused bool) {
	_ = n.do(func() {
		score, refused = n.peer.Score(n.elapsed, peer), n.peer.Refused(n.elapsed, peer)
	})
	return score, refused
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	var s Stats
	_ = n.do(func() {
		s = n.stats
		cs := n.peer.Stats()
		s.Membership, s.Gossip, s.Scoring = cs.Membership, cs.Gossip, cs.Scoring
		s.RefusedMessages = cs.IgnoredFromRefused + cs.DroppedToRefused
		s.Routing = n.peer.RoutingStats()
		for _, l := range n.links {
			if l.up {
				s.Links++
			}
		}
	})
	return s
}

// Close leaves the overlay gracefully: DISCONNECT to every neighbour, then every link is
// closed, so the neighbours repair their views at once instead of waiting for a failure
// timeout. Deliveries and Events are closed afterwards.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { close(n.stop) })
	<-n.done
	return nil
}

// do runs fn on the node's goroutine and waits for it. Once Close has begun it returns
// ErrClosed instead: the node's goroutine is then closing the links and takes no requests,
// and a link layer's callback that waited here (a late ICE candidate to signal) would hold up
// the very link close that goroutine waits for.
func (n *Node) do(fn func()) error {
	finished := make(chan struct{})
	select {
	case <-n.stop:
		return ErrClosed
	default:
	}
	select {
	case n.reqs <- func() { fn(); close(finished) }:
	case <-n.stop:
		return ErrClosed
	case <-n.done:
		return ErrClosed
	}
	<-finished
	return nil
}

// run is the node's loop. It sleeps until something happens: a link event, a request, a
// delivery the application can take, or the earliest deadline (wakeAt): a core's timer
// (overlay.NextDeadline), a link to close for silence, or the next round of catch-up pacing.
// An idle node thus wakes only when a core has something to do (a shuffle round, a catch-up
// digest), not every TickInterval.
func (n *Node) run() {
	defer close(n.done)
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	var armed time.Duration // the cores' time wake is set for; 0 while stopped
	wake.Stop()
	events := n.tr.Events()
	for {
		if at := n.wakeAt(); at != armed {
			wake.Stop()
			armed = at
			// From the clock, not n.elapsed: a delivery handed to the application does not
			// read it, and the wait must not stretch by the time since.
			wake.Reset(max(at-n.coreTime(), 0))
		}
		var out chan Delivery // nil, so never ready, while the backlog is empty
		var next Delivery
		if len(n.backlog) > 0 {
			out, next = n.deliveries, n.backlog[0]
		}
		select {
		case out <- next:
			n.popBacklog()
			n.drainBacklog()
			continue // nothing for the cores to do
		case ev, ok := <-events:
			if !ok {
				n.cfg.Logger.Error().Msg("transport closed under the node")
				n.shutdown(false)
				return
			}
			n.tick()
			n.onLinkEvent(ev)
		case <-wake.C:
			armed = 0
			n.tick()
			if n.linkDue != 0 && n.elapsed >= n.linkDue {
				n.closeIdleLinks()
			}
			if n.pumpDue != 0 && n.elapsed >= n.pumpDue {
				n.pumpCatchUpAll()
			}
		case fn := <-n.reqs:
			n.tick()
			fn()
		case <-n.stop:
			n.shutdown(true)
			return
		}
		n.flush()
	}
}

// tick reads the clock once for this loop iteration and fires the timers of the cores whose
// deadline came (overlay.TickDue): a core that is not due catches up on its next call.
func (n *Node) tick() {
	n.elapsed = n.coreTime()
	n.peer.TickDue(n.elapsed)
}

// coreTime reads the clock as the cores' time: wall-clock time since the Unix epoch, as
// broadcasts carry it to other nodes' clock checks, advanced by the monotonic clock so it
// never steps back.
func (n *Node) coreTime() time.Duration {
	return time.Duration(n.start.UnixNano()) + n.now().Sub(n.start)
}

// wakeAt returns the cores' time at which the loop must wake with nothing else happening: the
// earliest of the cores' deadline, the next link due to be closed for silence (linkDue), and,
// while catch-up frames wait, the next pacing round (pumpDue). It is never 0.
func (n *Node) wakeAt() time.Duration {
	at := time.Duration(math.MaxInt64)
	if d, ok := n.peer.NextDeadline(); ok {
		at = d
	}
	if n.linkDue != 0 {
		at = min(at, n.linkDue)
	}
	if n.pumpDue != 0 {
		at = min(at, n.pumpDue)
	}
	return max(at, 1)
}

// watchLink makes sure closeIdleLinks runs by the time l, which is not (or no longer) a
// neighbour's link, may be closed for silence.
func (n *Node) watchLink(l *peerLink) {
	timeout := n.cfg.IdleLinkTimeout
	if !l.carried {
		timeout = n.cfg.TransientLinkTimeout
	}
	due := n.elapsed + l.lastActive.Add(timeout).Sub(n.now())
	if n.linkDue == 0 || due < n.linkDue {
		n.linkDue = max(due, 1)
	}
}

func (n *Node) shutdown(graceful bool) {
	if graceful {
		n.peer.Leave(n.elapsed)
		n.flush()
		for peer, l := range n.links {
			if l.up {
				n.tr.CloseLink(peer, "node leaving")
			}
		}
	}
	if err := n.tr.Close(); err != nil {
		n.cfg.Logger.Warn().Err(err).Msg("closing transport")
	}
	// What the channel has room for is still read after Close; the rest is dropped.
	n.drainBacklog()
	n.stats.DeliveriesDropped += uint64(len(n.backlog))
	n.backlog = nil
	close(n.deliveries)
	close(n.events)
	close(n.direct)
	close(n.signals)
}

// flush carries out what the cores asked for until both are quiet.
func (n *Node) flush() {
	for n.peer.HasReady() {
		rd := n.peer.Ready()
		for _, env := range rd.Membership {
			frame, err := wire.AppendMembership(n.buf[:0], env.Msg)
			if err != nil {
				n.cfg.Logger.Error().Err(err).Str("peer", env.To).Msg("encoding a membership message")
				continue
			}
			n.buf = frame
			if n.routeMembership(env.To, env.Msg.Type, frame) {
				continue
			}
			n.send(env.To, frame)
		}
		for _, e := range rd.Events {
			n.onMembershipEvent(e)
		}
		for _, env := range rd.Gossip {
			frame, err := wire.AppendGossip(n.buf[:0], env.Msg)
			if err != nil {
				n.cfg.Logger.Error().Err(err).Str("peer", env.To).Msg("encoding a gossip message")
				continue
			}
			n.buf = frame
			if isCatchUp(env.Msg.Type) {
				n.sendCatchUp(env.To, frame)
			} else {
				n.send(env.To, frame)
			}
		}
		for _, d := range rd.Deliveries {
			n.deliver(Delivery{ID: d.ID, Origin: d.Origin, Hops: int(d.Hops), Data: d.Payload,
				SentAt: time.UnixMilli(d.Time), History: d.History, ReceivedAt: n.now()})
		}
		for _, m := range rd.Misbehaviour {
			n.onMisbehaviour(m)
		}
		for _, m := range rd.MembershipMisbehaviour {
			n.onMembershipMisbehaviour(m)
		}
		for _, env := range rd.Routing {
			frame, err := wire.AppendRouting(n.buf[:0], env.Msg)
			if err != nil {
				n.cfg.Logger.Error().Err(err).Str("peer", env.To).Msg("encoding a routing message")
				continue
			}
			n.buf = frame
			n.send(env.To, frame)
		}
		for _, m := range rd.Routed {
			n.onRouted(m)
		}
		for _, peer := range rd.Disconnect {
			n.stats.RefusedLinks++
			n.cfg.Logger.Warn().Str("peer", peer).Dur("cooling", n.cfg.Scoring.CoolingPeriod).Msg("peer score below threshold: closing the link")
			n.tr.CloseLink(peer, "peer score below threshold")
		}
	}
}

// onMembershipEvent reports a membership event to the application; the composition has
// already given NeighborUp and NeighborDown to the gossip core.
func (n *Node) onMembershipEvent(e membership.Event) {
	switch e.Type {
	case membership.NeighborUp:
		n.neighbors[e.Peer] = n.now()
		ev := Event{Type: NeighborUp, Peer: e.Peer, At: n.now()}
		if l := n.links[e.Peer]; l != nil {
			ev.Path = l.path
			l.carried = l.carried || l.up
		}
		n.cfg.Logger.Debug().Str("peer", e.Peer).Str("path", string(ev.Path)).Msg("neighbour up")
		n.emit(ev)
	case membership.NeighborDown:
		delete(n.neighbors, e.Peer)
		if l := n.links[e.Peer]; l != nil && l.up {
			n.watchLink(l)
		}
		reason := n.downReason[e.Peer]
		delete(n.downReason, e.Peer)
		if reason == "" {
			reason = "disconnected"
		}
		n.cfg.Logger.Debug().Str("peer", e.Peer).Str("reason", reason).Msg("neighbour down")
		n.emit(Event{Type: NeighborDown, Peer: e.Peer, Reason: reason, At: n.now()})
	case membership.NeedContacts:
		if n.cfg.NeedContacts != nil {
			n.cfg.NeedContacts()
		}
	}
}

// send hands frame to peer's link, or queues it and dials when there is no link yet.
func (n *Node) send(peer string, frame []byte) {
	l := n.links[peer]
	if l != nil && l.up {
		err := n.tr.Send(peer, frame)
		switch {
		case err == nil:
			l.lastActive = n.now()
			l.fullSince = time.Time{}
			n.stats.FramesSent++
			return
		case errors.Is(err, link.ErrQueueFull) && n.catchUpBusy(l):
			// The queue is full of what this node sent in answer to the peer's own catch-up:
			// the frame is dropped (the protocols repair a lost frame), the link is kept.
			n.stats.FramesDropped++
			return
		case errors.Is(err, link.ErrQueueFull):
			// A burst (a flood this node forwarded within its budgets, a large broadcast)
			// can fill a healthy link's queue for a moment: the frame is dropped, and the tree
			// repairs it. A peer whose queue stays full for SlowPeerTimeout does not keep up;
			// it is dropped and replaced rather than allowed to stall the overlay (the
			// LinkDown that follows reports it to the membership core).
			if l.fullSince.IsZero() {
				l.fullSince = n.now()
			}
			if n.now().Sub(l.fullSince) < n.cfg.SlowPeerTimeout {
				n.stats.FramesDropped++
				return
			}
			n.stats.SlowPeers++
			n.cfg.Logger.Warn().Str("peer", peer).Dur("full_for", n.now().Sub(l.fullSince)).Msg("send queue full: closing the link")
			n.tr.CloseLink(peer, "send queue full")
			return
		case errors.Is(err, link.ErrNoLink):
			// The link is going down; its LinkDown is on the way. Queue and redial.
			l.up = false
		default:
			n.cfg.Logger.Error().Err(err).Str("peer", peer).Msg("send")
			return
		}
	}
	if n.peer.Refused(n.elapsed, peer) {
		// Never dial a peer in its cooling period (the overlay sends it nothing; this
		// catches frames queued before the verdict).
		n.stats.FramesDropped++
		return
	}
	if l == nil {
		l = &peerLink{}
		n.links[peer] = l
	}
	if len(l.pending) >= n.cfg.PendingFramesPerPeer {
		n.stats.FramesDropped++
		return
	}
	l.pending = append(l.pending, append([]byte(nil), frame...))
	n.tr.Dial(peer)
}

// Catch-up pacing. A neighbour's Pull is answered at once with up to
// Gossip.CatchUpPeerBurst bytes of HISTORY frames, thousands of small ones for a late joiner:
// more than a link's send queue holds (memlink's 256 frames, rtclink's 1 MiB), and a full queue
// closes the link as slow. So catch-up frames wait in a queue of their own per link, bounded
// by twice that burst, and are handed to the link at most Config.CatchUpFramesPerTick frames
// and the link's share of bytes (twice Gossip.CatchUpPeerRate) per round of TickInterval, stopping while its
// queue is full, which leaves room for the live frames. Beyond the bound they are dropped and
// counted (the core asks again). While catch-up frames are in flight on a link (and for
// Config.CatchUpBusyFor after the last), a live frame that finds its queue full is dropped
// rather than taken as a sign of a slow peer.

// isCatchUp reports whether messages of type t are catch-up messages, which are paced.
func isCatchUp(t gossip.MessageType) bool {
	return t == gossip.Digest || t == gossip.Have || t == gossip.Pull || t == gossip.History
}

// sendCatchUp queues a catch-up frame for peer and hands the link what its pace allows.
func (n *Node) sendCatchUp(peer string, frame []byte) {
	l := n.links[peer]
	if l == nil || !l.up {
		n.send(peer, frame) // queued for the link being opened, as any frame
		return
	}
	if l.catchUpBytes+len(frame) > 2*n.cfg.Gossip.CatchUpPeerBurst {
		n.stats.CatchUpFramesDropped++
		return
	}
	l.catchUp = append(l.catchUp, append([]byte(nil), frame...))
	l.catchUpBytes += len(frame)
	if n.pumpDue == 0 && n.elapsed-n.pumpedAt >= n.cfg.TickInterval {
		// No pacing round since TickInterval: this one starts a new allowance.
		n.pumpCatchUpAll()
		return
	}
	n.pumpCatchUp(peer, l)
	if len(l.catchUp) > 0 && n.pumpDue == 0 {
		n.pumpDue = n.pumpedAt + n.cfg.TickInterval
	}
}

// pumpCatchUp hands peer's link its waiting catch-up frames while this round's allowance lasts
// and the link's queue takes them.
func (n *Node) pumpCatchUp(peer string, l *peerLink) {
	maxBytes := max(2*n.cfg.Gossip.CatchUpPeerRate*int(n.cfg.TickInterval/time.Millisecond)/1000, 1)
	for len(l.catchUp) > 0 && l.up && l.tickFrames < n.cfg.CatchUpFramesPerTick && l.tickBytes < maxBytes {
		f := l.catchUp[0]
		err := n.tr.Send(peer, f)
		switch {
		case err == nil:
			n.stats.FramesSent++
			l.lastActive, l.catchUpAt = n.now(), n.now()
			l.tickFrames++
			l.tickBytes += len(f)
		case errors.Is(err, link.ErrQueueFull):
			l.catchUpAt = n.now()
			return // the next pacing round tries again
		case errors.Is(err, link.ErrNoLink):
			// The link is going down; its LinkDown is on the way, and the core will compare
			// again with whoever is a neighbour then.
			l.up = false
			n.stats.CatchUpFramesDropped += uint64(len(l.catchUp))
			l.catchUp, l.catchUpBytes = nil, 0
			return
		default:
			n.cfg.Logger.Debug().Err(err).Str("peer", peer).Msg("send a catch-up frame")
			n.stats.CatchUpFramesDropped++
		}
		l.catchUp[0] = nil
		l.catchUp = l.catchUp[1:]
		l.catchUpBytes -= len(f)
	}
	if len(l.catchUp) == 0 {
		l.catchUp = nil
	}
}

// pumpCatchUpAll starts a new round's allowance on every link and hands them what waits; if
// frames still wait, the next round is TickInterval later.
func (n *Node) pumpCatchUpAll() {
	n.pumpedAt, n.pumpDue = n.elapsed, 0
	for peer, l := range n.links {
		l.tickFrames, l.tickBytes = 0, 0
		if len(l.catchUp) > 0 {
			n.pumpCatchUp(peer, l)
		}
		if len(l.catchUp) > 0 {
			n.pumpDue = n.elapsed + n.cfg.TickInterval
		}
	}
}

// catchUpBusy reports whether l's send queue may be full of catch-up frames.
func (n *Node) catchUpBusy(l *peerLink) bool {
	return len(l.catchUp) > 0 || (!l.catchUpAt.IsZero() && n.now().Sub(l.catchUpAt) < n.cfg.CatchUpBusyFor)
}

func (n *Node) onLinkEvent(ev link.Event) {
	switch ev.Type {
	case link.LinkUp:
		if n.peer.Refused(n.elapsed, ev.Peer) {
			// Accept no link from a peer in its cooling period; its LinkDown follows.
			n.stats.RefusedLinks++
			delete(n.links, ev.Peer)
			n.tr.CloseLink(ev.Peer, "refused: peer score below threshold")
			return
		}
		l := n.links[ev.Peer]
		if l == nil {
			l = &peerLink{}
			n.links[ev.Peer] = l
		}
		l.up, l.path, l.since, l.lastActive = true, ev.Path, n.now(), n.now()
		_, l.carried = n.neighbors[ev.Peer]
		if !l.carried {
			n.watchLink(l)
		}
		pending := l.pending
		l.pending = nil
		for _, f := range pending {
			n.send(ev.Peer, f)
		}
	case link.LinkDown:
		if l := n.links[ev.Peer]; l != nil {
			n.stats.CatchUpFramesDropped += uint64(len(l.catchUp))
		}
		closedIdle := n.links[ev.Peer] != nil && n.links[ev.Peer].closing || isIdleCloseByPeer(ev.Reason)
		delete(n.links, ev.Peer)
		_, isNeighbor := n.neighbors[ev.Peer]
		if isNeighbor {
			n.downReason[ev.Peer] = ev.Reason // for the NeighborDown that PeerDown causes
		}
		// A link either end closed for silence says nothing against the peer: it is alive and
		// stays in the passive view (PeerDown would drop it there, at both ends, after every
		// shuffle reply). A link that failed, or was never up, does.
		if isNeighbor || !closedIdle {
			n.peer.PeerDown(n.elapsed, ev.Peer)
		}
	case link.Frame:
		if l := n.links[ev.Peer]; l != nil {
			l.lastActive = n.now()
		}
		n.onFrame(ev.Peer, ev.Data)
	}
}

func (n *Node) onFrame(peer string, data []byte) {
	n.stats.FramesReceived++
	f, err := n.cfg.Limits.Decode(data)
	if err == nil {
		switch f.Protocol {
		case wire.ProtocolMembership:
			err = n.peer.StepMembership(n.elapsed, peer, f.Membership)
			if l := n.links[peer]; err == nil && l != nil && !l.carried && f.Membership.Type == membership.ShuffleReply {
				l.servedAt = l.lastActive
				n.linkDue = max(n.elapsed, 1) // closed once this iteration's output is sent, unless a neighbour
			}
		case wire.ProtocolGossip:
			err = n.peer.StepGossip(n.elapsed, peer, f.Gossip)
		case wire.ProtocolRouting:
			err = n.peer.StepRouting(n.elapsed, peer, f.Routing)
		case wire.ProtocolControl:
			if f.Control.Type == wire.ControlClose {
				n.tr.CloseLink(peer, "closed by peer: "+f.Control.Reason)
			}
		}
	}
	if err != nil {
		n.stats.BadFrames++
		n.cfg.Logger.Warn().Err(err).Str("peer", peer).Msg("refused a frame: closing the link")
		n.tr.CloseLink(peer, "bad frame")
	}
}

// closeIdleLinks closes links to peers that are not neighbours and have been quiet: after
// TransientLinkTimeout a link that never carried a neighbour, after IdleLinkTimeout one that
// did, and at once one that never carried a neighbour and brought a SHUFFLE_REPLY, its last
// frame.
// The reasons closeIdleLinks gives the peer, which tell it the link was closed for silence.
const (
	closeReasonIdle   = "idle"
	closeReasonServed = "transient link served"
)

// isIdleCloseByPeer reports whether a LinkDown reason is the peer closing the link for
// silence (its closeIdleLinks).
func isIdleCloseByPeer(reason string) bool {
	rest, ok := strings.CutPrefix(reason, link.ReasonClosedByPeer+": ")
	rest = strings.TrimPrefix(rest, link.ReasonClosed+": ") // the peer's own LinkDown reason, as its Transport words it
	return ok && (rest == closeReasonIdle || rest == closeReasonServed)
}

func (n *Node) closeIdleLinks() {
	now := n.now()
	n.linkDue = 0
	for peer, l := range n.links {
		if _, isNeighbor := n.neighbors[peer]; isNeighbor || !l.up || l.closing {
			continue
		}
		timeout, reason := n.cfg.IdleLinkTimeout, closeReasonIdle
		if !l.carried {
			timeout, reason = n.cfg.TransientLinkTimeout, closeReasonServed
		}
		// A link opened to bring this node a SHUFFLE_REPLY has served its purpose once it came,
		// if nothing else crossed it since.
		served := !l.carried && !l.servedAt.IsZero() && !l.lastActive.After(l.servedAt)
		if !served && now.Sub(l.lastActive) <= timeout {
			n.watchLink(l)
			continue
		}
		l.closing = true
		n.stats.LinksClosedIdle++
		if !l.carried {
			n.stats.TransientLinksClosed++
		}
		n.tr.CloseLink(peer, reason)
	}
}

// onMisbehaviour logs a refused broadcast and hands it to the peer-scoring hook. It logs at
// debug level only: every refusal is a frame a hostile peer chose to send, so a louder level
// would let it write the operator's log at its own rate. The refusals are counted by reason
// in Stats (rtcmesh_gossip_refused_total), which is where an attack shows.
func (n *Node) onMisbehaviour(m gossip.Misbehaviour) {
	n.cfg.Logger.Debug().Str("peer", m.Peer).Str("origin", m.Origin).Str("msg_id", m.ID.String()).Stringer("reason", m.Reason).
		AnErr("error", m.Err).Msg("broadcast refused")
	if n.cfg.OnMisbehaviour != nil {
		n.cfg.OnMisbehaviour(m)
	}
}

// onMembershipMisbehaviour logs a refused HyParView message (at debug level, for the same
// reason as onMisbehaviour) and hands it to the peer-scoring hook.
func (n *Node) onMembershipMisbehaviour(m membership.Misbehaviour) {
	n.cfg.Logger.Debug().Str("peer", m.Peer).Stringer("type", m.Type).Stringer("reason", m.Reason).
		Msg("membership message refused")
	if n.cfg.OnMembershipMisbehaviour != nil {
		n.cfg.OnMembershipMisbehaviour(m)
	}
}

// backlogLength is how many deliveries may wait in the node beyond the channel's
// DeliveryQueueLength: with catch-up on, Gossip.CatchUpMaxMessages, as many as a neighbour can
// hand a late joiner in one burst; none without.
func backlogLength(cfg Config) int {
	if cfg.Gossip.CatchUpWindow > 0 {
		return cfg.Gossip.CatchUpMaxMessages
	}
	return 0
}

// deliver hands d to the application. When the channel is full it waits in the backlog, and
// when that is full too the oldest waiting delivery (the channel's head) is dropped and
// counted: a slow reader never stalls the overlay, and order is kept.
func (n *Node) deliver(d Delivery) {
	if len(n.backlog) == 0 {
		select {
		case n.deliveries <- d:
			return
		default:
		}
	}
	if len(n.backlog) < n.maxBacklog {
		n.backlog = append(n.backlog, d)
		return
	}
	for {
		select {
		case <-n.deliveries:
			n.stats.DeliveriesDropped++
		default:
		}
		if len(n.backlog) == 0 {
			select {
			case n.deliveries <- d:
				return
			default:
				continue // the reader took the freed slot's neighbour: drop again
			}
		}
		select {
		case n.deliveries <- n.backlog[0]:
			n.popBacklog()
			n.backlog = append(n.backlog, d)
			return
		default:
		}
	}
}

// drainBacklog moves waiting deliveries into the channel while it has room.
func (n *Node) drainBacklog() {
	for len(n.backlog) > 0 {
		select {
		case n.deliveries <- n.backlog[0]:
			n.popBacklog()
		default:
			return
		}
	}
}

// popBacklog removes the backlog's head, releasing the array once it is empty.
func (n *Node) popBacklog() {
	n.backlog[0] = Delivery{}
	n.backlog = n.backlog[1:]
	if len(n.backlog) == 0 {
		n.backlog = nil
	}
}

func (n *Node) emit(ev Event) {
	for {
		select {
		case n.events <- ev:
			return
		default:
		}
		select {
		case <-n.events:
			n.stats.EventsDropped++
		default:
		}
	}
}
