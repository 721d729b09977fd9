// Package overlay is the composition of HyParView (package membership) and Plumtree (package
// gossip) for one node: the one place that says how the two protocol cores are wired
// together, so the runtime (package node) and the simulator (package sim) drive the same
// composition instead of each writing its own. It is modelled on iroh-gossip's proto/topic.rs
// (one state machine per topic that owns the swarm membership and the broadcast tree) and on
// etcd-io/raft's Step/Tick/Ready: a pure, deterministic state machine that a driver feeds with
// messages, time and link failures, and whose output the driver collects and carries out.
//
// The rule it owns:
//   - Every call that touches a core first advances that core's clock to the driver's now.
//   - Membership's NeighborUp and NeighborDown events feed the gossip core (advanced to now
//     first) before they reach the driver, so Plumtree's eager and lazy peers are always
//     exactly HyParView's active view once Ready has been collected.
//   - NeedContacts is passed up: only the driver can find live nodes (the signaling server's
//     peer list, or in the simulator any live node), and it answers with Join. Membership
//     raises it when the node is isolated and out of contacts, and also when its repair has
//     stalled for membership.Config.StalledRoundsBeforeContacts rounds (a passive view of
//     dead or made-up IDs).
//   - Ready is one round: membership's messages and events, then, with those events fed to
//     gossip, gossip's messages and deliveries. After it both cores are quiet, unless the
//     driver called in while carrying it out (Join on NeedContacts) or peer scoring refused a
//     peer (membership then repairs in the next round), so a driver drains with
//     `for p.HasReady() { rd := p.Ready(); ... }`.
//   - Peer scoring (package scoring) weighs what the cores report: gossip's Misbehaviour
//     lowers the score of the peer at fault (the origin, for a broadcast beyond the origin's
//     budget), membership's refusals that of their sender (scoring.MembershipSpam,
//     scoring.StrangerWalk), and each first live delivery raises the score of the peer that
//     brought it. A
//     peer whose score falls below the threshold is listed in Ready.Disconnect (the driver
//     closes its link) and reported to membership as down; during its cooling period its
//     messages are ignored (Stats.IgnoredFromRefused), nothing is sent to it (a membership
//     message to it is dropped and reported to membership as a failed send), and a NeighborUp
//     for it is undone at once. Refused tells the driver whom not to dial or accept.
//   - NextDeadline is the earlier of the two cores' deadlines. It recomputes only the
//     deadline of a core touched since the last call, so a discrete-event driver that woke
//     one core does not pay for the other.
//
// Like the cores, the package touches no network, clock, goroutine, lock or global random
// source; time is whatever the driver says (a monotonic duration since its start), and a Peer
// is owned by one goroutine.
package overlay

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/routing"
	"github.com/rtcmesh/rtcmesh/scoring"
)

// Config configures one Peer.
type Config struct {
	// Self is this node's ID, given to both cores. Required.
	Self string
	// Membership is the HyParView core's configuration. Its Rand is required and Contacts
	// are the nodes to join through; Self is overwritten with Config.Self.
	Membership membership.Config
	// Gossip is the Plumtree core's configuration. Its Rand is required and must not be
	// Membership.Rand: each core owns its source, so one core's draws never shift the
	// other's. Self is overwritten with Config.Self.
	Gossip gossip.Config
	// Scoring configures peer scoring; the zero value (Enabled false) keeps no scores and
	// refuses no one.
	Scoring scoring.Config
	// Routing configures routing through the overlay (route.go); the zero value (Enabled
	// false) routes nothing.
	Routing routing.Config
}

// DefaultConfig returns the cores' defaults (membership.DefaultConfig, gossip.DefaultConfig),
// scoring.DefaultConfig and routing.DefaultConfig. Self and both Rand fields must still be set.
func DefaultConfig() Config {
	return Config{Membership: membership.DefaultConfig(), Gossip: gossip.DefaultConfig(), Scoring: scoring.DefaultConfig(),
		Routing: routing.DefaultConfig()}
}

// DisableDefences turns off every defence against hostile peers: membership's
// (membership.Config.DisableDefences), the broadcast defences (gossip.Config.DisableDefences)
// and peer scoring, for figures beside the defended runs.
func (c *Config) DisableDefences() {
	c.Membership.DisableDefences()
	c.Gossip.DisableDefences()
	c.Scoring.DisableDefences()
}

// validate checks what the composition needs, in field order; each core checks its own
// fields when it is created.
func (c *Config) validate() error {
	switch {
	case c.Self == "":
		return errors.New("overlay: Config.Self is required")
	case c.Membership.Rand == nil:
		return errors.New("overlay: Config.Membership.Rand is required (a seeded source, one per core)")
	case c.Gossip.Rand == nil:
		return errors.New("overlay: Config.Gossip.Rand is required (a seeded source, one per core)")
	case c.Membership.Rand == c.Gossip.Rand:
		return errors.New("overlay: Config.Membership.Rand and Config.Gossip.Rand must be different sources")
	}
	return nil
}

// noDeadline marks a core with no armed timer in the deadline cache.
const noDeadline = time.Duration(math.MaxInt64)

// Ready is one round of output, to be carried out in this order: send Membership, hand
// Events to the application (answering NeedContacts with Join), send Gossip, hand
// Deliveries to the application, close the links of Disconnect. Messages to one destination
// must be sent in the order listed. The slices belong to the caller.
type Ready struct {
	// Membership are HyParView messages to send.
	Membership []membership.Envelope
	// Events are membership's events: NeighborUp and NeighborDown (already given to the
	// gossip core) and NeedContacts.
	Events []membership.Event
	// Gossip are Plumtree messages to send.
	Gossip []gossip.Envelope
	// Deliveries are broadcasts for the application, once per message.
	Deliveries []gossip.Delivery
	// Misbehaviour are the broadcasts the gossip core refused, with the peer that sent each,
	// and the other misbehaviour it saw: what peer scoring weighs.
	Misbehaviour []gossip.Misbehaviour
	// MembershipMisbehaviour are the HyParView messages the membership core refused because
	// of their sender (unsolicited shuffle replies, floods, walks from strangers): peer
	// scoring has already weighed them (see membershipOffence); listed for logs and metrics.
	MembershipMisbehaviour []membership.Misbehaviour
	// Disconnect are the peers whose score fell below the threshold: the driver closes
	// their links, and refuses to dial or accept them while Refused says so.
	Disconnect []string
	// Routing are routing messages to send to neighbours (VIEWs and ROUTED envelopes,
	// route.go), after Gossip; Routed are the ROUTED envelopes whose target is this node,
	// for the runtime to verify and act on.
	Routing []routing.Envelope
	Routed  []routing.Message
}

// Stats are both cores' counters and peer scoring's.
type Stats struct {
	Membership membership.Stats
	Gossip     gossip.Stats
	Scoring    scoring.Stats
	// IgnoredFromRefused counts messages from refused peers dropped unread; DroppedToRefused
	// messages to them not sent.
	IgnoredFromRefused, DroppedToRefused uint64
}

// Peer is one node's HyParView and Plumtree cores, composed. It is not safe for concurrent
// use: one goroutine (the driver) owns it. A Peer holds no pointer into itself, so a driver
// may keep the value New returns in its own storage and move it there (the simulator keeps
// 100,000 in one growing slice, which saves a pointer chase per event); only one copy may be
// used.
type Peer struct {
	mem   *membership.Core
	gsp   *gossip.Core
	score *scoring.Scorer
	// rt routes signed envelopes through the overlay (route.go); arwl and shuffleTTL are
	// membership's walk lengths, from which it counts a walk's hops.
	rt               *routing.Router
	arwl, shuffleTTL uint8
	// ignored and dropped are Stats.IgnoredFromRefused and Stats.DroppedToRefused.
	ignored, dropped uint64

	// gspNow is the gossip core's clock as last set by a Tick; gspStarted says it was
	// ticked at all. Feeding membership events advances it only when it is behind.
	gspNow     time.Duration
	gspStarted bool
	// now is the latest time the driver gave.
	now time.Duration

	// memDue and gspDue cache each core's NextDeadline (noDeadline when none); memDirty and
	// gspDirty say the core was touched since, so the cache must be refreshed.
	memDue, gspDue     time.Duration
	memDirty, gspDirty bool
	// memOut and gspOut say the core was touched since Ready last drained it. A core nobody
	// called has no output, so HasReady and Ready skip it without reading its memory: at
	// 100,000 simulated nodes that read is a cache miss per event.
	memOut, gspOut bool
}

// New validates cfg and creates both cores. Errors wrap the core's own.
func New(cfg Config) (*Peer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	mc, gc := cfg.Membership, cfg.Gossip
	mc.Self, gc.Self = cfg.Self, cfg.Self
	score, err := scoring.New(cfg.Scoring)
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	if score.Enabled() && mc.Rank == nil {
		// Membership's evictions and repairs prefer peers that earned score (see
		// membership.Config.Rank). The closure holds the Scorer, not the Peer, so the Peer
		// stays free to move.
		mc.Rank = score.Rank
	}
	mem, err := membership.New(mc)
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	gsp, err := gossip.New(gc)
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	rt, err := newRouter(&cfg)
	if err != nil {
		return nil, err
	}
	return &Peer{mem: mem, gsp: gsp, score: score, rt: rt, arwl: mc.ARWL, shuffleTTL: mc.ShuffleTTL,
		memDue: noDeadline, gspDue: noDeadline, memDirty: true, gspDirty: true}, nil
}

// Self returns this node's ID.
func (p *Peer) Self() string { return p.mem.Self() }

func (p *Peer) setNow(now time.Duration) {
	if now > p.now {
		p.now = now
	}
}

// tickMembership advances the membership core to now and fires its due timers.
func (p *Peer) tickMembership(now time.Duration) {
	p.setNow(now)
	p.mem.Tick(now)
	p.memDirty, p.memOut = true, true
}

// tickGossip advances the gossip core to now and fires its due timers.
func (p *Peer) tickGossip(now time.Duration) {
	p.setNow(now)
	p.gsp.Tick(now)
	if now > p.gspNow {
		p.gspNow = now
	}
	p.gspStarted = true
	p.gspDirty, p.gspOut = true, true
}

// Tick advances both cores to now (a monotonic duration since the driver started; an earlier
// value counts as the current time) and fires every timer that is due, and the gossip core's
// cache and seen-set expiry. A driver with a periodic clock (the runtime) calls it on every
// tick; the first call starts the cores' clocks and must come before anything else.
func (p *Peer) Tick(now time.Duration) {
	p.tickMembership(now)
	p.tickGossip(now)
}

// TickDue fires the timers of the cores whose deadline (NextDeadline) has come, and leaves the
// other core alone: what a discrete-event driver (the simulator) calls when it wakes the peer
// at NextDeadline. A core left alone catches up on its next call, which changes no output:
// every call advances the core it touches first.
func (p *Peer) TickDue(now time.Duration) {
	p.refreshDeadlines()
	mem, gsp := p.memDue <= now, p.gspDue <= now
	if mem {
		p.tickMembership(now)
	}
	if gsp {
		p.tickGossip(now)
	}
}

// StepMembership hands the membership core a HyParView message that arrived from peer from.
// A message the core refuses returns its error (wrapping membership.ErrInvalidMessage) and
// changes nothing but the core's counters; the runtime closes that peer's link.
func (p *Peer) StepMembership(now time.Duration, from string, m membership.Message) error {
	p.setNow(now)
	if p.Refused(now, from) {
		p.ignored++
		return nil
	}
	p.tickMembership(now)
	if err := p.mem.Step(from, m); err != nil {
		return err
	}
	p.learnWalk(now, from, &m)
	return nil
}

// StepGossip hands the gossip core a Plumtree message that arrived from peer from. A message
// the core refuses returns its error and changes nothing but the core's counters.
func (p *Peer) StepGossip(now time.Duration, from string, m gossip.Message) error {
	p.setNow(now)
	if p.Refused(now, from) {
		p.ignored++
		return nil
	}
	p.tickGossip(now)
	return p.gsp.Step(from, m)
}

// Refused reports whether peer is in the cooling period that follows a score below the
// threshold: the driver must neither dial it nor accept a link from it.
func (p *Peer) Refused(now time.Duration, peer string) bool {
	return p.score.Enabled() && p.score.Refused(now, peer)
}

// Score returns peer's score at now (0 without a record, or with scoring off).
func (p *Peer) Score(now time.Duration, peer string) float64 { return p.score.Score(now, peer) }

// PeerDown reports that peer is unreachable (its link failed, or a send to it failed).
// Membership repairs its active view; the NeighborDown it emits reaches gossip through Ready.
func (p *Peer) PeerDown(now time.Duration, peer string) {
	p.tickMembership(now)
	p.mem.PeerDown(peer)
}

// Join joins (again) through contact, or through the configured contacts when contact is ""
// (see membership.Core.Join). It is also the answer to NeedContacts.
func (p *Peer) Join(now time.Duration, contact string) {
	p.tickMembership(now)
	p.mem.Join(contact)
}

// Leave leaves the overlay gracefully: DISCONNECT to every neighbour (see
// membership.Core.Leave); the NeighborDown events reach gossip through Ready.
func (p *Peer) Leave(now time.Duration) {
	p.tickMembership(now)
	p.mem.Leave()
}

// Broadcast starts a broadcast of payload from this node (see gossip.Core.Broadcast); it is
// delivered locally through Ready. payload must not be modified afterwards. The core's error
// (a payload over Gossip.MaxPayload) is returned as it is: it already names the package and
// the bound, and the application sees it through the runtime.
func (p *Peer) Broadcast(now time.Duration, payload []byte) (gossip.MessageID, error) {
	p.tickGossip(now)
	return p.gsp.Broadcast(payload)
}

// HasReady reports whether Ready has anything to return.
func (p *Peer) HasReady() bool {
	return (p.memOut && p.mem.HasReady()) || (p.gspOut && p.gsp.HasReady()) || p.rt.HasReady()
}

// Ready collects one round of output (see Ready for the order to carry it out in). The
// membership events are given to the gossip core before it is asked for its output, so the
// gossip part already reflects them.
func (p *Peer) Ready() Ready {
	var rd Ready
	var greeted []string
	if p.memOut && p.mem.HasReady() {
		mr := p.mem.Ready()
		rd.Membership, rd.Events, rd.MembershipMisbehaviour = mr.Messages, mr.Events, mr.Misbehaviour
		p.routingEvents(mr.Events)
		if len(mr.Events) > 0 {
			// The gossip core must see the events at the current time, like any other
			// input; it is already there unless only membership was touched.
			if !p.gspStarted || p.gspNow < p.now {
				p.tickGossip(p.now)
			}
			p.gspDirty, p.gspOut = true, true
			for _, e := range mr.Events {
				switch e.Type {
				case membership.NeighborUp:
					p.gsp.NeighborUp(e.Peer)
				case membership.NeighborDown:
					p.gsp.NeighborDown(e.Peer)
				}
			}
		}
	}
	p.memOut = false
	if p.gspOut && p.gsp.HasReady() {
		gr := p.gsp.Ready()
		rd.Gossip, rd.Deliveries, rd.Misbehaviour = gr.Messages, gr.Deliveries, gr.Misbehaviour
		greeted = gr.Greeted
	}
	p.gspOut = false
	if p.score.Enabled() {
		p.judge(&rd, greeted)
	}
	p.collectRouting(&rd)
	return rd
}

// judge feeds peer scoring with one round of output and the neighbours greeted in it,
// carries out its verdicts (see the package doc) and removes what must not reach a refused
// peer.
func (p *Peer) judge(rd *Ready, greeted []string) {
	now := p.now
	var penalised []string
	for _, mb := range rd.Misbehaviour {
		peer, offence, ok := offenceOf(mb)
		if ok && peer != p.Self() {
			p.score.Penalise(now, peer, offence)
			penalised = append(penalised, peer)
		}
	}
	for _, mb := range rd.MembershipMisbehaviour {
		if mb.Peer != p.Self() {
			p.score.Penalise(now, mb.Peer, membershipOffence(mb.Reason))
			penalised = append(penalised, mb.Peer)
		}
	}
	for _, d := range rd.Deliveries {
		if !d.History && d.From != "" {
			p.score.Credit(now, d.From)
		}
	}
	for _, peer := range greeted {
		p.score.Greeted(now, peer)
	}
	rd.Disconnect = p.score.Disconnects()
	var down []string
	for _, e := range rd.Events {
		if e.Type == membership.NeighborUp && p.score.Refused(now, e.Peer) {
			down = append(down, e.Peer)
		}
	}
	keep := rd.Membership[:0]
	for _, env := range rd.Membership {
		if p.score.Refused(now, env.To) {
			p.dropped++
			down = append(down, env.To)
			continue
		}
		keep = append(keep, env)
	}
	rd.Membership = keep
	keepG := rd.Gossip[:0]
	for _, env := range rd.Gossip {
		if p.score.Refused(now, env.To) {
			p.dropped++
			continue
		}
		keepG = append(keepG, env)
	}
	rd.Gossip = keepG
	// Membership hears of each refused peer as a failed link: it leaves the views, and
	// its NeighborDown reaches gossip and the driver in the next round. A peer scoring has
	// just cut off is distrusted: the passive entries it, or its teacher, taught go with it.
	p.tickMembership(now)
	for _, peer := range rd.Disconnect {
		p.mem.Distrust(peer)
	}
	for _, peer := range down {
		p.mem.PeerDown(peer)
	}
	// A penalised neighbour may now be worth replacing (membership OpportunisticRepair).
	for _, peer := range penalised {
		p.mem.Penalised(peer)
	}
}

// offenceOf maps a gossip misbehaviour to the peer at fault and its offence; refusals an
// honest relay can cause (replay, clock, self-origin) are not offences.
func offenceOf(mb gossip.Misbehaviour) (string, scoring.Offence, bool) {
	switch mb.Reason {
	case gossip.RefusedSignature:
		return mb.Peer, scoring.InvalidSignature, true
	case gossip.RefusedLinkRate:
		return mb.Peer, scoring.Flood, true
	case gossip.RefusedOriginRate:
		// The origin signed every one of these; the link may be an honest relay.
		return mb.Origin, scoring.Flood, true
	case gossip.ExcessIHave:
		return mb.Peer, scoring.IHaveSpam, true
	case gossip.ExcessGraft:
		return mb.Peer, scoring.GraftSpam, true
	case gossip.BrokenPromise:
		return mb.Peer, scoring.BrokenPromise, true
	case gossip.UnansweredPull:
		return mb.Peer, scoring.UnansweredPull, true
	case gossip.SilentNeighbor:
		return mb.Peer, scoring.SilentNeighbor, true
	}
	return "", 0, false
}

// membershipOffence maps a membership refusal to its offence: walks from a stranger, which an
// honest neighbour sends in a race with a DISCONNECT, weigh lightly; unsolicited or oversized
// replies and rate-limited messages are spam.
func membershipOffence(r membership.Refusal) scoring.Offence {
	switch r {
	case membership.RefusedStrangerShuffle, membership.RefusedStrangerForwardJoin:
		return scoring.StrangerWalk
	}
	return scoring.MembershipSpam
}

// refreshDeadlines recomputes the cached deadline of each core touched since the last call.
func (p *Peer) refreshDeadlines() {
	if p.memDirty {
		p.memDue = deadline(p.mem.NextDeadline())
		p.memDirty = false
	}
	if p.gspDirty {
		p.gspDue = deadline(p.gsp.NextDeadline())
		p.gspDirty = false
	}
}

func deadline(at time.Duration, ok bool) time.Duration {
	if !ok {
		return noDeadline
	}
	return at
}

// NextDeadline returns the earliest time at which a core has a timer to fire (membership's
// shuffle round, request timeouts and rejoin backoff; gossip's Grafts and batched IHaves), so
// a discrete-event driver can call TickDue exactly then. It reports false when neither core
// has one. Gossip's cache and seen-set expiry produce no output and are not reported.
func (p *Peer) NextDeadline() (time.Duration, bool) {
	p.refreshDeadlines()
	at := min(p.memDue, p.gspDue)
	if at == noDeadline {
		return 0, false
	}
	return at, true
}

// ActiveView returns a copy of the membership active view: the neighbours.
func (p *Peer) ActiveView() []string { return p.mem.ActiveView() }

// PassiveView returns a copy of the membership passive view.
func (p *Peer) PassiveView() []string { return p.mem.PassiveView() }

// EagerPeers returns the neighbours the broadcast tree pushes payloads to, sorted (a copy).
func (p *Peer) EagerPeers() []string { return p.gsp.EagerPeers() }

// LazyPeers returns the neighbours that get only announcements, sorted (a copy).
func (p *Peer) LazyPeers() []string { return p.gsp.LazyPeers() }

// Stats returns both cores' counters and peer scoring's (at the latest time the driver gave).
func (p *Peer) Stats() Stats {
	return Stats{Membership: p.mem.Stats(), Gossip: p.gsp.Stats(), Scoring: p.score.Stats(p.now),
		IgnoredFromRefused: p.ignored, DroppedToRefused: p.dropped}
}
