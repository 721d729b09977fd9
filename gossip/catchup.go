package gossip

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Catch-up (anti-entropy): Plumtree delivers a broadcast while the tree is connected, and
// nothing delivers it to a node that was paused, cut off or not yet there. Catch-up closes
// that gap with what every core keeps anyway, its history of recent messages ordered by
// origin time, and four messages between neighbours:
//
//   - Digest: A sends B, for a range of origin times, how many messages it holds and the sum
//     of their fingerprints under a fresh salt. Periodically (Config.CatchUpInterval, to one
//     neighbour in turn), on every new link (from its end with the smaller ID: late joiners,
//     rejoiners, healed partitions), and to every neighbour shortly after it caught up on
//     something itself. The range leaves out the messages still being broadcast (Config.CatchUpSettle) and the oldest
//     interval of the window, which the two ends may already have dropped at slightly
//     different times. At rest, the summaries match and the exchange ends there.
//   - When B's summary differs, B answers with a Have, listing its messages in the range by
//     (time, ID); or, when that list would be long, with a detailed Digest that splits the
//     range in Config.CatchUpSpans spans, which A answers the same way: a Have for the oldest
//     spans that differ, or a Digest that splits the oldest one further.
//   - The receiver of a Have pulls (Pull) what it has not delivered, and answers with a Have
//     marked Reply that lists what it holds in those spans and the other lacks, which the
//     other pulls in turn. Both ends end up with the union.
//   - A Pull is answered with History messages: the payloads, signed by their origins as
//     Gossip is, delivered with Delivery.History set and not forwarded through the tree.
//
// A Pull that the peer answers none of, although it listed the messages itself, is reported
// (UnansweredPull): the catch-up counterpart of a broken promise.
//
// Bounds: the history by age, count and bytes; the Refs of one message; the pulls pending
// (and the Pulls awaiting judgement, by the same CatchUpMaxPulls); and
// what a node sends in answer to one neighbour, by a token bucket in bytes per neighbour, so a
// peer cannot turn a small Digest into a large answer faster than Config.CatchUpPeerRate.
// Only neighbours take part; a History that answers no Pull of this node is ignored before its
// signature is checked.

// historyEntry is one message kept for catch-up.
type historyEntry struct {
	time    int64
	id      MessageID
	seq     uint64
	origin  string
	payload []byte
	proof   []byte
	// hops is the hop count at which this node received the message (0 for its own).
	hops uint16
}

// peerCatchUp is the catch-up state of one neighbour: its answer budget (a token bucket in
// bytes, refilled at Config.CatchUpPeerRate up to Config.CatchUpPeerBurst).
type peerCatchUp struct {
	tokens float64
	at     time.Duration
	// answered says a History from the peer answered a Pull of this node, last at
	// answeredAt (see unansweredPulls).
	answered   bool
	answeredAt time.Duration
	// digested says a Digest from the peer arrived since it became a neighbour: the first
	// one is its link-up Digest (see catchUpNeighborUp).
	digested bool
}

// maxAge is the oldest origin time, relative to now, that any message may have.
func (cfg *Config) maxAge() time.Duration { return max(cfg.MaxClockSkew, cfg.CatchUpWindow) }

func (cfg *Config) validateCatchUp() []error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{
		{"CatchUpMaxMessages", cfg.CatchUpMaxMessages}, {"CatchUpMaxBytes", cfg.CatchUpMaxBytes},
		{"CatchUpSpans", cfg.CatchUpSpans}, {"CatchUpMaxRefs", cfg.CatchUpMaxRefs},
		{"CatchUpPeerRate", cfg.CatchUpPeerRate}, {"CatchUpPeerBurst", cfg.CatchUpPeerBurst},
		{"CatchUpMaxPulls", cfg.CatchUpMaxPulls},
	} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive when CatchUpWindow is set, got %d", f.name, f.v))
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"CatchUpInterval", cfg.CatchUpInterval}, {"CatchUpPullTimeout", cfg.CatchUpPullTimeout},
	} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive when CatchUpWindow is set, got %v", f.name, f.v))
		}
	}
	if cfg.CatchUpSettle < 0 {
		errs = append(errs, fmt.Errorf("CatchUpSettle must not be negative, got %v", cfg.CatchUpSettle))
	}
	if cfg.CatchUpSettle+cfg.CatchUpInterval >= cfg.CatchUpWindow {
		errs = append(errs, fmt.Errorf("CatchUpSettle (%v) plus CatchUpInterval (%v) must be shorter than CatchUpWindow (%v), or no Digest covers anything",
			cfg.CatchUpSettle, cfg.CatchUpInterval, cfg.CatchUpWindow))
	}
	if need := historySize(cfg.MaxPayload, 128); cfg.CatchUpPeerBurst > 0 && cfg.CatchUpPeerBurst < need {
		errs = append(errs, fmt.Errorf("CatchUpPeerBurst (%d) must hold a History of MaxPayload bytes (%d)", cfg.CatchUpPeerBurst, need))
	}
	return errs
}

// catchUp reports whether catch-up is on.
func (c *Core) catchUp() bool { return c.cfg.CatchUpWindow > 0 }

// windowStart is the oldest origin time (ms) kept in the history.
func (c *Core) windowStart() int64 { return c.nowMillis() - c.cfg.CatchUpWindow.Milliseconds() }

// ---- history ----

// keep adds an accepted message to the history, if catch-up is on and it is recent enough,
// and drops the oldest messages beyond the count and byte bounds.
func (c *Core) keep(m *Message, hops uint16) {
	if !c.catchUp() || m.Time < c.windowStart() {
		return
	}
	e := historyEntry{time: m.Time, id: m.ID, seq: m.Seq, origin: m.Origin, payload: m.Payload, proof: m.Proof, hops: hops}
	live := c.history[c.historyHead:]
	i, found := slices.BinarySearchFunc(live, e, compareEntry)
	if found {
		return
	}
	if i == len(live) {
		c.history = append(c.history, e)
	} else {
		c.history = slices.Insert(c.history, c.historyHead+i, e)
	}
	c.historyBytes += len(e.payload) + len(e.proof)
	for c.historyLen() > c.cfg.CatchUpMaxMessages || c.historyBytes > c.cfg.CatchUpMaxBytes {
		c.dropOldest()
	}
}

func compareEntry(a, b historyEntry) int {
	switch {
	case a.time < b.time:
		return -1
	case a.time > b.time:
		return 1
	}
	return compareIDs(a.id, b.id)
}

func compareRef(e historyEntry, r MessageRef) int {
	switch {
	case e.time < r.Time:
		return -1
	case e.time > r.Time:
		return 1
	}
	return compareIDs(e.id, r.ID)
}

func compareIDs(a, b MessageID) int {
	for k := range a {
		if a[k] != b[k] {
			if a[k] < b[k] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func (c *Core) historyLen() int { return len(c.history) - c.historyHead }

// dropOldest removes the oldest history entry, compacting the slice when most of it is dead.
func (c *Core) dropOldest() {
	e := &c.history[c.historyHead]
	c.historyBytes -= len(e.payload) + len(e.proof)
	*e = historyEntry{}
	c.historyHead++
	switch {
	case c.historyHead == len(c.history):
		c.history, c.historyHead = c.history[:0], 0
	case c.historyHead >= 32 && c.historyHead*2 >= len(c.history):
		n := copy(c.history, c.history[c.historyHead:])
		clear(c.history[n:])
		c.history, c.historyHead = c.history[:n], 0
	}
}

// expireHistory drops what left the window, and the pulls that timed out.
func (c *Core) expireHistory() {
	start := c.windowStart()
	for c.historyLen() > 0 && c.history[c.historyHead].time < start {
		c.dropOldest()
	}
	c.unansweredPulls()
	for c.pullQ.len() > 0 && c.pullQ.front().at <= c.now {
		r := c.pullQ.pop()
		// A pull asked again since has a later record of its own.
		if asked, ok := c.pulls[r.id]; ok && asked+2*c.cfg.CatchUpPullTimeout <= c.now {
			delete(c.pulls, r.id)
		}
	}
}

// entries returns the history entries with origin time in [from, to).
func (c *Core) entries(from, to int64) []historyEntry {
	live := c.history[c.historyHead:]
	lo, _ := slices.BinarySearchFunc(live, from, func(e historyEntry, t int64) int { return cmpInt(e.time, t) })
	hi, _ := slices.BinarySearchFunc(live[lo:], to, func(e historyEntry, t int64) int { return cmpInt(e.time, t) })
	return live[lo : lo+hi]
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// find returns the history entry ref names, or nil.
func (c *Core) find(ref MessageRef) *historyEntry {
	live := c.history[c.historyHead:]
	i, found := slices.BinarySearchFunc(live, ref, compareRef)
	if !found {
		return nil
	}
	return &live[i]
}

// fingerprint is a message's contribution to a span's Hash under salt: a keyed mix of its
// ID, so that IDs a peer chose cannot cancel out under a salt it did not know.
func fingerprint(salt uint64, id MessageID) uint64 {
	lo, hi := uint64(0), uint64(0)
	for k := range 8 {
		lo = lo<<8 | uint64(id[k])
		hi = hi<<8 | uint64(id[8+k])
	}
	return mix64(mix64(lo^salt) ^ hi)
}

// mix64 is splitmix64's finaliser, a bijective 64-bit mix.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// summarize fills the Count and Hash of each of spans (consecutive, increasing) from this
// node's history, under salt.
func (c *Core) summarize(spans []Span, salt uint64) {
	for i := range spans {
		spans[i].Count, spans[i].Hash = 0, 0
	}
	if len(spans) == 0 {
		return
	}
	k := 0
	for _, e := range c.entries(spans[0].From, spans[len(spans)-1].To) {
		for k < len(spans)-1 && e.time >= spans[k].To {
			k++
		}
		if e.time < spans[k].From || e.time >= spans[k].To {
			continue // in a gap between spans
		}
		spans[k].Count++
		spans[k].Hash += fingerprint(salt, e.id)
	}
}

// ---- Digest ----

// digestRange is the range of origin times a Digest sent now covers: from one interval into
// the window, which both ends still hold even if their clocks differ a little, to
// CatchUpSettle ago.
func (c *Core) digestRange() (from, to int64) {
	now := c.nowMillis()
	return now - (c.cfg.CatchUpWindow - c.cfg.CatchUpInterval).Milliseconds(), now - c.cfg.CatchUpSettle.Milliseconds()
}

// sendDigest sends peer a summary Digest of the whole range.
func (c *Core) sendDigest(peer string) {
	from, to := c.digestRange()
	m := Message{Type: Digest, Salt: c.salt(), Spans: []Span{{From: from, To: to}}}
	c.summarize(m.Spans, m.Salt)
	c.send(peer, m)
}

// salt draws a Digest's salt: never 0, which marks a hello (IsHello).
func (c *Core) salt() uint64 {
	for {
		if v := c.cfg.Rand.Uint64(); v != 0 {
			return v
		}
	}
}

// onDigest compares a neighbour's Digest with this node's history and answers when they
// differ. It lists its messages in a Have for as many of the spans that differ, from the
// oldest, as fit in a quarter of CatchUpMaxRefs; when even the first one holds more, it
// answers with a detailed Digest that splits that span in CatchUpSpans, and the exchange
// narrows down from there (range-based reconciliation). Each exchange settles the oldest
// difference first; the Digests that follow what it caught up on settle the rest.
func (c *Core) onDigest(from string, m Message) {
	if !c.catchUp() || !c.isNeighbor(from) {
		return
	}
	if st := c.peerCatchUp(from); !st.digested {
		st.digested = true
		if c.cfg.Self < from {
			// The larger end's link-up Digest: ours, sent at the same time, starts the one
			// exchange that reconciles both ways; answering this one too would list every
			// difference twice. It still served as the peer's hello.
			return
		}
	}
	if !c.affordable(from, 64) {
		return // not even a short answer is in the budget: do not spend the work
	}
	own := slices.Clone(m.Spans)
	c.summarize(own, m.Salt)
	var differ []Span
	listed, limit := 0, max(c.cfg.CatchUpMaxRefs/4, 1)
	for i, s := range own {
		if s.Count == m.Spans[i].Count && s.Hash == m.Spans[i].Hash {
			continue
		}
		if len(differ) > 0 && listed+int(s.Count) > limit {
			break
		}
		if len(differ) == 0 && int(s.Count) > limit && s.To-s.From > 1 && c.cfg.CatchUpSpans > 1 {
			d := Message{Type: Digest, Salt: c.salt(), Spans: splitSpan(Span{From: s.From, To: s.To}, c.cfg.CatchUpSpans)}
			c.summarize(d.Spans, d.Salt)
			c.answer(from, d)
			return
		}
		differ = append(differ, Span{From: s.From, To: s.To})
		listed += int(s.Count)
	}
	if len(differ) > 0 {
		c.answer(from, c.have(differ, nil))
	}
}

// splitSpan cuts s into at most n consecutive spans of (nearly) equal length.
func splitSpan(s Span, n int) []Span {
	width := s.To - s.From
	if int64(n) > width {
		n = int(max(width, 1))
	}
	spans := make([]Span, n)
	for i := range n {
		spans[i] = Span{From: s.From + width*int64(i)/int64(n), To: s.From + width*int64(i+1)/int64(n)}
	}
	spans[n-1].To = s.To
	return spans
}

// have builds a Have of this node's messages in spans, leaving out those in skip (sorted by
// time and ID; then it is a Reply). At most CatchUpMaxRefs are listed: spans are cut where the
// list ends, so a Have never claims a span it does not list in full.
func (c *Core) have(spans []Span, skip []MessageRef) Message {
	m := Message{Type: Have, Reply: skip != nil}
	k := 0
	for _, s := range spans {
		cut := s
		cut.Count = 0
		full := false
		for _, e := range c.entries(s.From, s.To) {
			for k < len(skip) && compareRef(e, skip[k]) > 0 {
				k++
			}
			if k < len(skip) && compareRef(e, skip[k]) == 0 {
				continue
			}
			if len(m.Refs) == c.cfg.CatchUpMaxRefs {
				full = true
				cut.To = e.time
				// Entries of the same time as the first left out may be listed already: take
				// them back, so the span's list is complete.
				for len(m.Refs) > 0 && m.Refs[len(m.Refs)-1].Time == e.time {
					m.Refs = m.Refs[:len(m.Refs)-1]
					cut.Count--
				}
				break
			}
			m.Refs = append(m.Refs, MessageRef{Time: e.time, ID: e.id})
			cut.Count++
		}
		if cut.To > cut.From {
			m.Spans = append(m.Spans, cut)
		}
		if full {
			break
		}
	}
	return m
}

// ---- Have ----

// onHave pulls what a neighbour's Have lists and this node has not delivered, and, unless it
// is a Reply, answers with what this node holds in the same spans that the neighbour lacks.
func (c *Core) onHave(from string, m Message) {
	if !c.catchUp() || !c.isNeighbor(from) {
		return
	}
	c.pull(from, m.Refs)
	if m.Reply {
		return
	}
	theirs := slices.Clone(m.Refs)
	slices.SortFunc(theirs, func(a, b MessageRef) int {
		if d := cmpInt(a.Time, b.Time); d != 0 {
			return d
		}
		return compareIDs(a.ID, b.ID)
	})
	if theirs == nil {
		theirs = []MessageRef{} // non-nil: the answer is a Reply
	}
	reply := c.have(m.Spans, theirs)
	if len(reply.Refs) > 0 {
		c.answer(from, reply)
	}
}

// pull asks peer for the messages of refs this node has not delivered and is not already
// asking someone for (within CatchUpPullTimeout), that are inside its window and not from its
// future. An answer is still taken for twice the timeout, so that a slow answer (a peer that
// verifies slowly, a busy link) is not wasted; only then is the pull forgotten.
func (c *Core) pull(peer string, refs []MessageRef) {
	start := c.windowStart()
	latest := c.nowMillis() + c.cfg.MaxClockSkew.Milliseconds()
	var want []MessageRef
	for _, r := range refs {
		if r.Time < start || r.Time > latest || r.ID == (MessageID{}) {
			continue
		}
		if _, seen := c.seen[r.ID]; seen {
			continue
		}
		asked, pending := c.pulls[r.ID]
		switch {
		case pending && c.now < asked+c.cfg.CatchUpPullTimeout:
			continue // someone is being asked
		case !pending && len(c.pulls) >= c.cfg.CatchUpMaxPulls:
			continue
		}
		if c.pulls == nil {
			c.pulls = make(map[MessageID]time.Duration)
		}
		c.pulls[r.ID] = c.now
		c.pullQ.push(stamped{id: r.ID, at: c.now + 2*c.cfg.CatchUpPullTimeout})
		want = append(want, r)
	}
	if len(want) > 0 {
		c.send(peer, Message{Type: Pull, Refs: want})
		c.notePull(peer, want)
	}
}

// pullBatch is one Pull sent: to whom, when, what, and whether any History answered it.
type pullBatch struct {
	peer     string
	at       time.Duration
	ids      []MessageID
	answered bool
}

// notePull remembers a Pull until it is answered or judged. Batches are bounded by
// CatchUpMaxPulls, like the pulls themselves: beyond it the oldest is forgotten unjudged.
func (c *Core) notePull(peer string, refs []MessageRef) {
	if len(c.pullBatches) >= c.cfg.CatchUpMaxPulls {
		c.pullBatches[0] = pullBatch{}
		c.pullBatches = c.pullBatches[1:]
	}
	b := pullBatch{peer: peer, at: c.now, ids: make([]MessageID, len(refs))}
	for i, r := range refs {
		b.ids[i] = r.ID
	}
	c.pullBatches = append(c.pullBatches, b)
}

// pullAnswered marks the Pulls to from that asked for id as answered, and notes that from
// answers.
func (c *Core) pullAnswered(from string, id MessageID) {
	st := c.peerCatchUp(from)
	st.answered, st.answeredAt = true, c.now
	for i := range c.pullBatches {
		if b := &c.pullBatches[i]; !b.answered && b.peer == from && slices.Contains(b.ids, id) {
			b.answered = true
		}
	}
}

// unansweredPulls judges the Pulls older than twice CatchUpPullTimeout (as long as an answer
// is taken): one no History answered at all, to a peer still a neighbour that has answered
// no other Pull since this one was sent either, is reported (UnansweredPull). An honest
// neighbour answers what it listed itself, unless its answer budget (CatchUpPeerRate) is
// spent, as under a flood of large broadcasts; it then still answers some Pulls, which
// clears the others. A dropper answers none.
func (c *Core) unansweredPulls() {
	n := 0
	for n < len(c.pullBatches) && c.pullBatches[n].at+2*c.cfg.CatchUpPullTimeout <= c.now {
		b := &c.pullBatches[n]
		st := c.catchUpPeers[b.peer]
		answers := st != nil && st.answered && st.answeredAt >= b.at
		if !b.answered && !answers && c.isNeighbor(b.peer) {
			c.stats.UnansweredPulls++
			c.report(Misbehaviour{Peer: b.peer, Reason: UnansweredPull, ID: b.ids[0]})
		}
		n++
	}
	if n > 0 {
		k := copy(c.pullBatches, c.pullBatches[n:])
		clear(c.pullBatches[k:])
		c.pullBatches = c.pullBatches[:k]
	}
}

// ---- Pull and History ----

// onPull answers a neighbour's Pull with the messages it names that this node holds, as far
// as the neighbour's budget goes.
func (c *Core) onPull(from string, m Message) {
	if !c.catchUp() || !c.isNeighbor(from) {
		return
	}
	for _, r := range m.Refs {
		e := c.find(r)
		if e == nil {
			continue
		}
		h := Message{Type: History, ID: e.id, Origin: e.origin, Hops: addHop(e.hops), Seq: e.seq, Time: e.time,
			Payload: e.payload, Proof: e.proof}
		if !c.answer(from, h) {
			return
		}
	}
}

// onHistory delivers a message that answers this node's Pull, after the same checks as a
// Gossip, and has every neighbour compared with soon: the others, so that what it caught up
// on spreads; and the sender, for what one exchange did not settle. A History nobody asked
// for is ignored.
func (c *Core) onHistory(from string, m Message) {
	if _, asked := c.pulls[m.ID]; !asked || !c.isNeighbor(from) {
		return
	}
	delete(c.pulls, m.ID)
	c.pullAnswered(from, m.ID)
	if _, dup := c.seen[m.ID]; dup {
		c.stats.HistoryDuplicates++
		return
	}
	// This node's own messages from before a restart come back this way: they are genuine
	// (signed with this node's key), and welcome as history.
	if why := c.admit(from, &m, m.Origin == c.cfg.Self, false); why != 0 {
		// A genuine message refused for its time or as a replay (an origin's run from before
		// it restarted) would be pulled again at every Digest that still finds it missing:
		// remember its ID, once its proof shows it is the origin's, so it is not. Not before:
		// a forged time or sequence number must not block the genuine message.
		if (why == RefusedClock || why == RefusedReplay) && c.verify(&m) == nil {
			c.remember(m.ID)
		}
		return
	}
	c.remember(m.ID)
	c.stats.HistoryDelivered++
	c.out.Deliveries = append(c.out.Deliveries, Delivery{ID: m.ID, Origin: m.Origin, Hops: m.Hops, Seq: m.Seq, Time: m.Time,
		Payload: m.Payload, From: from, History: true})
	if entry := c.missing[m.ID]; entry != nil {
		c.dropMissing(m.ID, entry)
	}
	c.store(&m, m.Hops, "")
	if cm := c.cache[m.ID]; cm != nil {
		cm.history = true
	}
	c.keep(&m, m.Hops)
	c.digestSoon()
}

// digestSoon arms a Digest to every neighbour, CatchUpSettle from now (once, for a burst of
// catch-up).
func (c *Core) digestSoon() {
	for _, p := range c.neighbors() {
		c.soonPeers = insertSorted(c.soonPeers, p)
	}
	if !c.soonArmed && len(c.soonPeers) > 0 {
		c.soonArmed, c.soonAt = true, c.now+c.cfg.CatchUpSettle
	}
}

// ---- budget ----

// answer sends m to peer if peer's budget holds m's estimated size, and reports whether it
// did.
func (c *Core) answer(peer string, m Message) bool {
	size := estimateSize(&m)
	if !c.affordable(peer, size) {
		c.stats.CatchUpThrottled++
		return false
	}
	c.catchUpPeers[peer].tokens -= float64(size)
	c.send(peer, m)
	return true
}

// affordable refills peer's budget to now and reports whether it holds size bytes.
func (c *Core) affordable(peer string, size int) bool {
	b := c.peerCatchUp(peer)
	if c.now > b.at {
		b.tokens = math.Min(float64(c.cfg.CatchUpPeerBurst), b.tokens+float64(c.cfg.CatchUpPeerRate)*(c.now-b.at).Seconds())
		b.at = c.now
	}
	return b.tokens >= float64(size)
}

// peerCatchUp returns peer's catch-up state, creating it (a full budget) if there is none.
// Only neighbours get one, and catchUpNeighborDown forgets it.
func (c *Core) peerCatchUp(peer string) *peerCatchUp {
	if c.catchUpPeers == nil {
		c.catchUpPeers = make(map[string]*peerCatchUp)
	}
	b := c.catchUpPeers[peer]
	if b == nil {
		b = &peerCatchUp{tokens: float64(c.cfg.CatchUpPeerBurst), at: c.now}
		c.catchUpPeers[peer] = b
	}
	return b
}

// ---- schedule ----

// catchUpNeighborUp starts catch-up with a new neighbour: a Digest now, and the periodic
// Digests if they are not running. Both ends send one, as the hello that proves a neighbour
// has a core behind it (hello.go), but only the smaller ID's is answered (onDigest): one
// exchange reconciles both ways, and two would list every difference twice.
func (c *Core) catchUpNeighborUp(peer string) {
	if !c.catchUp() {
		return
	}
	c.sendDigest(peer)
	if !c.syncArmed {
		c.syncArmed = true
		// A random phase, so that nodes started together do not send their Digests together.
		c.syncAt = c.now + time.Duration(c.cfg.Rand.Int64N(int64(c.cfg.CatchUpInterval)))
	}
}

// catchUpNeighborDown forgets peer's catch-up state.
func (c *Core) catchUpNeighborDown(peer string) {
	delete(c.catchUpPeers, peer)
	c.soonPeers = removeSorted(c.soonPeers, peer)
}

// tickCatchUp sends the Digests that are due.
func (c *Core) tickCatchUp() {
	if !c.catchUp() {
		return
	}
	c.expireHistory()
	if c.soonArmed && c.soonAt <= c.now {
		c.soonArmed = false
		for _, p := range c.soonPeers {
			c.sendDigest(p)
		}
		c.soonPeers = c.soonPeers[:0]
	}
	if c.syncArmed && c.syncAt <= c.now {
		peers := c.neighbors()
		if len(peers) == 0 {
			c.syncArmed = false // NeighborUp starts them again
			return
		}
		c.syncTurn++
		c.sendDigest(peers[c.syncTurn%len(peers)])
		c.syncAt = c.now + c.cfg.CatchUpInterval
	}
}

// catchUpDeadline is the earliest time a catch-up Digest is due.
func (c *Core) catchUpDeadline() (time.Duration, bool) {
	at, ok := time.Duration(0), false
	if c.syncArmed {
		at, ok = c.syncAt, true
	}
	if c.soonArmed && (!ok || c.soonAt < at) {
		at, ok = c.soonAt, true
	}
	return at, ok
}

// neighbors returns the eager and lazy peers, sorted. The slice is new.
func (c *Core) neighbors() []string {
	out := make([]string, 0, len(c.eager)+len(c.lazy))
	out = append(out, c.eager...)
	out = append(out, c.lazy...)
	slices.Sort(out)
	return out
}

// ---- store-and-forward ----

// holdUnsent keeps a broadcast made while this node has no neighbour, for the next one.
func (c *Core) holdUnsent(m Message) {
	if len(c.unsent) >= c.cfg.MaxUnsent {
		c.unsent = slices.Delete(c.unsent, 0, 1)
		c.stats.UnsentDropped++
	}
	c.unsent = append(c.unsent, m)
}

// flushUnsent pushes the broadcasts held while this node had no neighbour to its new
// neighbour peer, as live Gossip it forwards through the tree.
func (c *Core) flushUnsent(peer string) {
	for _, m := range c.unsent {
		c.send(peer, m)
	}
	clear(c.unsent)
	c.unsent = c.unsent[:0]
}

// ---- checks and sizes ----

// checkCatchUp checks the fields of a Digest, Have or Pull.
func (c *Core) checkCatchUp(m *Message) error {
	switch m.Type {
	case Digest:
		if len(m.Spans) == 0 {
			return errors.New("digest without spans")
		}
	case Pull:
		if len(m.Refs) == 0 {
			return errors.New("pull without refs")
		}
	}
	if n := c.cfg.CatchUpSpans; len(m.Spans) > max(n, 1) {
		return fmt.Errorf("%d spans exceed CatchUpSpans %d", len(m.Spans), n)
	}
	if n := c.cfg.CatchUpMaxRefs; len(m.Refs) > max(n, 1) {
		return fmt.Errorf("%d refs exceed CatchUpMaxRefs %d", len(m.Refs), n)
	}
	for i, s := range m.Spans {
		if s.From < -maxSpanTime || s.To > maxSpanTime {
			return fmt.Errorf("span %d (%d to %d) is beyond ±%d ms", i, s.From, s.To, int64(maxSpanTime))
		}
		if s.To <= s.From {
			return fmt.Errorf("span %d is empty or reversed (%d to %d)", i, s.From, s.To)
		}
		if i > 0 && s.From < m.Spans[i-1].To {
			return fmt.Errorf("span %d overlaps or precedes span %d", i, i-1)
		}
		if m.Type == Digest && i > 0 && s.From != m.Spans[i-1].To {
			return fmt.Errorf("digest span %d does not follow span %d", i, i-1)
		}
	}
	return nil
}

// maxSpanTime bounds the times of a span (ms either side of the epoch, about 36 million
// years), so that no width or split of a span can overflow.
const maxSpanTime = 1 << 60

// historySize is the estimated encoded size of a History with a payload and proof of the
// given lengths and an ID-length origin.
func historySize(payload, proof int) int { return 3 + 16 + 65 + 3 + 10 + 10 + 3 + payload + 2 + proof }

// estimateSize is m's encoded size as package wire writes it, closely enough to budget by.
func estimateSize(m *Message) int {
	switch m.Type {
	case History, Gossip:
		return historySize(len(m.Payload), len(m.Proof)) - 65 + len(m.Origin) + 1
	case Digest:
		return 3 + 8 + 1 + 10 + len(m.Spans)*(5+4+8)
	case Have, Pull:
		return 3 + 1 + 1 + len(m.Spans)*(10+5+4) + 2 + len(m.Refs)*(4+16)
	}
	return 3
}

// addHop is h+1, saturating.
func addHop(h uint16) uint16 {
	if h < math.MaxUint16 {
		return h + 1
	}
	return h
}
