// Package routing carries signed point-to-point envelopes through the overlay: the offer,
// answer and candidates of a new WebRTC link once a node has neighbours, and the
// application's direct messages, so that the signaling server is needed only to meet. It is
// a pure, deterministic component in the style of the protocol cores (no goroutines, wall
// clock, global random source or network): the driver passes its time to every call, and
// overlay.Peer composes it with HyParView (package membership) and Plumtree.
//
// What a node knows, and where it comes from (see ARCHITECTURE.md, "Routing through the
// overlay", for why these sources and not others):
//   - Its neighbours (the active view): one hop.
//   - Its neighbours' active views, which each neighbour sends in a small VIEW message when
//     its active view changes: two hops, through that neighbour.
//   - Reverse paths (Learn): a membership walk (FORWARD_JOIN, SHUFFLE) that arrives from
//     neighbour Y about node X says "X is reachable through Y", and so does a routed envelope
//     from source X arriving from Y. Every node along a walk records it, so a reply (the
//     SHUFFLE_REPLY's link, the NEIGHBOR to a joiner) can retrace the walk hop by hop. An
//     entry is trusted for Config.EntryTTL and only while Y is still a neighbour.
//   - Hints (Hint): "W knows X" for a passive entry X learnt from W's shuffle sample (X was
//     in W's views). An envelope for X that no table routes is sent toward W with W as its
//     waypoint (Message.Via); W then routes it with what it knows itself.
//
// A relay forwards only along these routes, never back to the neighbour the envelope came
// from, decrements the hop limit, rate-limits each source, and drops what it cannot route:
// the source's runtime then falls back to the server. The routing layer never reads Body
// nor checks Proof: the source's runtime signs (source, target, kind, body, time) and the
// target's runtime verifies before it acts, so a relay can drop an envelope but can neither
// alter nor forge one.
package routing

import (
	"errors"
	"fmt"
	"time"
)

// MessageType identifies a routing message. The numeric values are part of the wire format
// (package wire, protocol 4) and must never be reused.
type MessageType uint8

const (
	// Routed is a signed envelope on its way from Source to Target.
	Routed MessageType = 1
	// View carries the sender's active view (Nodes) to a neighbour, for two-hop routes.
	View MessageType = 2
)

// String returns "ROUTED" or "VIEW".
func (t MessageType) String() string {
	switch t {
	case Routed:
		return "ROUTED"
	case View:
		return "VIEW"
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Kind says what a routed envelope carries, for the target's runtime.
type Kind uint8

const (
	// KindSignal is a link's offer, answer or ICE candidate (the runtime's encoding in Body).
	KindSignal Kind = 1
	// KindDirect is an application's direct message (node.Send).
	KindDirect Kind = 2
	// KindMembership is a membership message (wire-encoded) to a peer the sender has no link
	// to: a SHUFFLE_REPLY retracing its shuffle's walk instead of opening a link of its own.
	KindMembership Kind = 3
)

// Valid reports whether k is a defined kind.
func (k Kind) Valid() bool { return k == KindSignal || k == KindDirect || k == KindMembership }

// String returns "signal", "direct" or "membership".
func (k Kind) String() string {
	switch k {
	case KindSignal:
		return "signal"
	case KindDirect:
		return "direct"
	case KindMembership:
		return "membership"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Message is one routing message, a flat struct like the cores' messages: only the fields its
// Type documents are meaningful.
type Message struct {
	Type MessageType
	// Source and Target are the envelope's ends (Routed). Both are signed by the source.
	Source, Target string
	// Via is an optional waypoint (Routed): a node that knows Target, set by a node that
	// had only a hint. Not signed: a relay that changes it can only misroute, which it could
	// do anyway by dropping.
	Via string
	// HopLimit is how many more times the envelope may be forwarded (Routed). Not signed.
	HopLimit uint8
	// Waypoints counts the waypoints set so far (Routed), at most Config.MaxWaypoints. Not
	// signed.
	Waypoints uint8
	// Kind says what Body is (Routed).
	Kind Kind
	// Time is the source's clock when it signed, Unix milliseconds (Routed): the target's
	// runtime refuses old envelopes and replays.
	Time int64
	// Body is the runtime's payload (Routed); routing never reads it.
	Body []byte
	// Proof is the source's public key and signature over (network, source, target, kind,
	// time, body) (Routed); checked by the target's runtime, never by routing.
	Proof []byte
	// Nodes is the sender's active view (View).
	Nodes []string
}

// Envelope is a routing message to send to a neighbour.
type Envelope struct {
	To  string
	Msg Message
}

// Config bounds one Router. The zero value (Enabled false) routes nothing: Send reports
// ErrNoRoute and every message is ignored.
type Config struct {
	// Enabled turns routing on.
	Enabled bool
	// MaxHops is the hop limit of an envelope this node sends (8): a walk's reverse path is
	// at most membership's ARWL or ShuffleTTL (6) plus the hop to the walk's start; longer
	// envelopes are refused by relays.
	MaxHops uint8
	// MaxEntries bounds the learnt routes and hints kept (256, at most 65,535); when full
	// the one added longest ago goes.
	// A node sees about ShuffleTTL walks per membership round, each one entry, plus a hint
	// per shuffle sample entry (8).
	MaxEntries int
	// EntryTTL is how long a learnt reverse path is trusted (1 minute: six WAN rounds). Paths
	// are made of active links, which at rest live far longer; after a failure the entry
	// also dies with the neighbour it goes through.
	EntryTTL time.Duration
	// HintTTL is how long a hint (X known by W) is used (5 minutes).
	HintTTL time.Duration
	// MaxWaypoints is how many times one envelope may be given a waypoint from a hint (2):
	// by its source, then by the waypoint if it knows the target only by a hint of its own.
	// 0: hints are not used.
	MaxWaypoints uint8
	// MaxViewNodes bounds the nodes of a neighbour's VIEW kept (16; an honest view holds
	// membership's ActiveSize, 5); a longer VIEW is refused.
	MaxViewNodes int
	// SourceRate and SourceBurst are a token bucket per source of relayed envelopes (20 a
	// second, bursts of 60): a link setup takes a few signals, a direct message one. Beyond
	// it an envelope is dropped. Envelopes this node sends are not limited here.
	SourceRate  float64
	SourceBurst int
	// MaxSources bounds the per-source buckets kept (64); when full the fullest (the one
	// that has been quiet longest) is dropped. A bucket quiet for SourceBurst/SourceRate
	// (3 s) is full again, so only the sources of the last seconds need one.
	MaxSources int
	// MaxQueue bounds the envelopes and deliveries waiting for Ready (256); beyond it an
	// envelope is dropped and counted.
	MaxQueue int
}

// DefaultConfig returns routing on with the defaults named in Config.
func DefaultConfig() Config {
	return Config{
		Enabled: true, MaxHops: 24, MaxEntries: 256,
		EntryTTL: 5 * time.Minute, HintTTL: 5 * time.Minute, MaxWaypoints: 2, MaxViewNodes: 16,
		SourceRate: 20, SourceBurst: 60, MaxSources: 64, MaxQueue: 256,
	}
}

// Validate checks an enabled configuration's bounds.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	switch {
	case c.MaxHops == 0:
		return errors.New("routing: Config.MaxHops must be positive")
	case c.MaxEntries <= 0 || c.MaxEntries > maxTableEntries:
		return fmt.Errorf("routing: Config.MaxEntries must be 1 to %d, got %d", maxTableEntries, c.MaxEntries)
	case c.EntryTTL <= 0:
		return fmt.Errorf("routing: Config.EntryTTL must be positive, got %v", c.EntryTTL)
	case c.HintTTL <= 0:
		return fmt.Errorf("routing: Config.HintTTL must be positive, got %v", c.HintTTL)
	case c.MaxViewNodes <= 0:
		return fmt.Errorf("routing: Config.MaxViewNodes must be positive, got %d", c.MaxViewNodes)
	case c.SourceRate <= 0 || c.SourceBurst <= 0:
		return fmt.Errorf("routing: Config.SourceRate and SourceBurst must be positive, got %v and %d", c.SourceRate, c.SourceBurst)
	case c.MaxSources <= 0:
		return fmt.Errorf("routing: Config.MaxSources must be positive, got %d", c.MaxSources)
	case c.MaxQueue <= 0:
		return fmt.Errorf("routing: Config.MaxQueue must be positive, got %d", c.MaxQueue)
	}
	return nil
}

// ErrNoRoute is returned by Send when no route to the target is known: the runtime falls back
// to the signaling server.
var ErrNoRoute = errors.New("routing: no route known")

// ErrInvalidMessage wraps every error Step returns for a malformed message.
var ErrInvalidMessage = errors.New("routing: invalid message")

// Drop says why a relay dropped an envelope (Stats.Dropped index).
type Drop uint8

const (
	// DropNoRoute: neither a route nor a hint for the target (or the waypoint) was known.
	DropNoRoute Drop = iota
	// DropHopLimit: the envelope arrived with no hops left.
	DropHopLimit
	// DropRate: its source was over SourceRate.
	DropRate
	// DropQueue: Ready's queue was full (MaxQueue).
	DropQueue
	// DropLoop: this node's own envelope came back to it (relays' routes disagreed). Not
	// an error: honest relays with stale routes cause it.
	DropLoop
	numDrops
)

// Stats are a Router's counters.
type Stats struct {
	// Sent counts envelopes this node sent, Forwarded those it relayed, Delivered those for
	// this node.
	Sent, Forwarded, Delivered uint64
	// Dropped counts relayed envelopes dropped, by reason (index with a Drop).
	Dropped [numDrops]uint64
	// NoRoute counts Send calls that found no route.
	NoRoute uint64
	// Invalid counts messages Step refused.
	Invalid uint64
	// Entries and Hints are the table's current sizes.
	Entries, Hints int
}

// Ready is what the driver must do: send Messages (in order) to neighbours, and hand
// Deliveries (envelopes whose target is this node, not yet verified) to the runtime.
type Ready struct {
	Messages   []Envelope
	Deliveries []Message
}

// entry is one learnt route (hint false: target through neighbour via, hops away) or one
// hint (hint true: via knows target).
type entry struct {
	target, via string
	hops        uint8
	hint        bool
	at          time.Duration
}

// neighbour is one active peer and the active view it last announced. viewFilter has
// filterBit(key(v, false)) set for every v in view, so that nextHop skips, without touching
// the view's strings (a cache miss each in a large simulation), the neighbours whose view
// cannot hold the target.
type neighbour struct {
	id         string
	view       []string
	viewFilter uint64
}

// filterBit is the viewFilter bit of a node whose key is k: one of 64, by k's top 6 bits.
func filterBit(k uint32) uint64 { return 1 << (k >> 26) }

// bucket is a source's token bucket: tokens at time at.
type bucket struct {
	source string
	tokens float64
	at     time.Duration
}

// Router is one node's routing state. Not safe for concurrent use: one goroutine (the
// driver) owns it, through overlay.Peer.
type Router struct {
	cfg        Config
	self       string
	neighbours []neighbour
	// entries are the routes and hints (a free slot has no target); next is the slot the
	// next entry replaces once the table is full (first in, first out). index is an
	// open-addressing hash table over the slots (linear probing, a power of two at least
	// twice MaxEntries; a cell holds 16 bits of the entry's key and slot+1, 0 when empty),
	// so that a lookup reads a cell or two instead of scanning the table, and compares
	// strings only when the cell's bits match.
	entries    []entry
	index      []uint32
	indexShift uint8 // 32 - log2(len(index)), for home
	next       int
	buckets    []bucket
	out        Ready
	viewDirty  bool
	stats      Stats
}

// New returns a Router for node self.
func New(self string, cfg Config) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if self == "" {
		return nil, errors.New("routing: self is required")
	}
	return &Router{cfg: cfg, self: self}, nil
}

// Enabled reports whether the router routes at all.
func (r *Router) Enabled() bool { return r.cfg.Enabled }

// MaxHops is the hop limit this node gives its own envelopes.
func (r *Router) MaxHops() uint8 { return r.cfg.MaxHops }

// NeighborUp records a new neighbour; every neighbour hears the new active view in the next
// Ready.
func (r *Router) NeighborUp(peer string) {
	if !r.cfg.Enabled || peer == r.self || r.neighbourIndex(peer) >= 0 {
		return
	}
	r.neighbours = append(r.neighbours, neighbour{id: peer})
	r.viewDirty = true
}

// NeighborDown forgets a neighbour, its view and every route through it.
func (r *Router) NeighborDown(peer string) {
	i := r.neighbourIndex(peer)
	if i < 0 {
		return
	}
	r.neighbours = append(r.neighbours[:i], r.neighbours[i+1:]...)
	for k := range r.entries {
		if e := &r.entries[k]; !e.hint && e.via == peer && e.target != "" {
			r.unindex(k)
			*e = entry{} // a free slot
		}
	}
	r.viewDirty = true
}

func (r *Router) neighbourIndex(peer string) int {
	for i := range r.neighbours {
		if r.neighbours[i].id == peer {
			return i
		}
	}
	return -1
}

// Learn records a reverse path: target is reachable through neighbour via, hops away, as of
// now. A fresher path replaces an older one; a path through a non-neighbour is ignored.
func (r *Router) Learn(now time.Duration, target, via string, hops uint8) {
	if !r.cfg.Enabled || target == "" || target == r.self || target == via || r.neighbourIndex(via) < 0 {
		return
	}
	r.put(entry{target: target, via: via, hops: hops, at: now})
}

// Hint records that node via knows target (target was in via's views), as of now.
func (r *Router) Hint(now time.Duration, target, via string) {
	if !r.cfg.Enabled || target == "" || via == "" || target == r.self || target == via || via == r.self {
		return
	}
	r.put(entry{target: target, via: via, hint: true, at: now})
}

// key hashes an entry's target and kind (FNV-1a).
func key(target string, hint bool) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(target); i++ {
		h = (h ^ uint32(target[i])) * 16777619
	}
	if hint {
		h = (h ^ 0xff) * 16777619
	}
	return h
}

// tagOf is the part of key k an index cell keeps (its top 16 bits).
func tagOf(k uint32) uint32 { return k >> 16 }

// maxTableEntries bounds MaxEntries: an index cell holds a slot in 16 bits.
const maxTableEntries = 1<<16 - 1

// find returns the slot of the entry of target and kind, or -1.
func (r *Router) find(target string, hint bool) int {
	return r.findKey(key(target, hint), target, hint)
}

// findKey is find with target's key already computed.
func (r *Router) findKey(k uint32, target string, hint bool) int {
	if len(r.index) == 0 {
		return -1
	}
	tag, mask := tagOf(k), uint32(len(r.index)-1)
	for pos := r.home(tag); ; pos = (pos + 1) & mask {
		cell := r.index[pos]
		if cell == 0 {
			return -1
		}
		if cell>>16 != tag {
			continue
		}
		if i := int(cell&0xffff) - 1; r.entries[i].target == target && r.entries[i].hint == hint {
			return i
		}
	}
}

// home is the first cell in index for an entry of tag tag: the top bits of a Fibonacci hash.
func (r *Router) home(tag uint32) uint32 { return (tag * 2654435769) >> r.indexShift }

// indexSlot adds slot i, which holds an entry of key k, to index, creating index on first use.
func (r *Router) indexSlot(i int, k uint32) {
	if len(r.index) == 0 {
		size, bits := 16, uint8(4)
		for size < 2*r.cfg.MaxEntries {
			size, bits = size*2, bits+1
		}
		r.index, r.indexShift = make([]uint32, size), 32-bits
	}
	tag, mask := tagOf(k), uint32(len(r.index)-1)
	pos := r.home(tag)
	for r.index[pos] != 0 {
		pos = (pos + 1) & mask
	}
	r.index[pos] = tag<<16 | uint32(i+1)
}

// unindex removes slot i (still holding its entry) from index, moving later cells of the same
// probe run back so that no lookup stops short at the hole (backward-shift deletion).
func (r *Router) unindex(i int) {
	e := &r.entries[i]
	tag, mask := tagOf(key(e.target, e.hint)), uint32(len(r.index)-1)
	cell := tag<<16 | uint32(i+1)
	pos := r.home(tag)
	for r.index[pos] != cell {
		pos = (pos + 1) & mask
	}
	hole := pos
	for j := (hole + 1) & mask; r.index[j] != 0; j = (j + 1) & mask {
		home := r.home(r.index[j] >> 16)
		// The cell at j may move to the hole unless its home lies cyclically in (hole, j].
		if (j > hole && (home <= hole || home > j)) || (j < hole && home <= hole && home > j) {
			r.index[hole] = r.index[j]
			hole = j
		}
	}
	r.index[hole] = 0
}

// put replaces the entry of the same target and kind, or adds e, replacing the entry added
// longest ago when the table is full.
func (r *Router) put(e entry) {
	k := key(e.target, e.hint)
	if i := r.findKey(k, e.target, e.hint); i >= 0 {
		r.entries[i] = e
		return
	}
	if len(r.entries) < r.cfg.MaxEntries {
		r.entries = append(r.entries, e)
		r.indexSlot(len(r.entries)-1, k)
		return
	}
	i := r.next
	if r.entries[i].target != "" {
		r.unindex(i)
	}
	r.entries[i] = e
	r.indexSlot(i, k)
	r.next = (r.next + 1) % len(r.entries)
}

// nextHop returns the neighbour to send an envelope for target to, and the path's length,
// from the neighbours, their views and the learnt routes (not the hints). except is never
// chosen (the neighbour an envelope came from).
func (r *Router) nextHop(now time.Duration, target, except string) (string, bool) {
	if r.neighbourIndex(target) >= 0 {
		return target, target != except
	}
	k := key(target, false)
	bit := filterBit(k)
	for i := range r.neighbours {
		n := &r.neighbours[i]
		if n.viewFilter&bit == 0 || n.id == except {
			continue
		}
		for _, v := range n.view {
			if v == target {
				return n.id, true
			}
		}
	}
	if i := r.findKey(k, target, false); i >= 0 {
		e := &r.entries[i]
		if e.via != except && now-e.at < r.cfg.EntryTTL && r.neighbourIndex(e.via) >= 0 {
			return e.via, true
		}
	}
	return "", false
}

// hint returns a fresh hint's waypoint for target, one this node can route to.
func (r *Router) hint(now time.Duration, target, except string) (via, next string, ok bool) {
	if i := r.find(target, true); i >= 0 {
		e := &r.entries[i]
		if now-e.at < r.cfg.HintTTL {
			if next, ok := r.nextHop(now, e.via, except); ok {
				return e.via, next, true
			}
		}
	}
	return "", "", false
}

// Known reports whether an envelope for target would leave this node now (a route, or a hint
// whose waypoint is routable): the runtime asks before it prefers the overlay to the server.
func (r *Router) Known(now time.Duration, target string) bool {
	if !r.cfg.Enabled {
		return false
	}
	if _, ok := r.nextHop(now, target, ""); ok {
		return true
	}
	_, _, ok := r.hint(now, target, "")
	return ok
}

// NextHop returns the neighbour an envelope of this node's for target would be sent to now,
// without sending anything: the runtime checks that the link to it is up before it prefers
// the overlay to the server.
func (r *Router) NextHop(now time.Duration, target string) (string, bool) {
	if !r.cfg.Enabled {
		return "", false
	}
	m := Message{Type: Routed, Source: r.self, Target: target, HopLimit: r.cfg.MaxHops}
	next, deliver, _, ok := r.decide(now, "", &m)
	return next, ok && !deliver
}

// decide is the routing decision for m at this node, arrived from neighbour from ("" for
// this node's own envelope): deliver it, or forward it to next (with m's Via and HopLimit
// updated), or drop it.
func (r *Router) decide(now time.Duration, from string, m *Message) (next string, deliver bool, drop Drop, ok bool) {
	if m.Target == r.self {
		return "", true, 0, true
	}
	if from != "" && m.Source == r.self {
		return "", false, DropLoop, false
	}
	if from != "" {
		if m.HopLimit == 0 {
			return "", false, DropHopLimit, false
		}
		if !r.allow(now, m.Source) {
			return "", false, DropRate, false
		}
		m.HopLimit--
	}
	waypoint := m.Via == r.self
	if waypoint {
		m.Via = ""
	}
	if next, ok := r.nextHop(now, m.Target, from); ok {
		return next, false, 0, true
	}
	if m.Via != "" {
		if next, ok := r.nextHop(now, m.Via, from); ok {
			return next, false, 0, true
		}
	}
	// Only the source and the waypoint an envelope was sent to turn a hint into a (new)
	// waypoint, at most MaxWaypoints times per envelope. A waypoint often knows the target
	// only as a passive entry, from a sample of its own, so a second waypoint reaches
	// passive entries of passive entries; but two nodes that traded shuffle samples hold
	// hints about each other's entries, and without the bound an envelope would bounce
	// between them until its hop limit.
	if (from == "" || waypoint) && m.Waypoints < r.cfg.MaxWaypoints {
		if via, next, ok := r.hint(now, m.Target, from); ok {
			m.Via = via
			m.Waypoints++
			return next, false, 0, true
		}
	}
	return "", false, DropNoRoute, false
}

// Send routes an envelope of this node's (m.Source must be this node; Type is set to Routed
// and HopLimit to MaxHops). It returns ErrNoRoute when no route is known: nothing is queued
// and the runtime uses the server.
func (r *Router) Send(now time.Duration, m Message) error {
	if !r.cfg.Enabled {
		return ErrNoRoute
	}
	if m.Source != r.self {
		return fmt.Errorf("routing: Send: source %q is not this node", m.Source)
	}
	m.Type, m.HopLimit, m.Via, m.Waypoints = Routed, r.cfg.MaxHops, "", 0
	next, deliver, _, ok := r.decide(now, "", &m)
	switch {
	case deliver:
		return fmt.Errorf("routing: Send: target %q is this node", m.Target)
	case !ok:
		r.stats.NoRoute++
		return ErrNoRoute
	case !r.queue(next, m):
		return fmt.Errorf("routing: Send: queue full (MaxQueue %d)", r.cfg.MaxQueue)
	}
	r.stats.Sent++
	return nil
}

// queue adds an envelope to Ready unless the queue is full.
func (r *Router) queue(to string, m Message) bool {
	if len(r.out.Messages)+len(r.out.Deliveries) >= r.cfg.MaxQueue {
		r.stats.Dropped[DropQueue]++
		return false
	}
	r.out.Messages = append(r.out.Messages, Envelope{To: to, Msg: m})
	return true
}

// Step handles a routing message from neighbour from: a VIEW is stored; a ROUTED envelope
// teaches the reverse path to its source, then is delivered (target is this node), forwarded
// or dropped. Only malformed messages return an error (wrapping ErrInvalidMessage); drops are
// counted in Stats.
func (r *Router) Step(now time.Duration, from string, m Message) error {
	if !r.cfg.Enabled {
		return nil
	}
	if err := r.check(from, &m); err != nil {
		r.stats.Invalid++
		return err
	}
	switch m.Type {
	case View:
		i := r.neighbourIndex(from)
		if i < 0 {
			return nil // a view from a non-neighbour gives no route: it came over a transient link
		}
		n := &r.neighbours[i]
		n.view = append(n.view[:0], m.Nodes...)
		n.viewFilter = 0
		for _, v := range n.view {
			n.viewFilter |= filterBit(key(v, false))
		}
	case Routed:
		if hops := r.cfg.MaxHops; m.HopLimit < hops {
			r.Learn(now, m.Source, from, hops-m.HopLimit)
		} else {
			r.Learn(now, m.Source, from, 1)
		}
		next, deliver, drop, ok := r.RelayStep(now, from, &m)
		switch {
		case deliver:
			if len(r.out.Messages)+len(r.out.Deliveries) >= r.cfg.MaxQueue {
				r.stats.Dropped[DropQueue]++
				return nil
			}
			r.out.Deliveries = append(r.out.Deliveries, m)
		case ok:
			if r.queue(next, m) {
				r.stats.Forwarded++
			}
		default:
			_ = drop // counted by RelayStep
		}
	}
	return nil
}

// RelayStep is the decision Step carries out for a ROUTED envelope that arrived from
// neighbour from, without queueing anything: deliver it here, forward it (updated) to next,
// or drop it (counted). The simulator calls it hop by hop to follow a signal's route through
// the relays' own tables.
func (r *Router) RelayStep(now time.Duration, from string, m *Message) (next string, deliver bool, drop Drop, ok bool) {
	next, deliver, drop, ok = r.decide(now, from, m)
	switch {
	case deliver:
		r.stats.Delivered++
	case !ok:
		r.stats.Dropped[drop]++
	}
	return next, deliver, drop, ok
}

func (r *Router) check(from string, m *Message) error {
	switch m.Type {
	case View:
		if len(m.Nodes) > r.cfg.MaxViewNodes {
			return fmt.Errorf("%w: VIEW from %q has %d nodes, more than MaxViewNodes (%d)",
				ErrInvalidMessage, from, len(m.Nodes), r.cfg.MaxViewNodes)
		}
	case Routed:
		switch {
		case m.Source == "" || m.Target == "":
			return fmt.Errorf("%w: ROUTED from %q without source or target", ErrInvalidMessage, from)
		case !m.Kind.Valid():
			return fmt.Errorf("%w: ROUTED from %q has unknown kind %d", ErrInvalidMessage, from, uint8(m.Kind))
		case m.HopLimit > r.cfg.MaxHops:
			return fmt.Errorf("%w: ROUTED from %q has hop limit %d, more than MaxHops (%d)",
				ErrInvalidMessage, from, m.HopLimit, r.cfg.MaxHops)
		case m.Waypoints > r.cfg.MaxWaypoints:
			return fmt.Errorf("%w: ROUTED from %q has %d waypoints, more than MaxWaypoints (%d)",
				ErrInvalidMessage, from, m.Waypoints, r.cfg.MaxWaypoints)
		}
	default:
		return fmt.Errorf("%w: unknown type %d from %q", ErrInvalidMessage, uint8(m.Type), from)
	}
	return nil
}

// allow takes a token from source's bucket.
func (r *Router) allow(now time.Duration, source string) bool {
	idx := -1
	for i := range r.buckets {
		if r.buckets[i].source == source {
			idx = i
			break
		}
	}
	burst := float64(r.cfg.SourceBurst)
	if idx < 0 {
		if len(r.buckets) >= r.cfg.MaxSources {
			// The bucket quiet longest is the fullest: forgetting it costs its source nothing
			// it would not have regained.
			oldest := 0
			for i := range r.buckets {
				if r.buckets[i].at < r.buckets[oldest].at {
					oldest = i
				}
			}
			r.buckets[oldest] = bucket{source: source, tokens: burst, at: now}
			idx = oldest
		} else {
			r.buckets = append(r.buckets, bucket{source: source, tokens: burst, at: now})
			idx = len(r.buckets) - 1
		}
	}
	b := &r.buckets[idx]
	if now > b.at {
		b.tokens = min(burst, b.tokens+r.cfg.SourceRate*(now-b.at).Seconds())
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// HasReady reports whether Ready has anything to return.
func (r *Router) HasReady() bool {
	return r.viewDirty || len(r.out.Messages) > 0 || len(r.out.Deliveries) > 0
}

// Ready returns the envelopes to send and the deliveries, first a VIEW to every neighbour if
// the active view changed since the last Ready. The slices belong to the caller.
func (r *Router) Ready() Ready {
	rd := r.out
	r.out = Ready{}
	if r.viewDirty {
		r.viewDirty = false
		view := make([]string, len(r.neighbours))
		for i := range r.neighbours {
			view[i] = r.neighbours[i].id
		}
		views := make([]Envelope, 0, len(r.neighbours)+len(rd.Messages))
		for _, n := range r.neighbours {
			views = append(views, Envelope{To: n.id, Msg: Message{Type: View, Nodes: view}})
		}
		rd.Messages = append(views, rd.Messages...)
	}
	return rd
}

// Stats returns the counters and the table's sizes.
func (r *Router) Stats() Stats {
	s := r.stats
	for _, e := range r.entries {
		switch {
		case e.target == "":
		case e.hint:
			s.Hints++
		default:
			s.Entries++
		}
	}
	return s
}
