package membership

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// ErrInvalidMessage is wrapped by every error Step returns: the message was malformed or
// hostile and was dropped without changing the core's state.
var ErrInvalidMessage = errors.New("membership: invalid message")

// noDeadline marks "no timer armed" in Core.nextDue.
const noDeadline = time.Duration(math.MaxInt64)

// timer is one deadline of the core. Before the first Tick the core has no notion of time,
// so deadlines armed then are offsets from zero; the first Tick shifts them to driver time.
type timer struct {
	at    time.Duration
	armed bool
}

func (t *timer) arm(at time.Duration) { t.at, t.armed = at, true }
func (t *timer) stop()                { t.at, t.armed = 0, false }
func (t *timer) due(now time.Duration) bool {
	return t.armed && t.at <= now
}

// Core is one node's HyParView state machine. It is not safe for concurrent use: one
// goroutine (the driver) owns it and calls Step, Tick, PeerDown, Join and Leave, then
// collects the output with Ready.
//
// Behaviour the driver relies on, beyond the paper:
//   - Messages between two nodes must be delivered in the order Ready lists them (a reliable
//     ordered link). The symmetry of the active view depends on it: an accepting
//     NEIGHBOR_REPLY followed by a DISCONNECT must not be reordered.
//   - SHUFFLE_REPLY is addressed directly to the shuffle's origin, which usually is not a
//     neighbour: the driver opens a temporary link (or reports PeerDown when it cannot).
//   - Every failed send is reported with PeerDown; that is how dead entries leave the views.
//   - Call Tick once before anything else: the first Tick starts the core's clock.
type Core struct {
	cfg  Config
	rand *rand.Rand

	// active and passive are the two views, kept in insertion order. They never share an
	// entry and never contain Self.
	active  []string
	passive []string
	// activeSince[i] is when active[i] became a neighbour (ProtectedNeighbors protects the
	// oldest), activeFrom[i] the peer that taught it while it was passive ("" when none did);
	// passiveFrom[i] is the peer that taught passive[i], "" when the entry came first-hand
	// (MaxPassiveFromPeer caps each teacher). They run parallel to their view.
	activeSince []time.Duration
	activeFrom  []string
	// activeChosen[i] says this node chose active[i] itself (its repair's or its join's
	// acceptance), rather than being asked by it or by a walk it did not start.
	activeChosen []bool
	// evictScratch holds eviction candidates' indices, reused.
	evictScratch []int
	passiveFrom  []string
	// passiveRank[i] is passive[i]'s place in the sample when SampledPassive is on (nil
	// otherwise; see samplePlace), kept so a full view finds its worst-ranked entry without
	// hashing every entry again.
	// sampleKey is this core's secret key of that rank, drawn once from Rand: a peer that
	// cannot know it cannot pick or grind IDs that rank well here.
	passiveRank []uint64
	sampleKey   uint64

	out   Ready
	stats Stats

	now     time.Duration
	started bool // the first Tick happened
	// joined is set by Join or when a neighbour first comes up; from then on an empty
	// active view is repaired (through the passive view, then the contacts). A node that has
	// never joined (the first node of a network) just waits for others to join it.
	joined bool
	// left is set by Leave: the core is shut down and ignores input until Join.
	left bool
	// nextDue caches the earliest armed deadline so that Tick is O(1) when nothing is due.
	nextDue time.Duration

	shuffleTimer timer
	// shuffles are our shuffles still waiting for their reply, oldest first (at most
	// MaxPendingShuffles, or the last one when that check is off). Each holds the entries
	// it sent: the reply's entries evict these first, as the paper prescribes, so a shuffle
	// trades entries rather than only adding them.
	shuffles []pendingShuffle

	// forcedEvictions counts the evictions other peers caused this round
	// (MaxForcedEvictions); walkJoiners the joiners of FORWARD_JOIN walks put into the
	// passive view this round (MaxWalkJoinersPerRound).
	forcedEvictions int
	walkJoiners     int
	// rates are the per-peer, per-type token buckets (PeerMessageRate).
	rates []rateBucket
	// stalledRounds counts consecutive rounds in which the repair made no progress;
	// gained says a neighbour came up since the last round.
	stalledRounds int
	gained        bool

	// Repair state. A joined node below ActiveSize asks its passive peers, one NEIGHBOR
	// request (to pending) at a time. tried lists the candidates that refused during the
	// current repair round so that a round asks each passive peer at most once; a round
	// restarts on a new failure or disconnect and at each shuffle round.
	pending      string
	pendingTimer timer
	tried        []string
	// asked lists the peers we sent a JOIN or NEIGHBOR request whose acceptance we still
	// honour (bounded by askedLimit, oldest forgotten). An acceptance from anyone else is
	// stale or unsolicited: the sender gets a DISCONNECT instead. Sending a peer DISCONNECT
	// takes it off the list, because an acceptance it sent before reading that DISCONNECT
	// would otherwise re-add a peer that is about to drop us: an asymmetric link.
	asked        []string
	failedRounds int // consecutive repair rounds that failed (see retryRepair)
	// pendingSince is when the pending request was sent; deadCandidates counts, per round,
	// the repair candidates that failed (down, or silent until NeighborTimeout) and a request
	// still pending after a whole round.
	pendingSince   time.Duration
	deadCandidates int
	// lastRefuser is the last repair candidate that refused (alive, but full): the peer an
	// escalation asks first.
	lastRefuser string
	// opportunisticAsked says OpportunisticRepair asked a peer this round (one a round);
	// opportunisticDue says it should look at the view again (see repairOpportunistically).
	opportunisticAsked, opportunisticDue bool
	// quotaUntil is when OutboundQuota lapses again (OutboundQuotaFor after the last peer
	// this node distrusted); 0 while it has distrusted none.
	quotaUntil time.Duration

	// Join state: the contacts of the current join attempt, tried one after another.
	joinList    []string
	joinNext    int
	joinTarget  string // contact we sent JOIN to and wait on, "" if none
	joinTimer   timer
	rejoinTimer timer
	// contactsAskedAt is when the last NeedContacts event was emitted (askedContacts: ever).
	contactsAskedAt time.Duration
	askedContacts   bool
	// evictedEmptyAt is when a DISCONNECT last emptied the active view (if evictedEmpty).
	evictedEmptyAt time.Duration
	evictedEmpty   bool
}

// pendingShuffle is one shuffle of ours waiting for its SHUFFLE_REPLY.
type pendingShuffle struct {
	at   time.Duration // when it was sent
	size int           // entries sent, Self included: the most a reply may carry
	sent []string      // the entries sent, Self excluded
}

// rateBucket is the token bucket of one (peer, message type), kept as the generic cell rate
// algorithm does: one deadline instead of a token count and a time, so 32 bytes a bucket,
// which matters with 100,000 cores in one simulator. tat (the theoretical arrival time) runs
// one emission interval (1/PeerMessageRate) ahead per message accepted; a message is
// accepted while tat stays within PeerMessageBurst intervals of now. A bucket whose tat has
// passed is full again, the same as no bucket.
type rateBucket struct {
	peer string
	tat  time.Duration
	typ  MessageType
}

// New validates cfg and returns a core. The core copies cfg.Contacts; cfg.Rand is used (and
// advanced) by the core only.
func New(cfg Config) (*Core, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Contacts = append([]string(nil), cfg.Contacts...)
	cfg.OutboundQuota = min(cfg.OutboundQuota, (cfg.ActiveSize-1)/2)
	c := &Core{
		cfg:          cfg,
		rand:         cfg.Rand,
		active:       make([]string, 0, cfg.ActiveSize),
		activeSince:  make([]time.Duration, 0, cfg.ActiveSize),
		activeFrom:   make([]string, 0, cfg.ActiveSize),
		activeChosen: make([]bool, 0, cfg.ActiveSize),
		passive:      make([]string, 0, min(cfg.PassiveSize, 64)),
		passiveFrom:  make([]string, 0, min(cfg.PassiveSize, 64)),
		nextDue:      noDeadline,
	}
	if cfg.SampledPassive {
		c.sampleKey = c.rand.Uint64()
		c.passiveRank = make([]uint64, 0, min(cfg.PassiveSize, 64))
	}
	return c, nil
}

func (cfg *Config) validate() error {
	switch {
	case cfg.Self == "":
		return errors.New("membership: Config.Self is required")
	case cfg.Rand == nil:
		return errors.New("membership: Config.Rand is required (a seeded source, one per core)")
	case cfg.ActiveSize < 1:
		return fmt.Errorf("membership: Config.ActiveSize must be at least 1, got %d", cfg.ActiveSize)
	case cfg.PassiveSize < 1:
		return fmt.Errorf("membership: Config.PassiveSize must be at least 1, got %d", cfg.PassiveSize)
	case cfg.PRWL > cfg.ARWL:
		return fmt.Errorf("membership: Config.PRWL (%d) must not exceed ARWL (%d)", cfg.PRWL, cfg.ARWL)
	case cfg.ShuffleActive < 0:
		return fmt.Errorf("membership: Config.ShuffleActive must not be negative, got %d", cfg.ShuffleActive)
	case cfg.ShufflePassive < 0:
		return fmt.Errorf("membership: Config.ShufflePassive must not be negative, got %d", cfg.ShufflePassive)
	case cfg.ShuffleInterval <= 0:
		return fmt.Errorf("membership: Config.ShuffleInterval must be positive, got %v", cfg.ShuffleInterval)
	case cfg.NeighborTimeout <= 0:
		return fmt.Errorf("membership: Config.NeighborTimeout must be positive, got %v", cfg.NeighborTimeout)
	case cfg.RejoinBackoff <= 0:
		return fmt.Errorf("membership: Config.RejoinBackoff must be positive, got %v", cfg.RejoinBackoff)
	case cfg.MaxMessageNodes < 1+cfg.ShuffleActive+cfg.ShufflePassive:
		// Our own shuffle sample (Self + ka + kp) must fit the bound, or peers with the
		// same configuration would reject it.
		return fmt.Errorf("membership: Config.MaxMessageNodes (%d) must be at least 1+ShuffleActive+ShufflePassive (%d)",
			cfg.MaxMessageNodes, 1+cfg.ShuffleActive+cfg.ShufflePassive)
	}
	if err := cfg.validateDefences(); err != nil {
		return err
	}
	for i, p := range cfg.Contacts {
		if p == "" {
			return fmt.Errorf("membership: Config.Contacts[%d] is empty", i)
		}
	}
	return nil
}

// validateDefences checks the defence fields; each is off at zero, never negative.
func (cfg *Config) validateDefences() error {
	sample := 1 + cfg.ShuffleActive + cfg.ShufflePassive
	switch {
	case cfg.ShuffleReplyTimeout < 0:
		return fmt.Errorf("membership: Config.ShuffleReplyTimeout must not be negative, got %v", cfg.ShuffleReplyTimeout)
	case cfg.MaxPendingShuffles < 0:
		return fmt.Errorf("membership: Config.MaxPendingShuffles must not be negative, got %d", cfg.MaxPendingShuffles)
	case cfg.MaxPendingShuffles > 0 && cfg.ShuffleReplyTimeout <= 0:
		return errors.New("membership: Config.ShuffleReplyTimeout must be positive when MaxPendingShuffles is set")
	case cfg.MaxShuffleMerge < 0:
		return fmt.Errorf("membership: Config.MaxShuffleMerge must not be negative, got %d", cfg.MaxShuffleMerge)
	case cfg.MaxShuffleMerge > 0 && cfg.MaxShuffleMerge < sample:
		// Our own sample must pass whole, or peers with the same configuration would cut it.
		return fmt.Errorf("membership: Config.MaxShuffleMerge (%d) must be 0 or at least 1+ShuffleActive+ShufflePassive (%d)",
			cfg.MaxShuffleMerge, sample)
	case cfg.MaxPassiveFromPeer < 0:
		return fmt.Errorf("membership: Config.MaxPassiveFromPeer must not be negative, got %d", cfg.MaxPassiveFromPeer)
	case cfg.MaxWalkJoinersPerRound < 0:
		return fmt.Errorf("membership: Config.MaxWalkJoinersPerRound must not be negative, got %d", cfg.MaxWalkJoinersPerRound)
	case cfg.MaxForcedEvictions < 0:
		return fmt.Errorf("membership: Config.MaxForcedEvictions must not be negative, got %d", cfg.MaxForcedEvictions)
	case cfg.ProtectedNeighbors < 0:
		return fmt.Errorf("membership: Config.ProtectedNeighbors must not be negative, got %d", cfg.ProtectedNeighbors)
	case cfg.ProtectAfter < 0:
		return fmt.Errorf("membership: Config.ProtectAfter must not be negative, got %v", cfg.ProtectAfter)
	case cfg.OutboundQuota < 0:
		return fmt.Errorf("membership: Config.OutboundQuota must not be negative, got %d", cfg.OutboundQuota)
	case cfg.OutboundQuotaFor < 0:
		return fmt.Errorf("membership: Config.OutboundQuotaFor must not be negative, got %v", cfg.OutboundQuotaFor)
	case cfg.PeerMessageRate < 0 || math.IsNaN(cfg.PeerMessageRate) || math.IsInf(cfg.PeerMessageRate, 0):
		return fmt.Errorf("membership: Config.PeerMessageRate must be a finite rate, not negative, got %v", cfg.PeerMessageRate)
	case cfg.PeerMessageRate > 0 && cfg.PeerMessageRate < 0.001:
		// Slower than one message in 1,000 s is no rate an honest peer could keep to; it
		// would also overflow the bucket's arithmetic.
		return fmt.Errorf("membership: Config.PeerMessageRate must be 0 (off) or at least 0.001 a second, got %v", cfg.PeerMessageRate)
	case cfg.PeerMessageRate > 0 && (cfg.PeerMessageBurst < 1 || cfg.PeerMessageBurst > 1_000_000):
		return fmt.Errorf("membership: Config.PeerMessageBurst must be in [1, 1000000] with a PeerMessageRate, got %d", cfg.PeerMessageBurst)
	case cfg.PeerMessageRate > 0 && cfg.MaxRateEntries < 1:
		return fmt.Errorf("membership: Config.MaxRateEntries must be at least 1 with a PeerMessageRate, got %d", cfg.MaxRateEntries)
	case cfg.StalledRoundsBeforeContacts < 0:
		return fmt.Errorf("membership: Config.StalledRoundsBeforeContacts must not be negative, got %d", cfg.StalledRoundsBeforeContacts)
	case cfg.MaxMisbehaviourReports < 0:
		return fmt.Errorf("membership: Config.MaxMisbehaviourReports must not be negative, got %d", cfg.MaxMisbehaviourReports)
	}
	return nil
}

// Self returns this node's ID.
func (c *Core) Self() string { return c.cfg.Self }

// ActiveView returns a copy of the active view (the current neighbours).
func (c *Core) ActiveView() []string { return append([]string(nil), c.active...) }

// PassiveView returns a copy of the passive view.
func (c *Core) PassiveView() []string { return append([]string(nil), c.passive...) }

// Stats returns the counters and the current view sizes.
func (c *Core) Stats() Stats {
	s := c.stats
	s.ActiveSize, s.PassiveSize = len(c.active), len(c.passive)
	return s
}

// HasReady reports whether Ready has anything to return.
func (c *Core) HasReady() bool {
	return len(c.out.Messages) > 0 || len(c.out.Events) > 0 || len(c.out.Misbehaviour) > 0
}

// Ready returns the messages to send and the events to report since the last call, and
// clears them. The returned slices belong to the caller.
func (c *Core) Ready() Ready {
	rd := c.out
	c.out = Ready{}
	return rd
}

// NextDeadline returns the earliest armed timer (shuffle round, NEIGHBOR or JOIN timeout,
// rejoin backoff), so a discrete-event driver can Tick the core exactly then. It reports
// false when no timer is armed, and always before the first Tick.
func (c *Core) NextDeadline() (time.Duration, bool) {
	if !c.started || c.nextDue == noDeadline {
		return 0, false
	}
	return c.nextDue, true
}

// Join starts joining the overlay: it sends JOIN to contact, or, when contact is "", to the
// first of Config.Contacts. When no JOIN_REPLY arrives within NeighborTimeout (or the contact
// is reported down) the next contact is tried: after an explicit contact come
// Config.Contacts in order. When all fail and the node is still isolated it retries through
// the contacts every RejoinBackoff. Join also restarts a core stopped by Leave. A node with
// no contact at all (the first node of a network) only marks itself joined and waits.
func (c *Core) Join(contact string) {
	if c.left {
		c.left = false
		if c.started {
			c.armShuffle()
		}
	}
	c.joined = true
	c.joinList = c.joinList[:0]
	if contact != "" {
		c.joinList = appendContact(c.joinList, contact, c.cfg.Self)
	}
	for _, p := range c.cfg.Contacts {
		c.joinList = appendContact(c.joinList, p, c.cfg.Self)
	}
	c.joinNext = -1
	c.rejoinTimer.stop()
	c.advanceJoin(true)
	c.maintain()
	c.updateDue()
}

func appendContact(list []string, p, self string) []string {
	if p == "" || p == self || indexOf(list, p) >= 0 {
		return list
	}
	return append(list, p)
}

// advanceJoin sends JOIN to the next contact of the current attempt. When the list is used
// up it gives up; an isolated node then waits RejoinBackoff before trying again. force
// continues even when the node already has neighbours (an explicit Join).
func (c *Core) advanceJoin(force bool) {
	c.joinTarget = ""
	c.joinTimer.stop()
	if !force && len(c.active) > 0 {
		// Connected by now (a late JOIN_REPLY or a NEIGHBOR request): the join walks fill
		// the rest of the active view, no need to bother more contacts.
		c.joinList = c.joinList[:0]
		return
	}
	c.joinNext++
	if c.joinNext >= len(c.joinList) {
		c.joinList = c.joinList[:0]
		if len(c.active) == 0 && c.joined && c.hasContacts() {
			c.rejoinTimer.arm(c.now + c.cfg.RejoinBackoff)
		}
		if len(c.active) == 0 && c.joined {
			c.needContacts()
		}
		return
	}
	c.joinTarget = c.joinList[c.joinNext]
	c.joinTimer.arm(c.now + c.cfg.NeighborTimeout)
	c.markAsked(c.joinTarget)
	c.send(c.joinTarget, Message{Type: Join})
}

// needContacts is called when an isolated node has tried every contact it knows: it asks the
// driver, through a NeedContacts event, for live nodes it cannot know of itself, at most once
// per RejoinBackoff. It changes no timer, so repair from the passive view goes on meanwhile.
func (c *Core) needContacts() {
	if c.askedContacts && c.now < c.contactsAskedAt+c.cfg.RejoinBackoff {
		return
	}
	c.askedContacts, c.contactsAskedAt = true, c.now
	c.stats.ContactRequests++
	c.out.Events = append(c.out.Events, Event{Type: NeedContacts})
}

// hasContacts reports whether any contact other than Self is configured.
func (c *Core) hasContacts() bool {
	for _, p := range c.cfg.Contacts {
		if p != c.cfg.Self {
			return true
		}
	}
	return false
}

// startRejoin re-joins through the contacts, in random order, because both views ran empty.
func (c *Core) startRejoin() {
	c.joinList = c.joinList[:0]
	for _, p := range c.cfg.Contacts {
		c.joinList = appendContact(c.joinList, p, c.cfg.Self)
	}
	if len(c.joinList) == 0 {
		c.needContacts() // no contact configured: only the driver can find a way back in
		return
	}
	c.rand.Shuffle(len(c.joinList), func(i, j int) {
		c.joinList[i], c.joinList[j] = c.joinList[j], c.joinList[i]
	})
	c.stats.Rejoins++
	c.joinNext = -1
	c.advanceJoin(true)
}

// Leave shuts the node down gracefully: DISCONNECT (Leaving) to every neighbour, a
// NeighborDown event for each, both views cleared and every timer stopped. The core then
// ignores messages and timers until Join is called again.
func (c *Core) Leave() {
	for _, p := range c.active {
		c.send(p, Message{Type: Disconnect, Leaving: true})
	}
	for _, p := range c.active {
		c.out.Events = append(c.out.Events, Event{Type: NeighborDown, Peer: p})
	}
	clear(c.active)
	c.active = c.active[:0]
	c.activeSince = c.activeSince[:0]
	clear(c.activeFrom)
	c.activeFrom = c.activeFrom[:0]
	c.activeChosen = c.activeChosen[:0]
	clear(c.passive)
	c.passive = c.passive[:0]
	clear(c.passiveFrom)
	c.passiveFrom = c.passiveFrom[:0]
	c.passiveRank = c.passiveRank[:0]
	c.tried = c.tried[:0]
	clear(c.asked)
	c.asked = c.asked[:0]
	clear(c.shuffles)
	c.shuffles = c.shuffles[:0]
	c.stalledRounds, c.gained = 0, false
	c.joinList = c.joinList[:0]
	c.failedRounds, c.lastRefuser, c.joinTarget, c.deadCandidates = 0, "", "", 0
	c.clearPending()
	c.joinTimer.stop()
	c.rejoinTimer.stop()
	c.shuffleTimer.stop()
	c.joined, c.left = false, true
	c.updateDue()
}

// Tick advances the core's clock to now (driver time, monotonic; an earlier value is taken
// as the current time) and fires the timers that are due. The first Tick starts the clock
// and schedules the first shuffle round at a random offset within ShuffleInterval.
func (c *Core) Tick(now time.Duration) {
	if now < c.now {
		now = c.now
	}
	if !c.started {
		c.started = true
		// Deadlines armed before the first Tick are offsets from zero.
		for _, t := range [...]*timer{&c.pendingTimer, &c.joinTimer, &c.rejoinTimer} {
			if t.armed {
				t.at += now
			}
		}
		c.now = now
		if !c.left {
			c.armShuffle()
		}
		c.updateDue()
	}
	c.now = now
	if now < c.nextDue || c.left {
		return
	}
	if c.pendingTimer.due(now) {
		// No reply from the repair candidate in time: it is as good as unreachable.
		cand := c.pending
		c.deadCandidates++
		c.clearPending()
		c.dropPassive(cand)
	}
	if c.joinTimer.due(now) {
		c.advanceJoin(false)
	}
	if c.rejoinTimer.due(now) {
		c.rejoinTimer.stop()
		c.tried = c.tried[:0]
	}
	if c.shuffleTimer.due(now) {
		// Keep the phase; skip rounds a coarse driver missed rather than bursting them.
		at := c.shuffleTimer.at + c.cfg.ShuffleInterval
		if at <= now {
			at += (now - at) / c.cfg.ShuffleInterval * c.cfg.ShuffleInterval
			if at <= now {
				at += c.cfg.ShuffleInterval
			}
		}
		c.shuffleTimer.arm(at)
		c.forcedEvictions, c.walkJoiners, c.opportunisticAsked = 0, 0, false
		if len(c.active) >= c.cfg.ActiveSize {
			// A full view repairs only opportunistically, once a round: it may ask anyone again.
			c.tried = c.tried[:0]
		}
		c.pruneRates()
		gained := c.gained // checkStalled starts the next round's
		c.checkStalled()
		c.shuffle()
		if c.pending != "" && c.now-c.pendingSince >= c.cfg.ShuffleInterval {
			c.deadCandidates++ // a request pending a whole round: most likely a dead peer
		}
		if len(c.active) > 0 && len(c.active) < c.cfg.ActiveSize && (c.pending == "" || c.deadCandidates > 0) {
			if c.pending == "" && len(c.passive) == 0 {
				// Short of neighbours a whole round with no one left to ask: in a small
				// overlay a few nodes can end up knowing only each other. Only the driver
				// can find others.
				c.needContacts()
			}
			c.retryRepair(gained)
		}
		c.deadCandidates = 0
		c.opportunisticDue = true
	}
	c.maintain()
	c.updateDue()
}

func (c *Core) armShuffle() {
	c.shuffleTimer.arm(c.now + time.Duration(c.rand.Int64N(int64(c.cfg.ShuffleInterval))))
}

func (c *Core) updateDue() {
	due := noDeadline
	for _, t := range [...]*timer{&c.shuffleTimer, &c.pendingTimer, &c.joinTimer, &c.rejoinTimer} {
		if t.armed && t.at < due {
			due = t.at
		}
	}
	c.nextDue = due
}

// PeerDown reports that peer is unreachable: its link failed, or a send to it failed. An
// active peer is removed (NeighborDown) and replaced from the passive view; a repair
// candidate or join contact that fails is skipped for the next one. The peer is also dropped
// from the passive view, so failed entries do not linger.
func (c *Core) PeerDown(peer string) {
	if c.left || peer == "" || peer == c.cfg.Self {
		return
	}
	c.stats.PeerDowns++
	if c.removeActive(peer) {
		c.tried = c.tried[:0] // a new failure starts a new repair round
	}
	c.dropPassive(peer)
	c.asked = removeValue(c.asked, peer)
	if peer == c.pending {
		c.deadCandidates++
		c.clearPending()
	}
	if peer == c.joinTarget {
		c.advanceJoin(false)
	}
	c.maintain()
	c.updateDue()
}

// Distrust is PeerDown for a peer that peer scoring cut off for misbehaviour. What it taught
// this node leaves the passive view with it, and so does what its own teacher (the peer that
// named it to this node, if one did) taught: a hostile peer's shuffles name its accomplices,
// and the repair would otherwise try them one by one, each holding a slot until it too is
// caught. An honest teacher loses only entries, which its next shuffle brings back if they
// are live. It also brings OutboundQuota into force for OutboundQuotaFor.
func (c *Core) Distrust(peer string) {
	if c.left || peer == "" || peer == c.cfg.Self {
		return
	}
	teachers := []string{peer}
	// Someone misbehaved: peers that ask may be hostile, so the OutboundQuota's slots are
	// kept for this node's own choices for a while (see outboundQuota).
	c.quotaUntil = c.now + c.cfg.OutboundQuotaFor
	if i := indexOf(c.active, peer); i >= 0 {
		if c.activeFrom[i] != "" {
			teachers = append(teachers, c.activeFrom[i])
		}
	} else if i := indexOf(c.passive, peer); i >= 0 && c.passiveFrom[i] != "" {
		teachers = append(teachers, c.passiveFrom[i])
	}
	for i := 0; i < len(c.passive); {
		if slices.Contains(teachers, c.passiveFrom[i]) {
			c.dropPassiveAt(i)
			c.stats.DistrustedEntries++
			continue
		}
		i++
	}
	c.PeerDown(peer)
}

// Step processes message m that arrived from peer from. A malformed or hostile message
// (unknown type, missing or oversized fields, TTL beyond the configured walk length, a sender
// that is empty or Self) returns an error wrapping ErrInvalidMessage and changes nothing but
// Stats.InvalidMessages. A valid message from a peer outside the active view is processed
// too: joins, NEIGHBOR requests and shuffle replies come from non-neighbours.
func (c *Core) Step(from string, m Message) error {
	if m.Type.Valid() {
		c.stats.MessagesReceived[m.Type]++
	}
	if err := c.check(from, &m); err != nil {
		c.stats.InvalidMessages++
		return err
	}
	if c.left {
		return nil
	}
	if c.rateLimited(from, &m) {
		return nil
	}
	switch m.Type {
	case Join:
		c.onJoin(from)
	case JoinReply:
		c.onJoinReply(from)
	case ForwardJoin:
		c.onForwardJoin(from, &m)
	case Neighbor:
		c.onNeighbor(from, &m)
	case NeighborReply:
		c.onNeighborReply(from, &m)
	case Disconnect:
		c.onDisconnect(from, &m)
	case Shuffle:
		c.onShuffle(from, &m)
	case ShuffleReply:
		c.onShuffleReply(from, &m)
	}
	c.maintain()
	c.updateDue()
	return nil
}

func (c *Core) check(from string, m *Message) error {
	if !m.Type.Valid() {
		return fmt.Errorf("%w: unknown type %d from %q", ErrInvalidMessage, uint8(m.Type), from)
	}
	if from == "" {
		return fmt.Errorf("%w: %v with an empty sender", ErrInvalidMessage, m.Type)
	}
	if from == c.cfg.Self {
		return fmt.Errorf("%w: %v from Self (%q)", ErrInvalidMessage, m.Type, from)
	}
	if len(m.Nodes) > c.cfg.MaxMessageNodes {
		return fmt.Errorf("%w: %v from %q carries %d nodes, more than MaxMessageNodes (%d)",
			ErrInvalidMessage, m.Type, from, len(m.Nodes), c.cfg.MaxMessageNodes)
	}
	switch m.Type {
	case ForwardJoin:
		if m.Node == "" {
			return fmt.Errorf("%w: FORWARD_JOIN from %q names no joining node", ErrInvalidMessage, from)
		}
		if m.TTL > c.cfg.ARWL {
			return fmt.Errorf("%w: FORWARD_JOIN from %q has TTL %d, more than ARWL (%d)",
				ErrInvalidMessage, from, m.TTL, c.cfg.ARWL)
		}
	case Shuffle:
		if m.Node == "" {
			return fmt.Errorf("%w: SHUFFLE from %q names no origin", ErrInvalidMessage, from)
		}
		if m.TTL > c.cfg.ShuffleTTL {
			return fmt.Errorf("%w: SHUFFLE from %q has TTL %d, more than ShuffleTTL (%d)",
				ErrInvalidMessage, from, m.TTL, c.cfg.ShuffleTTL)
		}
	}
	for i, p := range m.Nodes {
		if p == "" {
			return fmt.Errorf("%w: %v from %q has an empty node ID at index %d", ErrInvalidMessage, m.Type, from, i)
		}
	}
	return nil
}

// onJoin: the contact takes the joiner into its active view (dropping a random neighbour if
// full), answers JOIN_REPLY and sends a FORWARD_JOIN walk along each other neighbour. A JOIN
// from a peer that is already active (it restarted, or a reply was lost) is answered and
// forwarded again: the joiner evidently lacks neighbours. When the round's eviction budget
// is spent (or every neighbour is protected) the joiner gets the walks but no slot here and
// no JOIN_REPLY: the walks' ends offer it neighbours, and its join timeout, once it has
// them, ends the join quietly.
func (c *Core) onJoin(from string) {
	if indexOf(c.active, from) < 0 && !c.addActive(from, addForced) {
		c.stats.EvictionsRefused++
	} else {
		c.send(from, Message{Type: JoinReply})
	}
	for _, p := range c.active {
		if p != from {
			c.send(p, Message{Type: ForwardJoin, Node: from, TTL: c.cfg.ARWL})
		}
	}
}

// onJoinReply: the contact added us, so we add it, keeping the link symmetric. A late reply
// from a contact we gave up on is honoured the same way (while it is in Core.asked): that
// contact has us in its view.
func (c *Core) onJoinReply(from string) {
	if from == c.joinTarget {
		c.joinTarget = ""
		c.joinTimer.stop()
		c.joinList = c.joinList[:0]
	}
	c.accepted(from, false)
}

// accepted handles a peer that has added us to its active view (JOIN_REPLY, accepting
// NEIGHBOR_REPLY). If we asked it, we add it too, dropping a random neighbour if the view
// filled up in the meantime (the paper's addNodeActiveView): evicting rather than refusing
// lets join walks that end at full nodes still connect the joiner, as in the paper. An
// acceptance we no longer honour (see Core.asked) gets a DISCONNECT, so the sender drops
// us again. Either way the link ends up symmetric.
//
// forced marks an acceptance of a request this node did not make for its own repair or join
// (the end of another node's join walk): its eviction counts against MaxForcedEvictions and
// spares protected neighbours, and when that leaves no slot the acceptance gets a
// DISCONNECT like an unsolicited one.
func (c *Core) accepted(p string, forced bool) {
	if p == c.pending {
		c.clearPending()
	}
	switch {
	case indexOf(c.active, p) >= 0:
		c.asked = removeValue(c.asked, p)
	case indexOf(c.asked, p) >= 0 && c.addActive(p, chosenOrForced(forced)):
	default:
		if indexOf(c.asked, p) >= 0 {
			c.stats.EvictionsRefused++
			c.asked = removeValue(c.asked, p)
		}
		c.send(p, Message{Type: Disconnect})
		c.addPassive(p)
	}
}

// askedLimit bounds Core.asked: a few requests per active slot are plenty; forgetting an
// old one only costs a link (its late acceptance gets a DISCONNECT).
func (c *Core) askedLimit() int { return 2*c.cfg.ActiveSize + 2 }

func (c *Core) markAsked(p string) {
	if indexOf(c.asked, p) >= 0 {
		return
	}
	if len(c.asked) >= c.askedLimit() {
		c.asked = removeAt(c.asked, 0)
	}
	c.asked = append(c.asked, p)
}

// onForwardJoin continues or ends a join walk. At its end (TTL 0, or no neighbour to pass it
// to) this node asks the joiner to become its neighbour with a high-priority NEIGHBOR; at TTL
// PRWL the joiner is also put into the passive view.
//
// With the defences, a FORWARD_JOIN from a stranger is refused (ForwardJoinFromNeighborsOnly),
// and at most MaxWalkJoinersPerRound joiners a round enter the passive view.
func (c *Core) onForwardJoin(from string, m *Message) {
	if c.cfg.ForwardJoinFromNeighborsOnly && indexOf(c.active, from) < 0 {
		c.refuse(from, RefusedStrangerForwardJoin, ForwardJoin)
		return
	}
	joiner := m.Node
	if joiner == c.cfg.Self {
		return // a walk about ourselves: never our own neighbour
	}
	if m.TTL > 0 && len(c.active) > 1 {
		if m.TTL == c.cfg.PRWL {
			c.keepWalkJoiner(joiner, from)
		}
		// Passing the walk to the joiner itself would waste it.
		if next := c.randomActiveExcept(from, joiner); next != "" {
			c.send(next, Message{Type: ForwardJoin, Node: joiner, TTL: m.TTL - 1})
			return
		}
	}
	if indexOf(c.active, joiner) < 0 {
		if !c.canEvictFor() {
			// No slot we may give away this round: the joiner gets other walks' ends. The
			// paper keeps it as a passive peer; with MaxWalkJoinersPerRound set it is not
			// kept, or a stream of JOINs would plant IDs wherever the budget is spent.
			c.stats.EvictionsRefused++
			if c.cfg.MaxWalkJoinersPerRound == 0 {
				c.insertPassive(joiner, from, nil, nil)
			}
			return
		}
		c.markAsked(joiner)
		c.send(joiner, Message{Type: Neighbor, HighPriority: true})
	}
}

// keepWalkJoiner puts a joiner named by a FORWARD_JOIN at TTL PRWL into the passive view,
// taught by from, within the round's MaxWalkJoinersPerRound.
func (c *Core) keepWalkJoiner(joiner, from string) {
	if limit := c.cfg.MaxWalkJoinersPerRound; limit > 0 {
		if c.walkJoiners >= limit {
			c.stats.JoinersNotKept++
			return
		}
		if indexOf(c.passive, joiner) < 0 && indexOf(c.active, joiner) < 0 {
			c.walkJoiners++
		}
	}
	c.insertPassive(joiner, from, nil, nil)
}

// onNeighbor: a high-priority request is accepted, dropping a random neighbour if full, as
// long as MaxForcedEvictions and ProtectedNeighbors allow; a low-priority one only when there
// is room. A request from a peer already active is
// accepted again, so the requester adds us and the link stays symmetric.
func (c *Core) onNeighbor(from string, m *Message) {
	ok := indexOf(c.active, from) >= 0 || c.roomForInbound()
	if ok {
		c.addActive(from, addInbound)
	} else if m.HighPriority {
		// The paper always accepts; here only within the round's eviction budget, and never
		// at the expense of a protected neighbour.
		if ok = c.addActive(from, addForced); !ok {
			c.stats.EvictionsRefused++
		}
	}
	c.send(from, Message{Type: NeighborReply, Accepted: ok})
}

func (c *Core) onNeighborReply(from string, m *Message) {
	if m.Accepted {
		// Our repair asks through pending; any other request we made ended a join walk.
		c.accepted(from, from != c.pending)
		return
	}
	// Refused: the peer is alive but full. It stays in the passive view; the repair
	// round moves on to another candidate. A refusal never removes an active peer.
	c.asked = removeValue(c.asked, from)
	if from == c.pending {
		c.clearPending()
		c.addTried(from)
		c.lastRefuser = from
	}
}

// onDisconnect: the sender dropped us. It goes to the passive view (it is alive), unless it
// is leaving, in which case it is forgotten. Either way the lost slot is repaired like a
// failure, going beyond the paper (which repairs only failures): evictions by joins, left
// alone, cut small islands off the overlay (seen with 9 nodes and an active view of 3). The
// repair asks with low priority, accepted only by peers with room, so it never evicts
// anyone in turn; only an empty active view asks with high priority.
func (c *Core) onDisconnect(from string, m *Message) {
	if c.removeActive(from) {
		c.tried = c.tried[:0]
		if len(c.active) == 0 && !m.Leaving {
			// Emptied by an eviction. The high-priority request we now send evicts someone
			// else, who may be emptied in turn: in a tiny overlay (more nodes wanting a slot
			// than there are slots) that chain never ends. Emptied twice within
			// RejoinBackoff, wait RejoinBackoff before asking, so the chain runs at that
			// pace instead of at network speed.
			if c.evictedEmpty && c.now-c.evictedEmptyAt < c.cfg.RejoinBackoff {
				c.rejoinTimer.arm(c.now + c.cfg.RejoinBackoff)
			}
			c.evictedEmpty, c.evictedEmptyAt = true, c.now
		}
	}
	if !m.Leaving {
		c.addPassive(from)
		return
	}
	c.dropPassive(from)
	c.asked = removeValue(c.asked, from)
	if from == c.pending {
		c.clearPending()
	}
	if from == c.joinTarget {
		c.advanceJoin(false)
	}
}

// onShuffle continues the shuffle walk or ends it here: the end node answers the origin
// directly with a passive sample of the same size and merges the received sample, evicting
// first what it sent. A SHUFFLE from outside the active view is refused
// (ShuffleFromNeighborsOnly), and only the first MaxShuffleMerge entries of a sample are
// merged or passed on, so a hostile origin cannot flush a view with one long list.
func (c *Core) onShuffle(from string, m *Message) {
	if c.cfg.ShuffleFromNeighborsOnly && indexOf(c.active, from) < 0 {
		c.refuse(from, RefusedStrangerShuffle, Shuffle)
		return
	}
	nodes := m.Nodes
	if limit := c.cfg.MaxShuffleMerge; limit > 0 && len(nodes) > limit {
		c.stats.ShuffleEntriesDropped += uint64(len(nodes) - limit)
		nodes = nodes[:limit]
	}
	if m.TTL > 0 && len(c.active) > 1 {
		if next := c.randomActiveExcept(from, m.Node); next != "" {
			c.send(next, Message{Type: Shuffle, Node: m.Node, TTL: m.TTL - 1,
				Nodes: append([]string(nil), nodes...)})
			return
		}
	}
	if m.Node == c.cfg.Self {
		return // our own walk came back: nothing to trade with ourselves
	}
	var reply []string
	if len(c.passive) > 0 {
		reply = c.appendSample(make([]string, 0, min(len(nodes), len(c.passive))), c.passive, len(nodes), m.Node)
	}
	if len(reply) > 0 {
		c.send(m.Node, Message{Type: ShuffleReply, Nodes: reply})
	}
	teacher := from
	if c.cfg.MaxPassiveFromPeer > 0 {
		// The origin made the sample; the relays only passed it on (MaxPassiveFromPeer).
		teacher = m.Node
	}
	c.mergePassive(nodes, teacher, reply)
}

// onShuffleReply merges the sample a shuffle's end node sent back. With MaxPendingShuffles
// set, it must answer one of our shuffles still outstanding (the oldest, which it consumes)
// and carry no more entries than that shuffle sent; anything else is refused and reported.
func (c *Core) onShuffleReply(from string, m *Message) {
	if c.cfg.MaxPendingShuffles == 0 {
		// The paper: every reply is merged, evicting first what the last shuffle sent.
		var sent []string
		if n := len(c.shuffles); n > 0 {
			sent = c.shuffles[n-1].sent
		}
		c.mergePassive(m.Nodes, from, sent)
		return
	}
	c.expireShuffles()
	if len(c.shuffles) == 0 {
		c.refuse(from, RefusedUnsolicitedReply, ShuffleReply)
		return
	}
	ps := c.shuffles[0]
	if len(m.Nodes) > ps.size {
		c.refuse(from, RefusedOversizedReply, ShuffleReply)
		return
	}
	copy(c.shuffles, c.shuffles[1:])
	c.shuffles[len(c.shuffles)-1] = pendingShuffle{}
	c.shuffles = c.shuffles[:len(c.shuffles)-1]
	c.mergePassive(m.Nodes, from, ps.sent)
}

// expireShuffles forgets the shuffles that waited ShuffleReplyTimeout for their reply.
func (c *Core) expireShuffles() {
	n := 0
	for n < len(c.shuffles) && c.now-c.shuffles[n].at >= c.cfg.ShuffleReplyTimeout {
		n++
	}
	if n > 0 {
		k := copy(c.shuffles, c.shuffles[n:])
		clear(c.shuffles[k:])
		c.shuffles = c.shuffles[:k]
	}
}

// shuffle starts a shuffle round: Self, ka active and kp passive peers, sent on a random walk
// through a random neighbour. It is remembered until its reply comes back (MaxPendingShuffles).
func (c *Core) shuffle() {
	if len(c.active) == 0 {
		return
	}
	target := c.active[c.rand.IntN(len(c.active))]
	sample := make([]string, 1, 1+c.cfg.ShuffleActive+c.cfg.ShufflePassive)
	sample[0] = c.cfg.Self
	sample = c.appendSample(sample, c.active, c.cfg.ShuffleActive, "")
	sample = c.appendSample(sample, c.passive, c.cfg.ShufflePassive, "")
	c.expireShuffles()
	if len(c.shuffles) >= max(c.cfg.MaxPendingShuffles, 1) {
		// Forget the oldest, reusing its slice for this one's entries.
		old := c.shuffles[0]
		k := copy(c.shuffles, c.shuffles[1:])
		c.shuffles = c.shuffles[:k]
		old.sent = old.sent[:0]
		c.shuffles = append(c.shuffles, old)
	} else {
		c.shuffles = append(c.shuffles, pendingShuffle{})
	}
	ps := &c.shuffles[len(c.shuffles)-1]
	ps.at, ps.size = c.now, len(sample)
	ps.sent = append(ps.sent, sample[1:]...)
	c.send(target, Message{Type: Shuffle, Node: c.cfg.Self, TTL: c.cfg.ShuffleTTL, Nodes: sample})
}

// refuse drops a valid message because of what its sender did: counted, and reported (up to
// MaxMisbehaviourReports per Ready) for peer scoring.
func (c *Core) refuse(from string, why Refusal, t MessageType) {
	c.stats.Refused[why]++
	if why == RefusedRateLimited {
		c.stats.RateLimited[t]++
	}
	if len(c.out.Misbehaviour) >= c.cfg.MaxMisbehaviourReports {
		c.stats.MisbehaviourDropped++
		return
	}
	c.out.Misbehaviour = append(c.out.Misbehaviour, Misbehaviour{Peer: from, Reason: why, Type: t})
}

// rateLimited reports whether m from peer from is over its (peer, type) token bucket, and if
// so counts and reports it. Answers this node asked for, and a DISCONNECT from a neighbour,
// always pass: dropping them would leave a link one-sided, and our own requests bound them.
func (c *Core) rateLimited(from string, m *Message) bool {
	if c.cfg.PeerMessageRate <= 0 {
		return false
	}
	switch m.Type {
	case JoinReply, NeighborReply:
		if from == c.pending || from == c.joinTarget || indexOf(c.asked, from) >= 0 || indexOf(c.active, from) >= 0 {
			return false
		}
	case Disconnect:
		if indexOf(c.active, from) >= 0 {
			return false
		}
	}
	interval := c.emissionInterval()
	b := c.bucket(from, m.Type)
	tat := max(b.tat, c.now) + interval
	if tat-c.now > time.Duration(c.cfg.PeerMessageBurst)*interval {
		c.refuse(from, RefusedRateLimited, m.Type)
		return true
	}
	b.tat = tat
	return false
}

// emissionInterval is the time one message of a bucket is worth: 1/PeerMessageRate.
func (c *Core) emissionInterval() time.Duration {
	return time.Duration(float64(time.Second) / c.cfg.PeerMessageRate)
}

// bucket returns the (peer, type) bucket, creating a full one when there is none. Before the
// table grows it forgets the buckets that are full again (as good as absent); when it is at
// MaxRateEntries it also drops the fullest one.
func (c *Core) bucket(peer string, t MessageType) *rateBucket {
	for i := range c.rates {
		if b := &c.rates[i]; b.peer == peer && b.typ == t {
			return b
		}
	}
	if len(c.rates) == cap(c.rates) || len(c.rates) >= c.cfg.MaxRateEntries {
		c.pruneRates()
	}
	if len(c.rates) >= c.cfg.MaxRateEntries {
		fullest := 0
		for i := range c.rates {
			if c.rates[i].tat < c.rates[fullest].tat {
				fullest = i
			}
		}
		c.rates[fullest] = c.rates[len(c.rates)-1]
		c.rates[len(c.rates)-1] = rateBucket{}
		c.rates = c.rates[:len(c.rates)-1]
	}
	c.rates = append(c.rates, rateBucket{peer: peer, typ: t, tat: c.now})
	return &c.rates[len(c.rates)-1]
}

// pruneRates forgets the buckets that are full again: a new one would be the same. Called
// every round and before the table grows, it keeps the table at the peers heard from lately.
func (c *Core) pruneRates() {
	kept := c.rates[:0]
	for _, b := range c.rates {
		if b.tat > c.now {
			kept = append(kept, b)
		}
	}
	clear(c.rates[len(kept):])
	c.rates = kept
}

// checkStalled runs at each round: a joined node below ActiveSize that gained no neighbour
// during the last round, while isolated or with no passive peer left to ask, has stalled;
// after StalledRoundsBeforeContacts such rounds in a row it asks its driver for contacts.
func (c *Core) checkStalled() {
	gained := c.gained
	c.gained = false
	if c.cfg.StalledRoundsBeforeContacts == 0 || !c.joined || len(c.active) >= c.cfg.ActiveSize || gained {
		c.stalledRounds = 0
		return
	}
	if len(c.active) > 0 && c.hasCandidate() {
		c.stalledRounds = 0 // still has someone to ask
		return
	}
	c.stalledRounds++
	if c.stalledRounds >= c.cfg.StalledRoundsBeforeContacts {
		c.stalledRounds = 0
		before := c.stats.ContactRequests
		c.needContacts()
		if c.stats.ContactRequests > before {
			c.stats.RepairStalls++
		}
	}
}

// maintain restores the invariants after every input. A joined node whose active view is
// not full asks a random passive peer to become its neighbour, one NEIGHBOR request at a
// time, with high priority iff its active view is empty; an isolated node with no passive
// peer left to ask re-joins through its contacts.
//
// The paper repairs only after failures. Here a slot freed by a DISCONNECT (an eviction) is
// repaired too, and a view that is not full keeps trying every shuffle round: evictions by
// joins, left alone, cut small islands off the overlay (seen with 9 nodes and an active
// view of 3). Low-priority requests are accepted only by peers with room, so the repair
// never evicts anyone, except for the escalation in retryRepair.
func (c *Core) maintain() {
	if c.left || !c.joined {
		return
	}
	isolated := len(c.active) == 0
	if isolated && c.rejoinTimer.armed {
		return // backing off (see onDisconnect and advanceJoin)
	}
	if c.pending == "" && len(c.active) < c.cfg.ActiveSize {
		if cand := c.pickCandidate(); cand != "" {
			c.askNeighbor(cand, isolated)
		}
	}
	if c.opportunisticDue && c.pending == "" && len(c.active) >= c.cfg.ActiveSize {
		c.opportunisticDue = false
		c.repairOpportunistically()
	}
	if isolated && c.pending == "" && c.joinTarget == "" && !c.rejoinTimer.armed {
		c.startRejoin()
	}
}

// Penalised tells the core that peer scoring has just penalised peer, so its Rank fell. If
// peer is a neighbour, OpportunisticRepair looks at the view now (see
// repairOpportunistically).
func (c *Core) Penalised(peer string) {
	if c.left || indexOf(c.active, peer) < 0 {
		return
	}
	c.opportunisticDue = true
	c.maintain()
	c.updateDue()
}

// repairOpportunistically is OpportunisticRepair: a full view with no request pending in
// which no neighbour proved useful and one misbehaved asks one passive peer, at most once a
// round, with high priority (every peer is full; a low-priority request would be refused),
// never one that misbehaved itself. The request goes through pending like a repair's, so its
// acceptance is a chosen neighbour (addActive's unforcedVictim then drops the lowest-ranked
// neighbour, a misbehaving one first) and its refusal or silence ends it like any repair
// request.
//
// maintain runs it when opportunisticDue says something changed that can make it ask: the
// active view (an eclipse evicts the proven neighbour; a hostile peer comes back), a
// neighbour's penalty (Penalised), or a new shuffle round (ranks decay, and the round's
// request may go out again). The core cannot see ranks change; looking at every neighbour's
// rank after every input instead cost 15% of a simulation's time.
func (c *Core) repairOpportunistically() {
	if !c.cfg.OpportunisticRepair || c.cfg.Rank == nil || c.opportunisticAsked {
		return
	}
	misbehaved := false
	for _, p := range c.active {
		r := c.cfg.Rank(p)
		if r > 0 && r >= c.cfg.RankProven {
			return // proven (see proven)
		}
		if r < 0 {
			misbehaved = true
		}
	}
	if !misbehaved {
		return
	}
	c.opportunisticAsked = true
	if cand := c.pickCandidate(); cand != "" && c.cfg.Rank(cand) >= 0 {
		c.stats.OpportunisticRepairs++
		c.askNeighbor(cand, true)
	}
}

// clearPending ends the outstanding repair request (answered, failed, timed out or
// abandoned), so the repair may ask the next candidate.
func (c *Core) clearPending() {
	c.pending = ""
	c.pendingTimer.stop()
}

func (c *Core) askNeighbor(cand string, high bool) {
	c.pending, c.pendingSince = cand, c.now
	c.pendingTimer.arm(c.now + c.cfg.NeighborTimeout)
	c.markAsked(cand)
	c.send(cand, Message{Type: Neighbor, HighPriority: high})
}

// retryRepair starts a new repair round at a shuffle round when the active view is still
// not full (gained: a neighbour came up during the round that ended) and no request is
// pending, or one has been pending a whole round (a stream of dead candidates would otherwise
// keep one pending at every round). A round failed if it ended with every passive peer
// refusing (all full), or if it gained no neighbour while candidates proved dead: after a
// mass failure, shuffles keep bringing the IDs of dead nodes into the passive view, each
// fails in turn (or its request waits out its timeout), so untried entries always remain and
// the round would never count as exhausted, leaving the node short among full peers for
// good. After two failed rounds in a row, this one opens with a single high-priority request,
// to the last peer that refused while it is still in the passive view (it answered, so it is
// alive), otherwise to a random passive peer: a group of nodes whose passive peers are all
// full (an island cut off by evictions) would otherwise never get back into the overlay. At
// most one such eviction per node every other shuffle round keeps the churn low in a
// saturated overlay, where a free slot always bounces around.
func (c *Core) retryRepair(gained bool) {
	exhausted := len(c.tried) > 0 && !c.hasCandidate()
	failed := exhausted || (!gained && c.deadCandidates > 0)
	c.tried = c.tried[:0]
	if !failed {
		c.failedRounds = 0
		return
	}
	c.failedRounds++
	if c.failedRounds < 2 {
		return
	}
	c.failedRounds = 0
	refuser := c.lastRefuser
	if indexOf(c.passive, refuser) < 0 {
		refuser = c.pickCandidate()
	}
	if refuser != "" {
		// A request still pending (after a mass failure, most likely to a dead peer whose
		// offer went nowhere) gives way; should its acceptance come, it is still honoured.
		c.clearPending()
		c.askNeighbor(refuser, true)
	}
}

func (c *Core) hasCandidate() bool {
	for _, p := range c.passive {
		if indexOf(c.tried, p) < 0 {
			return true
		}
	}
	return false
}

// pickCandidate returns a random passive peer not yet tried in this repair round. With
// Config.Rank, it draws among the best class of them: peers ranked above zero and at least
// RankProven (they delivered broadcasts first when they were neighbours) before the others,
// and peers ranked below zero (they misbehaved) last, so a repair goes back to peers that
// proved useful rather than to whoever a shuffle or a walk named. A rank below RankProven
// (a hello's credit: a dropper greets too) earns no preference here.
func (c *Core) pickCandidate() string {
	class := func(p string) int {
		if c.cfg.Rank == nil {
			return 0
		}
		switch {
		case c.proven(p):
			return 1
		case c.cfg.Rank(p) < 0:
			return -1
		}
		return 0
	}
	n, best := 0, -2
	for _, p := range c.passive {
		if indexOf(c.tried, p) < 0 {
			switch k := class(p); {
			case k > best:
				best, n = k, 1
			case k == best:
				n++
			}
		}
	}
	if n == 0 {
		return ""
	}
	k := c.rand.IntN(n)
	for _, p := range c.passive {
		if indexOf(c.tried, p) < 0 && class(p) == best {
			if k == 0 {
				return p
			}
			k--
		}
	}
	return ""
}

func (c *Core) addTried(p string) {
	if len(c.tried) >= c.cfg.PassiveSize {
		// Keep the list bounded: forget refusers that already left the passive view.
		kept := c.tried[:0]
		for _, q := range c.tried {
			if indexOf(c.passive, q) >= 0 {
				kept = append(kept, q)
			}
		}
		clear(c.tried[len(kept):])
		c.tried = kept
		if len(c.tried) >= c.cfg.PassiveSize {
			return
		}
	}
	c.tried = append(c.tried, p)
}

// addKind says how a newcomer came to the active view (see addActive).
type addKind uint8

const (
	// addChosen: this node asked it (its repair, its join) and it accepted.
	addChosen addKind = iota
	// addInbound: it asked this node, which had room.
	addInbound
	// addForced: it asked this node (high-priority NEIGHBOR, JOIN) or ended a walk this node
	// did not start, and may take a slot from a neighbour within the round's budget.
	addForced
)

// chosenOrForced is addForced for an acceptance of a request this node did not make for
// itself (a join walk's end), addChosen otherwise.
func chosenOrForced(forced bool) addKind {
	if forced {
		return addForced
	}
	return addChosen
}

// addActive puts p into the active view, dropping a random neighbour (with DISCONNECT, into
// the passive view) if full. It reports whether p was added (false: Self or already active,
// or no slot could be freed).
//
// how says whether this node chose p. A newcomer it did not choose (addForced: another
// peer's high-priority NEIGHBOR, JOIN, or join-walk end) may evict only while the round's
// MaxForcedEvictions budget lasts, never one of the protected neighbours
// (ProtectedNeighbors), and with OutboundQuota only a neighbour that asked too once those
// fill their share of the slots.
func (c *Core) addActive(p string, how addKind) bool {
	if p == c.cfg.Self || indexOf(c.active, p) >= 0 {
		return false
	}
	if len(c.active) >= c.cfg.ActiveSize || (how != addChosen && c.inboundFull()) {
		var v int
		if how != addChosen {
			if v = c.evictable(); v < 0 {
				return false
			}
			c.forcedEvictions++
			c.stats.ForcedEvictions++
		} else {
			v = c.unforcedVictim()
		}
		victim := c.active[v]
		c.removeActive(victim)
		c.asked = removeValue(c.asked, victim)
		c.send(victim, Message{Type: Disconnect})
		c.addPassive(victim)
	}
	// Whoever brought p (its request, its acceptance of ours), any answer still on the way
	// from it is now a no-op, and must stay one even if we drop p before it arrives.
	c.asked = removeValue(c.asked, p)
	if p == c.pending {
		c.clearPending()
	}
	teacher := ""
	if i := indexOf(c.passive, p); i >= 0 {
		teacher = c.passiveFrom[i]
		c.dropPassiveAt(i)
	}
	c.active = append(c.active, p)
	c.activeSince = append(c.activeSince, c.now)
	c.activeFrom = append(c.activeFrom, teacher)
	c.activeChosen = append(c.activeChosen, how == addChosen)
	c.joined, c.gained, c.opportunisticDue = true, true, true
	c.out.Events = append(c.out.Events, Event{Type: NeighborUp, Peer: p})
	return true
}

// inboundFull reports whether the neighbours this node did not choose fill every slot
// OutboundQuota leaves them.
func (c *Core) inboundFull() bool {
	quota := c.outboundQuota()
	if quota == 0 {
		return false
	}
	askers := 0
	for _, chosen := range c.activeChosen {
		if !chosen {
			askers++
		}
	}
	return askers >= c.cfg.ActiveSize-quota
}

// outboundQuota is the OutboundQuota in force: always with OutboundQuotaFor 0, otherwise
// only for OutboundQuotaFor after this node cut off a peer that misbehaved (Distrust). An
// overlay where nobody misbehaves keeps the paper's behaviour, where any peer that asks may
// fill a free slot, and repairs find room as easily as without the defence: with the quota in
// force, a random overlay of 300 nodes left two nodes cut off together after a mass failure.
// Neighbours that asked before the quota came into force keep their slots until they leave
// or a request displaces them (once askers fill their share, requests displace only askers):
// shedding them at once did no better (1,000 nodes under eclipse, seeds 1–4).
func (c *Core) outboundQuota() int {
	if c.cfg.OutboundQuotaFor > 0 && (c.quotaUntil == 0 || c.now >= c.quotaUntil) {
		return 0
	}
	return c.cfg.OutboundQuota
}

// indices returns the active view's indices, only those of neighbours that asked with
// askersOnly, in evictScratch (reused by the next call).
func (c *Core) indices(askersOnly bool) []int {
	c.evictScratch = c.evictScratch[:0]
	for i := range c.active {
		if !askersOnly || !c.activeChosen[i] {
			c.evictScratch = append(c.evictScratch, i)
		}
	}
	return c.evictScratch
}

// roomForInbound reports whether a peer that asks gets a free slot, evicting no one.
func (c *Core) roomForInbound() bool {
	return len(c.active) < c.cfg.ActiveSize && !c.inboundFull()
}

// canEvictFor reports whether a newcomer this node did not choose could get a slot now.
func (c *Core) canEvictFor() bool {
	if c.roomForInbound() {
		return true
	}
	if c.cfg.MaxForcedEvictions > 0 && c.forcedEvictions >= c.cfg.MaxForcedEvictions {
		return false
	}
	askersOnly := c.inboundFull()
	return len(c.candidates(askersOnly)) > 0 || c.misbehaving(askersOnly) >= 0
}

// misbehaving returns the index of the lowest-ranked neighbour if it is ranked below zero
// (it misbehaved: peer scoring penalised it), else -1. Such a neighbour keeps no protection:
// it is the first to go for any newcomer, whatever its age, so that a hostile peer that won
// a slot early (before any broadcast could show it drops them) does not keep it once it
// misbehaves.
func (c *Core) misbehaving(askersOnly bool) int {
	if c.cfg.Rank == nil {
		return -1
	}
	idx := c.indices(askersOnly)
	if len(idx) == 0 {
		return -1
	}
	if i := c.lowestRankedOf(idx); c.cfg.Rank(c.active[i]) < 0 {
		return i
	}
	return -1
}

// evictable returns the index of a neighbour another peer's request may evict, or -1 when
// the round's budget is spent or every neighbour is protected. It picks among the fresh
// neighbours (up for less than ProtectAfter) if there are any, else among the unprotected
// ones: a peer that pushed its way in is the first to be pushed out again, so Sybils
// flooding requests mostly evict each other, not the honest neighbours that both ends may
// not protect (protection is per end). With no defence on it draws exactly as the paper's
// random eviction does.
func (c *Core) evictable() int {
	if c.cfg.MaxForcedEvictions > 0 && c.forcedEvictions >= c.cfg.MaxForcedEvictions {
		return -1
	}
	askersOnly := c.inboundFull()
	if i := c.misbehaving(askersOnly); i >= 0 {
		return i
	}
	cand := c.candidates(askersOnly)
	if len(cand) == 0 {
		return -1
	}
	return c.lowestRankedOf(cand)
}

// lowestRankedOf returns the index, among the active-view indices idx (not empty), of a
// neighbour to evict: a random one, or with Config.Rank a random one among the lowest ranked
// (peers that misbehaved before peers that did nothing useful, and those before peers that
// delivered broadcasts first).
func (c *Core) lowestRankedOf(idx []int) int {
	if c.cfg.Rank == nil {
		return idx[c.rand.IntN(len(idx))]
	}
	best, ties := -1, 0
	var low float64
	for _, i := range idx {
		r := c.cfg.Rank(c.active[i])
		switch {
		case best < 0 || r < low:
			best, low, ties = i, r, 1
		case r == low:
			// Reservoir sampling: each of the ties ends up chosen with equal chance.
			ties++
			if c.rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return best
}

// unforcedVictim picks the neighbour to drop for a peer this node chose itself (its repair's
// or its join's acceptance arriving after the view filled up): the paper drops a random one;
// with ProtectedNeighbors set, the fresh and unprotected neighbours go first, so a slot
// grabbed by another peer's request in the meantime cannot cost an old neighbour.
func (c *Core) unforcedVictim() int {
	if i := c.misbehaving(false); i >= 0 {
		return i
	}
	// With OutboundQuota in force a full view holds at least that many chosen neighbours
	// once the askers are within their share (they get the other slots only), so this
	// eviction never takes it below the quota.
	cand := c.candidates(false)
	if c.cfg.ProtectedNeighbors == 0 || len(cand) == 0 {
		cand = c.indices(false)
	}
	return c.lowestRankedOf(cand)
}

// candidates returns the indices of the neighbours a newcomer may displace: those not
// protected (the oldest, up to ProtectedNeighbors and at most ActiveSize-1 so joiners always
// have a way in, of the neighbours up for ProtectAfter), and among them only the fresh ones
// (up for less than ProtectAfter) when there are any. With askersOnly (OutboundQuota's slots
// for peers that ask are all taken) only neighbours that asked count, for protection too:
// no request displaces a chosen neighbour, so those need none, and the old ones that asked
// keep theirs. The slice is reused by the next call.
func (c *Core) candidates(askersOnly bool) []int {
	c.evictScratch = c.evictScratch[:0]
	limit := min(c.cfg.ProtectedNeighbors, c.cfg.ActiveSize-1)
	protected, fresh := 0, 0
	// The view is oldest first: the protected are a prefix of it, the fresh a suffix.
	for i := range c.active {
		if askersOnly && c.activeChosen[i] {
			continue
		}
		aged := c.now-c.activeSince[i] >= c.cfg.ProtectAfter
		if aged && protected < limit {
			protected++
			continue
		}
		if !aged {
			if fresh == 0 {
				// The first fresh one: only fresh ones count from now on.
				c.evictScratch = c.evictScratch[:0]
			}
			fresh++
			c.evictScratch = append(c.evictScratch, i)
		} else if fresh == 0 {
			c.evictScratch = append(c.evictScratch, i)
		}
	}
	return c.evictScratch
}

// removeActive takes p out of the active view with a NeighborDown event; false if absent.
func (c *Core) removeActive(p string) bool {
	i := indexOf(c.active, p)
	if i < 0 {
		return false
	}
	c.active = removeAt(c.active, i)
	copy(c.activeSince[i:], c.activeSince[i+1:])
	c.activeSince = c.activeSince[:len(c.activeSince)-1]
	c.activeFrom = removeAt(c.activeFrom, i)
	c.activeChosen = append(c.activeChosen[:i], c.activeChosen[i+1:]...)
	c.opportunisticDue = true
	c.out.Events = append(c.out.Events, Event{Type: NeighborDown, Peer: p})
	return true
}

// addPassive inserts p, known first-hand (it was our neighbour, or it contacted us), unless it
// is Self, active or already known; a full view drops a random entry.
func (c *Core) addPassive(p string) {
	c.insertPassive(p, "", nil, nil)
}

// mergePassive adds a shuffle sample taught by peer from, dropping first (when full) the
// entries in prefer: what we just sent away, so the exchange trades entries.
func (c *Core) mergePassive(nodes []string, from string, prefer []string) {
	next := 0
	for _, p := range nodes {
		c.insertPassive(p, from, prefer, &next)
	}
}

// insertPassive adds p, taught by peer from ("" for first-hand), unless it is Self, active or
// already passive. A teacher that already taught MaxPassiveFromPeer entries gives up its own
// oldest one (with SampledPassive: its worst-ranked one, and only for a better-ranked p).
// Otherwise, when the view is full, SampledPassive keeps the PassiveSize best-ranked entries
// (p replaces the worst-ranked entry if it ranks better, else is dropped); without it, p
// evicts the first entry of prefer[*next:] still present, else a random one. The cursor next
// walks prefer once across a whole merge: an entry found absent, or already evicted, is not
// looked for again, which keeps a merge at O(len(nodes)+len(prefer)) scans of the view
// rather than their product.
func (c *Core) insertPassive(p, from string, prefer []string, next *int) {
	if p == "" || p == c.cfg.Self || indexOf(c.active, p) >= 0 || indexOf(c.passive, p) >= 0 {
		return
	}
	if from == p {
		from = "" // a peer naming itself tells us nothing we could not learn from its link
	}
	var rank uint64
	if c.cfg.SampledPassive {
		rank = c.samplePlace(p)
	}
	if limit := c.cfg.MaxPassiveFromPeer; limit > 0 && from != "" {
		victim, n := -1, 0
		for i, t := range c.passiveFrom {
			if t != from {
				continue
			}
			n++
			if victim < 0 || (c.cfg.SampledPassive && c.passiveRank[i] > c.passiveRank[victim]) {
				victim = i // the oldest, or with sampling the worst-ranked
			}
		}
		if n >= limit {
			if c.cfg.SampledPassive && rank >= c.passiveRank[victim] {
				c.stats.PassiveNotSampled++
				return
			}
			c.stats.PassiveCapped++
			c.dropPassiveAt(victim)
		}
	}
	if len(c.passive) >= c.cfg.PassiveSize {
		victim := -1
		switch {
		case c.cfg.SampledPassive:
			for i, r := range c.passiveRank {
				if victim < 0 || r > c.passiveRank[victim] {
					victim = i
				}
			}
			if rank >= c.passiveRank[victim] {
				c.stats.PassiveNotSampled++
				return
			}
		default:
			for next != nil && victim < 0 && *next < len(prefer) {
				victim = indexOf(c.passive, prefer[*next])
				*next++
			}
			if victim < 0 {
				victim = c.rand.IntN(len(c.passive))
			}
		}
		c.dropPassiveAt(victim)
	}
	c.passive = append(c.passive, p)
	c.passiveFrom = append(c.passiveFrom, from)
	if c.cfg.SampledPassive {
		c.passiveRank = append(c.passiveRank, rank)
	}
}

// samplePlace is p's place in the passive sample (SampledPassive), lower is kept first: a
// peer proven useful now (see proven) comes ahead of every other, and within each group the
// keyed sampleRank decides. The place is fixed when p enters the view.
func (c *Core) samplePlace(p string) uint64 {
	place := sampleRank(c.sampleKey, p) >> 1
	if !c.proven(p) {
		place |= 1 << 63
	}
	return place
}

// proven reports whether Rank says p proved useful: ranked above zero and at least
// RankProven (it delivered broadcasts first when it was a neighbour).
func (c *Core) proven(p string) bool {
	if c.cfg.Rank == nil {
		return false
	}
	r := c.cfg.Rank(p)
	return r > 0 && r >= c.cfg.RankProven
}

// sampleRank is p's rank in this core's min-wise sample (SampledPassive): a keyed 64-bit hash
// (FNV-1a over the key and the ID, then a SplitMix64 finaliser so every bit depends on every
// byte). The view keeps the IDs of lowest rank it has heard of; under a key the peers do not
// know, that is a uniform sample of the distinct IDs heard, however often one was repeated.
func sampleRank(key uint64, p string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for k := range 8 {
		h = (h ^ (key >> (8 * k) & 0xff)) * prime
	}
	for i := 0; i < len(p); i++ {
		h = (h ^ uint64(p[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// dropPassive removes p from the passive view, if there.
func (c *Core) dropPassive(p string) {
	if i := indexOf(c.passive, p); i >= 0 {
		c.dropPassiveAt(i)
	}
}

func (c *Core) dropPassiveAt(i int) {
	c.passive = removeAt(c.passive, i)
	c.passiveFrom = removeAt(c.passiveFrom, i)
	if c.passiveRank != nil {
		c.passiveRank = slices.Delete(c.passiveRank, i, i+1)
	}
}

// randomActiveExcept returns a random active peer other than a and b, or "" if none.
func (c *Core) randomActiveExcept(a, b string) string {
	n := 0
	for _, p := range c.active {
		if p != a && p != b {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	k := c.rand.IntN(n)
	for _, p := range c.active {
		if p != a && p != b {
			if k == 0 {
				return p
			}
			k--
		}
	}
	return ""
}

// appendSample appends up to k distinct random entries of src (other than exclude) to dst.
// Rejection sampling needs no scratch space, which matters with 100,000 cores in one process;
// k is small next to the views, so retries are rare.
func (c *Core) appendSample(dst, src []string, k int, exclude string) []string {
	eligible := len(src)
	if exclude != "" && indexOf(src, exclude) >= 0 {
		eligible--
	}
	start := len(dst)
	if k >= eligible {
		for _, p := range src {
			if p != exclude {
				dst = append(dst, p)
			}
		}
		// Random order all the same: a receiver that keeps a prefix must not always keep
		// the same entries.
		picked := dst[start:]
		c.rand.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
		return dst
	}
	for len(dst)-start < k {
		p := src[c.rand.IntN(len(src))]
		if p != exclude && indexOf(dst[start:], p) < 0 {
			dst = append(dst, p)
		}
	}
	return dst
}

func (c *Core) send(to string, m Message) {
	c.out.Messages = append(c.out.Messages, Envelope{To: to, Msg: m})
	c.stats.MessagesSent[m.Type]++
}

func indexOf(s []string, p string) int {
	for i, q := range s {
		if q == p {
			return i
		}
	}
	return -1
}

// removeAt deletes s[i] keeping the order (views are small; order keeps output stable).
func removeAt(s []string, i int) []string {
	copy(s[i:], s[i+1:])
	s[len(s)-1] = ""
	return s[:len(s)-1]
}

func removeValue(s []string, p string) []string {
	if i := indexOf(s, p); i >= 0 {
		return removeAt(s, i)
	}
	return s
}
