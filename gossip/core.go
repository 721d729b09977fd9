package gossip

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Core is one node's Plumtree state machine. It is not safe for concurrent use: one goroutine
// (the runtime's event loop, or the simulator) owns it and calls NeighborUp, NeighborDown,
// Broadcast, Step and Tick, then Ready.
//
// Rules the paper leaves open, as implemented here:
//
//   - Neighbours: only peers reported by NeighborUp are ever eager or lazy, and the core sends
//     only to them. A Gossip from any other peer (a link that is still being set up) is
//     delivered and forwarded as usual, but it never changes the peer sets and a duplicate
//     from such a peer is not answered with Prune; IHave, Graft, Prune and the catch-up
//     messages from a non-neighbour are accepted (they count in Stats.Received) and otherwise
//     ignored.
//   - Missing messages: announcers are grafted in the order their IHaves arrived; the first
//     Graft goes out MissingTimeout after the first announcement, each next one
//     GraftRetryTimeout after the previous Graft; when every announcer has been tried the entry
//     is dropped (a later IHave starts over). When MissingMaxIDs messages are already tracked,
//     announcements of further messages are ignored until entries resolve or expire.
//   - Peers that announced a message to us are sent neither its payload nor an announcement
//     of it: they have it.
//   - A payload, once passed to Broadcast or Step, is kept by reference (cache, deliveries,
//     forwarded messages) and must not be modified by the caller afterwards; so is a proof
//     passed to Step or returned by Config.Auth's Sign.
//   - Signed broadcasts: a Gossip is delivered and forwarded only after these checks, in this
//     order: well formed (else Step's error); a message ID already seen is a duplicate as in
//     the paper (nothing else is looked at: it is neither delivered nor forwarded, and the
//     Prune it may cause is what any duplicate causes); then it is refused if it claims this
//     node as origin (this node's own broadcasts coming back were caught as duplicates just
//     before, and that Prune is how the tree forms around an origin), if its Time is off by
//     more than MaxClockSkew, if its sequence number was delivered already or is too old
//     (see originState), and if Config.Auth does not verify it. Only then is its sequence
//     number remembered, and it is delivered, cached and forwarded with its Seq, Time and
//     Proof unchanged. The cheap checks go first so that most garbage costs no signature
//     check. A refusal is not an error of Step (an honest relay can forward a message that
//     is a replay or too old for this node, and the runtime closes a link on an error): it
//     is counted in Stats and reported in Ready.Misbehaviour for peer scoring to weigh.
//   - Catch-up (see catchup.go) runs beside the tree: a History is checked as a Gossip is,
//     except that it may be this node's own message from before a restart, and it is
//     delivered with Delivery.History set but never forwarded or answered with Prune. Any
//     message whose Time is older than the larger of MaxClockSkew and CatchUpWindow is refused
//     for its clock.
//   - Defences against hostile neighbours (see limits.go): forwarding budgets per link and per
//     origin, missing entries capped per announcer, Graft budgets, broken promises reported,
//     the cache and the seen set bounded in bytes. Each is off at 0 (DisableDefences).
//   - Cache, seen-set, history and pull expiry produce no output, so NextDeadline does not
//     report them; they happen on Tick, which is the only call that advances the core's time, so no lookup ever
//     sees an expired entry.
//
// The optimisation (OptimizationThreshold = t > 0) compares the hop count R at which a message
// arrived as Gossip from eager peer p with the hop count a announced by lazy neighbour q ≠ p
// (the hops at which q received it). Through q the payload would have arrived at a+1 hops. If
// R − (a+1) ≥ t, the core sends Graft with a zero ID to q and Prune to p and makes q eager and p
// lazy, so the tree uses the shorter path from then on. This is the paper's rule (Algorithm 3:
// the IHave's round, which counts the lazy link, is a+1; the Gossip's round is R; the swap
// happens when round_gossip − round_ihave ≥ threshold). The paper checks it when the payload
// arrives against IHaves received before it; this core also checks it when an IHave arrives
// for a message already received from an eager peer, because IHaves are batched and often
// arrive after the payload. Each message triggers at most one swap, and only while p is still
// eager and q still lazy, and, with OptimizationQuiet set, while no other message may be in
// flight through this node (a swap races them: see Config.OptimizationQuiet).
type Core struct {
	cfg Config
	// now is the time of the last Tick.
	now time.Duration

	// eager and lazy are the paper's eagerPushPeers and lazyPushPeers, kept sorted so that
	// output never depends on map order. Together they are the neighbours.
	eager []string
	lazy  []string

	// seen is the paper's receivedMsgs, bounded by SeenMaxIDs and SeenMaxAge through seenQ.
	// Every key has exactly one record in seenQ.
	seen  map[MessageID]struct{}
	seenQ fifo

	// cache holds payloads to answer Grafts, bounded by CacheMaxMessages and CacheMaxAge
	// through cacheQ. Every key has exactly one record in cacheQ. Unused in Flood mode.
	cache      map[MessageID]*cachedMessage
	cacheQ     fifo
	cacheBytes int

	// missing is the paper's missing set, one entry per message, with its timer in timers.
	missing  map[MessageID]*missingEntry
	timers   timerHeap
	timerSeq uint64
	// announced counts, per peer, the missing entries it is an announcer of and its
	// promises waiting to be judged (MissingMaxPerPeer).
	announced map[string]int
	// lastID is the message delivered last (from a peer), at lastAt; prevAt is when the one
	// before it was: how the optimisation tells whether another message may be in flight
	// (OptimizationQuiet).
	lastID         MessageID
	lastAt, prevAt time.Duration

	// linkLimits are the forwarding budgets per neighbour ("" for all other senders);
	// graftsOut the budget of Grafts sent; graftsIn the budgets of Grafts answered, per
	// neighbour. See limits.go.
	linkLimits map[string]*limiter
	graftsOut  bucket
	graftsIn   map[string]*bucket
	// promises are the grafted announcers whose payload had not come by GraftRetryTimeout,
	// each with the time it is judged (PromiseTimeout after its Graft); promiseQ holds them
	// in that order. See limits.go.
	promises map[promiseKey]time.Duration
	promiseQ []promise

	// pending holds announcements waiting for a lazy peer's next IHave, one queue per peer,
	// ordered by the time of each queue's first announcement (which is deadline order).
	pending []lazyQueue

	// seq is the sequence number of this node's last broadcast.
	seq uint64
	// origins tracks other origins' sequence numbers (see originState), at most MaxOrigins,
	// linked from the most to the least recently heard.
	origins                  map[string]*originState
	originsHead, originsTail *originState

	// history is the catch-up store, sorted by (origin time, ID), from historyHead on, with
	// historyBytes of payloads and proofs; see catchup.go.
	history      []historyEntry
	historyHead  int
	historyBytes int
	// pulls are the messages asked for by Pull and not yet received, with the time they were
	// last asked for (see pull); pullQ expires them in that order.
	pulls map[MessageID]time.Duration
	pullQ fifo
	// pullBatches are the Pulls sent and not yet judged, oldest first (see unansweredPulls).
	pullBatches []pullBatch
	// catchUpPeers holds each neighbour's answer budget.
	catchUpPeers map[string]*peerCatchUp
	// syncAt is when the next periodic Digest goes to the neighbour after syncTurn; soonAt
	// when the Digests to soonPeers go, which spread what was caught up on.
	syncArmed bool
	syncAt    time.Duration
	syncTurn  int
	soonArmed bool
	soonAt    time.Duration
	soonPeers []string
	// unsent holds this node's broadcasts made while it had no neighbour.
	unsent []Message
	// watches is what the silence check knows of each neighbour; heardEarly the last few
	// senders that were not neighbours yet, heardNext the slot overwritten next (hello.go).
	watches    []neighborWatch
	heardEarly []heardPeer
	heardNext  int

	out   Ready
	stats Stats
}

// cachedMessage is a payload kept to answer Grafts.
type cachedMessage struct {
	origin  string
	seq     uint64
	time    int64
	payload []byte
	proof   []byte
	// hops is the hop count at which this node received the message (0 for its own).
	hops uint16
	// parent is the eager peer the payload came from, a candidate for the optimisation's
	// Prune; empty for the node's own messages, payloads from non-neighbours, and once the
	// optimisation has acted for this message.
	parent string
	// history is set while the message is known only by catch-up (a History): the first
	// Gossip for it is then the tree's copy, not a duplicate (see onGossip).
	history bool
}

// lazyQueue is the announcements waiting for one lazy peer.
type lazyQueue struct {
	peer  string
	first time.Duration
	anns  []Announcement
}

// New returns a core for cfg, or an error naming every invalid field.
func New(cfg Config) (*Core, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("gossip: invalid config: %w", err)
	}
	return &Core{cfg: cfg}, nil
}

func (cfg *Config) validate() error {
	var errs []error
	if cfg.Self == "" {
		errs = append(errs, errors.New("Self is empty"))
	}
	if cfg.Rand == nil {
		errs = append(errs, errors.New("Rand is nil"))
	}
	positive := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", name, v))
		}
	}
	positiveDur := func(name string, v time.Duration) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %v", name, v))
		}
	}
	positive("LazyBatchMax", cfg.LazyBatchMax)
	positive("CacheMaxMessages", cfg.CacheMaxMessages)
	positiveDur("CacheMaxAge", cfg.CacheMaxAge)
	positive("SeenMaxIDs", cfg.SeenMaxIDs)
	positiveDur("SeenMaxAge", cfg.SeenMaxAge)
	positive("MissingMaxIDs", cfg.MissingMaxIDs)
	positive("MissingMaxAnnouncers", cfg.MissingMaxAnnouncers)
	positive("MaxPayload", cfg.MaxPayload)
	if cfg.LazyFlushInterval < 0 {
		errs = append(errs, fmt.Errorf("LazyFlushInterval must not be negative, got %v", cfg.LazyFlushInterval))
	}
	if cfg.OptimizationThreshold < 0 {
		errs = append(errs, fmt.Errorf("OptimizationThreshold must not be negative, got %d", cfg.OptimizationThreshold))
	}
	if cfg.OptimizationQuiet < 0 {
		errs = append(errs, fmt.Errorf("OptimizationQuiet must not be negative, got %v", cfg.OptimizationQuiet))
	}
	positiveDur("MaxClockSkew", cfg.MaxClockSkew)
	if cfg.ReplayWindow <= 0 || cfg.ReplayWindow%64 != 0 {
		errs = append(errs, fmt.Errorf("ReplayWindow must be a positive multiple of 64, got %d", cfg.ReplayWindow))
	}
	positive("MaxOrigins", cfg.MaxOrigins)
	positive("MaxMisbehaviourReports", cfg.MaxMisbehaviourReports)
	if cfg.CatchUpWindow < 0 {
		errs = append(errs, fmt.Errorf("CatchUpWindow must not be negative, got %v", cfg.CatchUpWindow))
	}
	if cfg.MaxClockSkew > 0 && cfg.SeenMaxAge > 0 && cfg.CatchUpWindow >= 0 && cfg.maxAge()+cfg.MaxClockSkew >= cfg.SeenMaxAge {
		errs = append(errs, fmt.Errorf("MaxClockSkew (%v) plus the oldest age accepted (the larger of MaxClockSkew and CatchUpWindow, %v) must be below SeenMaxAge (%v), or a replay could outlive its ID in the seen set and still be on time",
			cfg.MaxClockSkew, cfg.maxAge(), cfg.SeenMaxAge))
	}
	if cfg.CatchUpWindow > 0 {
		errs = append(errs, cfg.validateCatchUp()...)
	}
	positive("MaxUnsent", cfg.MaxUnsent)
	errs = append(errs, cfg.validateDefences()...)
	errs = append(errs, cfg.validateHello()...)
	// Flood mode never arms a timer, so its timeouts do not matter.
	if !cfg.Flood {
		positiveDur("MissingTimeout", cfg.MissingTimeout)
		positiveDur("GraftRetryTimeout", cfg.GraftRetryTimeout)
		if cfg.GraftRetryTimeout > 0 && cfg.MissingTimeout > 0 && cfg.GraftRetryTimeout >= cfg.MissingTimeout {
			errs = append(errs, fmt.Errorf("GraftRetryTimeout (%v) must be shorter than MissingTimeout (%v)",
				cfg.GraftRetryTimeout, cfg.MissingTimeout))
		}
	}
	return errors.Join(errs...)
}

// NeighborUp makes peer, which membership just added to its active view, an eager peer.
// A peer that is already a neighbour, the empty ID and the node itself are ignored.
func (c *Core) NeighborUp(peer string) {
	if peer == "" || peer == c.cfg.Self || c.isNeighbor(peer) {
		return
	}
	c.eager = insertSorted(c.eager, peer)
	c.flushUnsent(peer)
	c.catchUpNeighborUp(peer)
	c.helloUp(peer)
}

// NeighborDown forgets peer, which membership just removed from its active view: it leaves
// the eager and lazy sets, is no longer a candidate for any missing message's Graft, and the
// announcements queued for it are dropped.
func (c *Core) NeighborDown(peer string) {
	c.eager = removeSorted(c.eager, peer)
	c.lazy = removeSorted(c.lazy, peer)
	c.catchUpNeighborDown(peer)
	c.helloDown(peer)
	delete(c.linkLimits, peer)
	delete(c.graftsIn, peer)
	for i := range c.pending {
		if c.pending[i].peer == peer {
			c.pending = slices.Delete(c.pending, i, i+1)
			break
		}
	}
	// Map order does not matter here: removals produce no output, and timers fire in
	// (deadline, seq) order whatever the heap's layout.
	for id, e := range c.missing {
		e.removeAnnouncer(peer)
		if len(e.announcers) == 0 {
			c.dropMissing(id, e)
		}
	}
	delete(c.announced, peer)
}

// Broadcast starts a broadcast of payload from this node: it gets the next sequence number
// and the time of the last Tick, is signed by Config.Auth if set, delivered locally at once
// (Hops 0), pushed to the eager peers and announced to the lazy ones. It returns the new
// message's ID. If Auth fails to sign, nothing is sent and the sequence number is not used.
// Made while the node has no neighbour, it is kept (Config.MaxUnsent) and pushed to the next
// neighbour, which forwards it as any broadcast; it is in the catch-up history either way.
func (c *Core) Broadcast(payload []byte) (MessageID, error) {
	if len(payload) > c.cfg.MaxPayload {
		return MessageID{}, fmt.Errorf("gossip: broadcast payload of %d bytes exceeds MaxPayload %d", len(payload), c.cfg.MaxPayload)
	}
	m := Message{Type: Gossip, ID: c.newID(), Origin: c.cfg.Self, Hops: 1, Seq: c.seq + 1, Time: c.nowMillis(), Payload: payload}
	if c.cfg.Auth != nil {
		sm := m // see onGossip: only the copy given to the Authenticator escapes
		proof, err := c.cfg.Auth.Sign(&sm)
		if err != nil {
			return MessageID{}, fmt.Errorf("gossip: sign broadcast: %w", err)
		}
		m.Proof = proof
	}
	c.seq = m.Seq
	id := m.ID
	c.remember(id)
	c.stats.Broadcasts++
	c.out.Deliveries = append(c.out.Deliveries, Delivery{ID: id, Origin: c.cfg.Self, Hops: 0, Seq: m.Seq, Time: m.Time, Payload: payload})
	c.store(&m, 0, "")
	c.keep(&m, 0)
	if len(c.eager)+len(c.lazy) == 0 {
		c.holdUnsent(m)
	}
	for _, p := range c.eager {
		c.send(p, m)
	}
	if !c.cfg.Flood {
		for _, p := range c.lazy {
			c.announce(p, Announcement{ID: id, Hops: 0})
		}
	}
	return id, nil
}

// newID draws a fresh message ID. The zero ID means "none" in a Graft and an ID this node
// still remembers would be dropped as a duplicate, so both are drawn again.
func (c *Core) newID() MessageID {
	for {
		var id MessageID
		putUint64(id[:8], c.cfg.Rand.Uint64())
		putUint64(id[8:], c.cfg.Rand.Uint64())
		if _, dup := c.seen[id]; id != (MessageID{}) && !dup {
			return id
		}
	}
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// Step processes message m received from peer from. A message that breaks the protocol's
// rules is refused with an error, leaves the state unchanged and counts in
// Stats.InvalidMessages; the driver may disconnect the peer. A well-formed Gossip that fails
// the signed-broadcast checks (see Core) is not an error: it is dropped, counted
// (Stats.Refused…) and reported in Ready.Misbehaviour.
func (c *Core) Step(from string, m Message) error {
	if err := c.check(from, m); err != nil {
		c.stats.InvalidMessages++
		return fmt.Errorf("gossip: invalid %v from %q: %w", m.Type, from, err)
	}
	c.stats.Received[m.Type]++
	c.heard(from)
	switch m.Type {
	case Gossip:
		c.onGossip(from, m)
	case IHave:
		c.onIHave(from, m)
	case Graft:
		c.onGraft(from, m)
	case Prune:
		c.onPrune(from)
	case Digest:
		c.onDigest(from, m)
	case Have:
		c.onHave(from, m)
	case Pull:
		c.onPull(from, m)
	case History:
		c.onHistory(from, m)
	}
	return nil
}

func (c *Core) check(from string, m Message) error {
	switch {
	case from == "":
		return errors.New("empty sender")
	case from == c.cfg.Self:
		return errors.New("sender is this node")
	case !m.Type.Valid():
		return fmt.Errorf("unknown message type %d", uint8(m.Type))
	}
	switch m.Type {
	case Gossip, History:
		switch {
		case m.ID == MessageID{}:
			return errors.New("zero message ID")
		case m.Origin == "":
			return errors.New("empty origin")
		case m.Hops == 0:
			return errors.New("hop count 0 (the origin sends 1)")
		case len(m.Payload) > c.cfg.MaxPayload:
			return fmt.Errorf("payload of %d bytes exceeds MaxPayload %d", len(m.Payload), c.cfg.MaxPayload)
		case m.Seq == 0:
			return errors.New("sequence number 0 (origins number from 1)")
		}
	case Digest, Have, Pull:
		if err := c.checkCatchUp(&m); err != nil {
			return err
		}
	case IHave:
		if len(m.IHave) == 0 {
			return errors.New("empty announcement batch")
		}
		if len(m.IHave) > c.cfg.LazyBatchMax {
			return fmt.Errorf("%d announcements exceed LazyBatchMax %d", len(m.IHave), c.cfg.LazyBatchMax)
		}
		for i, a := range m.IHave {
			if a.ID == (MessageID{}) {
				return fmt.Errorf("announcement %d has a zero message ID", i)
			}
		}
	}
	return nil
}

// onGossip handles a payload (the paper's GOSSIP).
func (c *Core) onGossip(from string, m Message) {
	neighbor := c.isNeighbor(from)
	c.keepPromise(from, m.ID)
	if _, dup := c.seen[m.ID]; dup {
		c.stats.Duplicates++
		if cm := c.cache[m.ID]; cm != nil && cm.history {
			// The tree's copy of a message this node fetched by catch-up first: catch-up
			// raced the tree, and must not shape it. The link is not pruned, and the message
			// goes on down the tree as if this copy had come first.
			cm.history = false
			c.forwardTree(from, neighbor, &m, nil)
			return
		}
		// The payload reached us twice, so the link it came on is redundant: demote it. The
		// sender demotes us in turn when it receives the Prune, so the link stays symmetric.
		if !c.cfg.Flood && neighbor {
			c.moveToLazy(from)
			c.send(from, Message{Type: Prune})
		}
		return
	}
	if c.admit(from, &m, false, true) != 0 {
		return
	}

	c.remember(m.ID)
	c.stats.Delivered++
	c.lastID, c.lastAt, c.prevAt = m.ID, c.now, c.lastAt
	c.out.Deliveries = append(c.out.Deliveries, Delivery{ID: m.ID, Origin: m.Origin, Hops: m.Hops, Seq: m.Seq, Time: m.Time, Payload: m.Payload,
		From: from})

	// The message is no longer missing: stop its timer, but keep the announcers for the
	// optimisation and to skip announcing back to them.
	entry := c.missing[m.ID]
	if entry != nil {
		c.dropMissing(m.ID, entry)
	}
	c.store(&m, m.Hops, "")
	c.keep(&m, m.Hops)
	parent := c.forwardTree(from, neighbor, &m, entry)

	// The paper's optimisation, for announcements that came before the payload: take the
	// announcer that is still lazy and offered the fewest hops.
	if entry != nil && parent != "" && c.cfg.OptimizationThreshold > 0 {
		best := -1
		for i, a := range entry.announcers {
			if a.peer != from && c.isLazy(a.peer) && (best < 0 || a.hops < entry.announcers[best].hops) {
				best = i
			}
		}
		if best >= 0 {
			c.optimize(m.ID, m.Hops, entry.announcers[best])
		}
	}
}

// forwardTree makes neighbour from the message's parent in the tree (eager, and recorded in
// the cache for the optimisation) and forwards m, received from it, as received (Seq, Time and
// Proof are the origin's) one hop further: pushed to the eager peers, announced to the lazy
// ones. A peer that announced the message has it already (possibly an announcer that was
// grafted and so is eager now): it gets neither the payload nor an announcement. It returns
// the parent ("" when from is not a neighbour).
func (c *Core) forwardTree(from string, neighbor bool, m *Message, entry *missingEntry) string {
	parent := ""
	if neighbor {
		parent = from
		if !c.cfg.Flood {
			c.moveToEager(from)
		}
		if cm := c.cache[m.ID]; cm != nil {
			cm.parent = parent
		}
	}
	fwd := *m
	fwd.Hops = addHop(fwd.Hops)
	for _, p := range c.eager {
		if p != from && (entry == nil || !entry.announcedBy(p)) {
			c.send(p, fwd)
		}
	}
	if c.cfg.Flood {
		return parent
	}
	for _, p := range c.lazy {
		if p != from && (entry == nil || !entry.announcedBy(p)) {
			c.announce(p, Announcement{ID: m.ID, Hops: m.Hops})
		}
	}
	return parent
}

// admit runs the signed-broadcast checks on a new Gossip or History m (see Core) and records
// its sequence number if it passes; a message that fails is refused and reported, and admit
// returns why (0 when it passed). ownOld admits a History of this node's own from before a
// restart, whose numbers it does not track. live is set for a Gossip, which spends the link's
// and the origin's forwarding budgets (a History was asked for, and has budgets of its own).
func (c *Core) admit(from string, m *Message, ownOld, live bool) Refusal {
	if m.Origin == c.cfg.Self && !ownOld {
		c.refuse(from, m, RefusedSelfOrigin, nil)
		return RefusedSelfOrigin
	}
	// Compared without subtracting from m.Time, which a peer chooses and could overflow.
	now, skew, oldest := c.nowMillis(), c.cfg.MaxClockSkew.Milliseconds(), c.cfg.maxAge().Milliseconds()
	if m.Time > now+skew || m.Time < now-oldest {
		c.refuse(from, m, RefusedClock, nil)
		return RefusedClock
	}
	var st *originState
	verdict := seqNew
	if !ownOld {
		st = c.origins[m.Origin]
		verdict = c.checkSeq(st, m)
		if verdict == seqReplay {
			c.refuse(from, m, RefusedReplay, nil)
			return RefusedReplay
		}
	}
	size := messageBytes(m)
	var link *limiter
	if live {
		link = c.linkLimiter(from)
		if !link.allows(c.now, c.cfg.linkLimit(), size) {
			c.refuse(from, m, RefusedLinkRate, nil)
			return RefusedLinkRate
		}
		// The link pays for every signature check it causes, forged or not.
		link.spend(c.cfg.linkLimit(), size)
	}
	if err := c.verify(m); err != nil {
		c.refuse(from, m, RefusedSignature, err)
		return RefusedSignature
	}
	if live {
		// The origin is charged only for what verified: a forger cannot spend its budget.
		if st != nil && !st.limit.allows(c.now, c.cfg.originLimit(), size) {
			c.refuse(from, m, RefusedOriginRate, nil)
			return RefusedOriginRate
		}
	}
	if !ownOld {
		c.acceptSeq(st, m, verdict)
		if live {
			st = c.origins[m.Origin]
			st.limit.allows(c.now, c.cfg.originLimit(), size) // refill a new state's clock
			st.limit.spend(c.cfg.originLimit(), size)
		}
	}
	return 0
}

// verify checks m's proof with Config.Auth (nil: unsigned, nothing to check).
func (c *Core) verify(m *Message) error {
	if c.cfg.Auth == nil {
		return nil
	}
	// A copy for the Authenticator, which the compiler must assume keeps it: m itself then
	// stays on the caller's stack, and the duplicate path allocates nothing.
	vm := *m
	return c.cfg.Auth.Verify(&vm)
}

// optimize applies the optimisation for message id, received at hops from its cached parent,
// against an announcement by lazy peer q; see Core.
func (c *Core) optimize(id MessageID, hops uint16, q announcer) {
	cm := c.cache[id]
	if cm == nil || cm.parent == "" || cm.parent == q.peer || !c.isEager(cm.parent) || !c.isLazy(q.peer) {
		return
	}
	if int(hops)-(int(q.hops)+1) < c.cfg.OptimizationThreshold {
		return
	}
	if c.cfg.OptimizationQuiet > 0 {
		// Swap only while no other message may be in flight: none delivered within
		// OptimizationQuiet and none announced but missing. A swap races every message in
		// flight through the two links (see Config.OptimizationQuiet).
		other := c.lastAt
		if c.lastID == id {
			other = c.prevAt
		}
		if (other != 0 && c.now-other < c.cfg.OptimizationQuiet) || len(c.missing) > 0 {
			return
		}
	}
	old := cm.parent
	cm.parent = ""
	c.moveToEager(q.peer)
	c.send(q.peer, Message{Type: Graft})
	c.moveToLazy(old)
	c.send(old, Message{Type: Prune})
}

// onIHave handles a batch of announcements (the paper's IHAVE).
func (c *Core) onIHave(from string, m Message) {
	if c.cfg.Flood || !c.isNeighbor(from) {
		return
	}
	excess := 0
	for _, a := range m.IHave {
		if _, received := c.seen[a.ID]; received {
			if c.cfg.OptimizationThreshold > 0 {
				if cm := c.cache[a.ID]; cm != nil {
					c.optimize(a.ID, cm.hops, announcer{peer: from, hops: a.Hops})
				}
			}
			continue
		}
		e := c.missing[a.ID]
		if c.cfg.MissingMaxPerPeer > 0 && c.announced[from] >= c.cfg.MissingMaxPerPeer && (e == nil || !e.announcedBy(from)) {
			excess++
			continue
		}
		if e == nil {
			if len(c.missing) >= c.cfg.MissingMaxIDs {
				continue
			}
			e = &missingEntry{id: a.ID}
			if c.missing == nil {
				c.missing = make(map[MessageID]*missingEntry)
			}
			c.missing[a.ID] = e
			c.arm(e, c.cfg.MissingTimeout)
			c.timers.push(e)
		}
		if len(e.announcers) < c.cfg.MissingMaxAnnouncers && !e.announcedBy(from) {
			e.announcers = append(e.announcers, announcer{peer: from, hops: a.Hops})
			c.countAnnouncer(from)
		}
	}
	if excess > 0 {
		c.stats.IHaveExcess += uint64(excess)
		c.report(Misbehaviour{Peer: from, Reason: ExcessIHave})
	}
}

// onGraft handles a Graft: the sender wants to be in the tree again, and the message with
// the Graft's ID if it has one.
func (c *Core) onGraft(from string, m Message) {
	if !c.isNeighbor(from) {
		return
	}
	if !c.cfg.Flood {
		c.moveToEager(from)
	}
	if m.ID == (MessageID{}) {
		return
	}
	if cm := c.cache[m.ID]; cm != nil {
		if c.cfg.GraftAnswerRate > 0 {
			if c.graftsIn == nil {
				c.graftsIn = make(map[string]*bucket)
			}
			b := c.graftsIn[from]
			if b == nil {
				b = &bucket{}
				c.graftsIn[from] = b
			}
			if !b.take(c.now, float64(c.cfg.GraftAnswerRate), float64(c.cfg.GraftAnswerBurst), 1) {
				c.stats.GraftsRefused++
				c.report(Misbehaviour{Peer: from, Reason: ExcessGraft, ID: m.ID})
				return
			}
		}
		c.send(from, Message{Type: Gossip, ID: m.ID, Origin: cm.origin, Hops: addHop(cm.hops), Seq: cm.seq, Time: cm.time,
			Payload: cm.payload, Proof: cm.proof})
	}
}

// onPrune handles a Prune: the sender received a payload twice and no longer wants payloads
// from this node.
func (c *Core) onPrune(from string) {
	if c.cfg.Flood || !c.isNeighbor(from) {
		return
	}
	c.moveToLazy(from)
}

// Tick advances the core's time to now (a driver's monotonic clock; earlier values are
// ignored) and fires what is due: missing-message timers (Grafts), lazy IHave flushes, cache
// and seen-set expiry. When nothing is due it only compares a few deadlines.
func (c *Core) Tick(now time.Duration) {
	if now > c.now {
		c.now = now
	}
	c.expire()
	c.judgePromises()
	c.tickHello()
	c.tickCatchUp()
	for len(c.timers) > 0 && c.timers[0].deadline <= c.now {
		c.fire(c.timers[0])
	}
	for len(c.pending) > 0 && c.pending[0].first+c.cfg.LazyFlushInterval <= c.now {
		c.flush(0)
	}
}

// fire handles the expiry of a missing message's timer: Graft the next announcer and wait
// GraftRetryTimeout for the payload, or give up when every announcer has been tried.
func (c *Core) fire(e *missingEntry) {
	if e.grafted != "" {
		// The announcer grafted last did not send the payload in time, nor did anyone else:
		// the next announcer is tried, and this one judged later (awaitPromise).
		c.awaitPromise(e.grafted, e.id)
		e.grafted = ""
	}
	if e.next >= len(e.announcers) {
		c.dropMissing(e.id, e)
		return
	}
	if !c.graftsOut.take(c.now, float64(c.cfg.GraftRate), float64(c.cfg.GraftBurst), 1) {
		// Over the Graft budget: try again later rather than send.
		c.stats.GraftsThrottled++
		c.arm(e, c.cfg.GraftRetryTimeout)
		c.timers.fix(e.index)
		return
	}
	a := e.announcers[e.next]
	e.next++
	e.grafted = a.peer
	c.moveToEager(a.peer)
	c.send(a.peer, Message{Type: Graft, ID: e.id})
	c.arm(e, c.cfg.GraftRetryTimeout)
	c.timers.fix(e.index)
}

func (c *Core) arm(e *missingEntry, after time.Duration) {
	e.deadline = c.now + after
	c.timerSeq++
	e.seq = c.timerSeq
}

func (c *Core) dropMissing(id MessageID, e *missingEntry) {
	c.timers.remove(e)
	delete(c.missing, id)
	for _, a := range e.announcers {
		c.uncountAnnouncer(a.peer)
	}
}

// NextDeadline returns the earliest time at which Tick has something to send (a Graft or a
// batched IHave), so that a discrete-event driver can wake the core exactly then. It returns
// false when no such timer is armed. Expiry of cached payloads and seen IDs produces no
// output and is not reported: it catches up on whatever Tick comes next.
func (c *Core) NextDeadline() (time.Duration, bool) {
	var at time.Duration
	ok := false
	if len(c.timers) > 0 {
		at, ok = c.timers[0].deadline, true
	}
	if len(c.pending) > 0 {
		if d := c.pending[0].first + c.cfg.LazyFlushInterval; !ok || d < at {
			at, ok = d, true
		}
	}
	if d, armed := c.catchUpDeadline(); armed && (!ok || d < at) {
		at, ok = d, true
	}
	if d, armed := c.helloDeadline(); armed && (!ok || d < at) {
		at, ok = d, true
	}
	return at, ok
}

// Ready returns what the driver must do now and clears it.
func (c *Core) Ready() Ready {
	rd := c.out
	c.out = Ready{}
	return rd
}

// HasReady reports whether Ready would return anything.
func (c *Core) HasReady() bool { return !c.out.Empty() }

// EagerPeers returns the eager peers, sorted. The slice is a copy.
func (c *Core) EagerPeers() []string { return slices.Clone(c.eager) }

// LazyPeers returns the lazy peers, sorted. The slice is a copy.
func (c *Core) LazyPeers() []string { return slices.Clone(c.lazy) }

// Stats returns the core's counters and gauges.
func (c *Core) Stats() Stats {
	s := c.stats
	s.EagerPeers = len(c.eager)
	s.LazyPeers = len(c.lazy)
	s.CachedMessages = len(c.cache)
	s.SeenIDs = len(c.seen)
	s.PendingMissing = len(c.missing)
	s.Origins = len(c.origins)
	s.HistoryMessages, s.HistoryBytes = c.historyLen(), c.historyBytes
	s.PendingPulls = len(c.pulls)
	s.Unsent = len(c.unsent)
	s.CacheBytes = c.cacheBytes
	s.SeenBytes = len(c.seen) * seenEntryBytes
	return s
}

// remember adds id to the seen set, evicting the oldest ID when the set is full.
func (c *Core) remember(id MessageID) {
	if c.seen == nil {
		c.seen = make(map[MessageID]struct{})
	}
	for limit := c.cfg.seenCap(); len(c.seen) >= limit; {
		delete(c.seen, c.seenQ.pop().id)
	}
	c.seen[id] = struct{}{}
	c.seenQ.push(stamped{id: id, at: c.now})
}

// refuse drops Gossip m from peer from for reason: it is counted and reported, nothing else.
func (c *Core) refuse(from string, m *Message, reason Refusal, err error) {
	switch reason {
	case RefusedSelfOrigin:
		c.stats.RefusedSelfOrigin++
	case RefusedClock:
		c.stats.RefusedClock++
	case RefusedReplay:
		c.stats.RefusedReplay++
	case RefusedSignature:
		c.stats.RefusedSignature++
	case RefusedLinkRate:
		c.stats.RefusedLinkRate++
	case RefusedOriginRate:
		c.stats.RefusedOriginRate++
	}
	c.report(Misbehaviour{Peer: from, Reason: reason, ID: m.ID, Origin: m.Origin, Err: err})
}

// store caches Gossip m, received at hops (0 for this node's own), to answer Grafts,
// evicting the oldest when the cache is full. Flood mode answers no Grafts and caches nothing.
func (c *Core) store(m *Message, hops uint16, parent string) {
	if c.cfg.Flood {
		return
	}
	id := m.ID
	entry := cachedMessage{origin: m.Origin, seq: m.Seq, time: m.Time, payload: m.Payload, proof: m.Proof, hops: hops, parent: parent}
	size := messageBytes(m)
	if cm := c.cache[id]; cm != nil {
		// Only possible when the seen set forgot the ID before the cache did and the message
		// was delivered again: refresh the entry but keep its single queue record.
		c.cacheBytes += size - (len(cm.payload) + len(cm.proof))
		*cm = entry
		return
	}
	if c.cache == nil {
		c.cache = make(map[MessageID]*cachedMessage)
	}
	for len(c.cache) > 0 && (len(c.cache) >= c.cfg.CacheMaxMessages || (c.cfg.CacheMaxBytes > 0 && c.cacheBytes+size > c.cfg.CacheMaxBytes)) {
		c.uncache(c.cacheQ.pop().id)
	}
	c.cacheBytes += size
	c.cache[id] = &entry
	c.cacheQ.push(stamped{id: id, at: c.now})
}

// expire drops seen IDs and cached payloads that reached their maximum age.
func (c *Core) expire() {
	for c.seenQ.len() > 0 && c.seenQ.front().at+c.cfg.SeenMaxAge <= c.now {
		delete(c.seen, c.seenQ.pop().id)
	}
	for c.cacheQ.len() > 0 && c.cacheQ.front().at+c.cfg.CacheMaxAge <= c.now {
		c.uncache(c.cacheQ.pop().id)
	}
}

// uncache drops id from the cache (its queue record is already gone).
func (c *Core) uncache(id MessageID) {
	if cm := c.cache[id]; cm != nil {
		c.cacheBytes -= len(cm.payload) + len(cm.proof)
		delete(c.cache, id)
	}
}

// announce queues an announcement for lazy peer p, sending the batch when it is full or when
// announcements are not batched at all.
func (c *Core) announce(p string, a Announcement) {
	if c.cfg.LazyFlushInterval == 0 {
		c.send(p, Message{Type: IHave, IHave: []Announcement{a}})
		return
	}
	i := slices.IndexFunc(c.pending, func(q lazyQueue) bool { return q.peer == p })
	if i < 0 {
		c.pending = append(c.pending, lazyQueue{peer: p, first: c.now})
		i = len(c.pending) - 1
	}
	c.pending[i].anns = append(c.pending[i].anns, a)
	if len(c.pending[i].anns) >= c.cfg.LazyBatchMax {
		c.flush(i)
	}
}

// flush sends the i-th pending queue as one IHave.
func (c *Core) flush(i int) {
	q := c.pending[i]
	c.pending = slices.Delete(c.pending, i, i+1)
	c.send(q.peer, Message{Type: IHave, IHave: q.anns})
}

func (c *Core) send(to string, m Message) {
	c.stats.Sent[m.Type]++
	c.sentTo(to)
	c.out.Messages = append(c.out.Messages, Envelope{To: to, Msg: m})
}

func (c *Core) isNeighbor(p string) bool { return c.isEager(p) || c.isLazy(p) }

func (c *Core) isEager(p string) bool {
	_, ok := slices.BinarySearch(c.eager, p)
	return ok
}

func (c *Core) isLazy(p string) bool {
	_, ok := slices.BinarySearch(c.lazy, p)
	return ok
}

// moveToEager makes neighbour p eager. Callers ensure p is a neighbour.
func (c *Core) moveToEager(p string) {
	c.lazy = removeSorted(c.lazy, p)
	c.eager = insertSorted(c.eager, p)
}

// moveToLazy makes neighbour p lazy. Callers ensure p is a neighbour.
func (c *Core) moveToLazy(p string) {
	c.eager = removeSorted(c.eager, p)
	c.lazy = insertSorted(c.lazy, p)
}

func insertSorted(s []string, p string) []string {
	i, found := slices.BinarySearch(s, p)
	if found {
		return s
	}
	return slices.Insert(s, i, p)
}

func removeSorted(s []string, p string) []string {
	i, found := slices.BinarySearch(s, p)
	if !found {
		return s
	}
	return slices.Delete(s, i, i+1)
}
