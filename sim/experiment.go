package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
)

// Protocol names the broadcast protocol an experiment runs over HyParView.
type Protocol string

const (
	// Plumtree is the epidemic broadcast tree (package gossip).
	Plumtree Protocol = "plumtree"
	// Flood is eager push to every active neighbour, the papers' baseline.
	Flood Protocol = "flood"
)

// Experiment is one run of the protocols: build an overlay, let it stabilise, optionally crash
// a fraction of it, then broadcast messages (optionally under churn) and measure them.
type Experiment struct {
	// Nodes is the size of the network before failures.
	Nodes int
	// Protocol is Plumtree or Flood.
	Protocol Protocol
	// Messages is how many broadcasts are measured, each from a random live node.
	Messages int
	// FailFraction of the nodes crash at the same instant after stabilisation, before the
	// messages are sent.
	FailFraction float64
	// Churn nodes crash and Churn new nodes join at every membership round of the message
	// phase; ChurnRounds is how many rounds that lasts (messages are spread over it).
	Churn, ChurnRounds int
	// JoinRounds is how many membership rounds the initial joins are spread over, and
	// StabilizationRounds how many rounds run after the last join (the paper: 50).
	JoinRounds, StabilizationRounds int
	// MessageInterval separates broadcasts (without churn).
	MessageInterval time.Duration
	// MessageWindow is how long after a broadcast it is measured (the immediate figure).
	MessageWindow time.Duration
	// DrainRounds is how many membership rounds run after the last message was measured
	// before the eventual figure is taken (Result.EventualReliability): the time catch-up
	// gets to bring every message to every live node.
	DrainRounds int
	// WarmupMessages are excluded from the redundancy figure while the tree forms (10).
	WarmupMessages int
	// PayloadSize is the size of each broadcast payload in bytes.
	PayloadSize int
	// MaxHealRounds bounds the healing measurement (see Result.RoundsToHeal).
	MaxHealRounds int
	// SkipHealing leaves the healing measurement out (Result.RoundsToHeal stays 0): it
	// builds the network a second time, which tests that do not look at it need not pay for.
	SkipHealing bool
	// PathSources bounds the breadth-first searches of the shortest-path statistics.
	PathSources int
	// Attackers is the fraction of the Nodes that run the hostile policy Attack (chosen at
	// random with the seed, joining among the honest ones); 0 or NoAttack: all honest.
	// Broadcasts are then sent from honest nodes only, and the honest figures of Result
	// count honest nodes only.
	Attackers float64
	Attack    Attack
	// AttackRounds is how many membership rounds the attackers' injected messages run after
	// stabilisation before the first broadcast; they go on until the end of the run. (A drop
	// attacker drops from its join on.)
	AttackRounds int
	// Defences leaves the protocol cores' defences against hostile peers on (the default);
	// false turns them off (Config.DisableDefences: membership's, gossip's and peer
	// scoring's), for side-by-side figures.
	Defences bool
	// ServerGone makes the signaling server disappear after stabilisation, at the moment of
	// the failure (FailFraction) if there is one: link setups whose offer finds no route
	// through the overlay fail, and nodes that need contacts get none (Sim.SetServerGone).
	// The healing measurement (RoundsToHeal) runs without the server too.
	ServerGone bool
	// Config is the simulated network and the protocol settings.
	Config Config
	// Progress, when set, is called as the run advances (for a progress bar).
	Progress func(Progress)
}

// Progress reports how far a run is.
type Progress struct {
	Phase       string
	Done, Total int
}

// DefaultExperiment returns an experiment over n nodes with the simulator's defaults: joins
// over 5 rounds, the paper's 50 stabilisation rounds, a broadcast every second (one after the
// other, as in the papers' simulations: a broadcast crosses 10,000 nodes in well under a
// second) of 256 bytes, each measured 5 s after it was sent, and 3 rounds for catch-up
// after the last before the eventual figure.
func DefaultExperiment(n int) Experiment {
	return Experiment{
		Nodes:               n,
		Protocol:            Plumtree,
		Messages:            100,
		ChurnRounds:         100,
		JoinRounds:          5,
		StabilizationRounds: 50,
		MessageInterval:     time.Second,
		MessageWindow:       5 * time.Second,
		DrainRounds:         3,
		WarmupMessages:      10,
		PayloadSize:         256,
		MaxHealRounds:       10,
		PathSources:         1000,
		AttackRounds:        10,
		Defences:            true,
		Config:              DefaultConfig(),
	}
}

// Result is what `rtcmesh sim --json` prints.
type Result struct {
	Nodes        int      `json:"nodes"`
	Seed         uint64   `json:"seed"`
	Protocol     Protocol `json:"protocol"`
	FailFraction float64  `json:"fail_fraction"`
	Churn        int      `json:"churn"`
	Messages     int      `json:"messages"`
	// Reliability is the mean over messages of the fraction of eligible live nodes that
	// delivered the message within MessageWindow (the immediate figure; through the tree or,
	// for a few, by catch-up: see MessageResult.CaughtUp); ReliabilityMin the worst message.
	Reliability    float64 `json:"reliability"`
	ReliabilityMin float64 `json:"reliability_min"`
	// EventualReliability is the fraction of (message, node alive at the end of the run)
	// pairs in which the node had delivered the message by the end of the run, DrainRounds
	// after the last message: what catch-up adds to the tree. Every live node counts, however
	// late it joined, so a node that joined later than the gossip CatchUpWindow after a
	// message, which cannot get it by design, lowers it. EventualReliabilityMin is the
	// worst message's fraction.
	EventualReliability    float64 `json:"eventual_reliability"`
	EventualReliabilityMin float64 `json:"eventual_reliability_min"`
	// FullyReached counts messages that reached every eligible node (immediately).
	FullyReached int `json:"fully_reached"`
	// CaughtUpInWindow counts the (message, eligible node) pairs of the immediate figure
	// that catch-up delivered, before the tree did.
	CaughtUpInWindow int `json:"caught_up_in_window"`
	// RMR is the mean relative message redundancy of payload messages, m/(n-1) - 1, over the
	// messages after the warm-up.
	RMR float64 `json:"rmr"`
	// LDH is the mean last delivery hop; LDHMax the largest.
	LDH    float64 `json:"ldh"`
	LDHMax int     `json:"ldh_max"`
	// The overlay at the end of the run (see GraphStats).
	Connected             bool    `json:"connected"`
	Components            int     `json:"components"`
	LiveNodes             int     `json:"live_nodes"`
	Isolated              int     `json:"isolated"`
	AsymmetricLinks       int     `json:"asymmetric_links"`
	DeadLinks             int     `json:"dead_links"`
	ActiveViewAvg         float64 `json:"active_view_avg"`
	PassiveViewAvg        float64 `json:"passive_view_avg"`
	ClusteringCoefficient float64 `json:"clustering_coefficient"`
	AvgShortestPath       float64 `json:"avg_shortest_path"`
	MaxShortestPath       int     `json:"max_shortest_path"`
	// RoundsToHeal is the number of membership rounds after the failure until a broadcast
	// reaches every live node again, measured on a second run of the same seed that sends one
	// probe broadcast per round: 0 when the first probe, sent right after the failure, already
	// reaches everyone; -1 when no probe did within MaxHealRounds.
	RoundsToHeal int `json:"rounds_to_heal"`
	// Totals of the run.
	Events              uint64  `json:"events"`
	MembershipMessages  uint64  `json:"membership_messages"`
	GossipMessages      uint64  `json:"gossip_messages"`
	DuplicateDeliveries uint64  `json:"duplicate_deliveries"`
	StepErrors          uint64  `json:"step_errors"`
	SimulatedSeconds    float64 `json:"simulated_seconds"`
	// NeighborChangesPerNodeMinute is the rate of NeighborUp and NeighborDown events per live
	// node per simulated minute during the broadcast phase (after the overlay stabilised; with
	// --fail or --churn it includes the repairs). A stable overlay keeps it near zero; every
	// change is a link opened or closed and a broadcast tree edge lost.
	NeighborChangesPerNodeMinute float64 `json:"neighbor_changes_per_node_minute"`
	// CatchUpBytesPerNodeRound is the encoded size of the catch-up messages (Digest, Have,
	// Pull, History) sent per live node per membership round during the broadcast phase;
	// PayloadBytesPerNodeRound the application payload bytes that Gossip and History messages
	// carried in the same time, so that the ratio of the two is catch-up's overhead.
	CatchUpBytesPerNodeRound float64 `json:"catch_up_bytes_per_node_round"`
	PayloadBytesPerNodeRound float64 `json:"payload_bytes_per_node_round"`
	// HelloBytesPerNodeRound is the encoded size of the silent-neighbour check's hellos and
	// keepalives (gossip.IsHello) sent per live node per round in the same time; the link-up
	// Digests of catch-up, which serve as hellos too, count as catch-up.
	HelloBytesPerNodeRound float64 `json:"hello_bytes_per_node_round"`
	// HistoryDeliveries counts the deliveries of the whole run that came by catch-up.
	HistoryDeliveries uint64 `json:"history_deliveries"`
	// LinkSetups counts the links honest nodes opened during the broadcast phase (after
	// stabilisation, and after the failure when FailFraction is set: at rest, or repairing),
	// ServerSignals those whose offer found no route through the overlay (see route.go), and
	// ServerSignalFraction their share of the exchanges with peers outside the active view
	// (LinkSetups plus ShuffleRepliesRouted, each a setup through the server without
	// routing): how much the network still needed the signaling server.
	LinkSetups           uint64  `json:"link_setups"`
	ServerSignals        uint64  `json:"server_signals"`
	ServerSignalFraction float64 `json:"server_signal_fraction"`
	// ShuffleRepliesRouted counts the SHUFFLE_REPLYs of the broadcast phase that went through
	// the overlay instead of opening a link (Config.RouteShuffleReplies).
	ShuffleRepliesRouted uint64 `json:"shuffle_replies_routed"`
	// WallSeconds and PeakHeapBytes describe the machine's effort; they are the only fields
	// that differ between two runs of the same seed. PeakHeapBytes is the largest live heap
	// sampled once per simulated round.
	WallSeconds   float64 `json:"wall_seconds"`
	PeakHeapBytes uint64  `json:"peak_heap_bytes"`
	// The attack (see Experiment.Attackers): the fraction of attackers, their policy, and
	// whether the cores' defences were on.
	Attackers float64 `json:"attackers"`
	Attack    Attack  `json:"attack"`
	Defences  bool    `json:"defences"`
	// HonestReliability is the mean, over the messages (all of honest origin), of the
	// fraction of eligible live honest nodes that delivered them within MessageWindow;
	// HonestReliabilityMin the worst message. HonestRMR is the RMR of the payloads honest
	// nodes received, over the messages after the warm-up. Without attackers they equal
	// Reliability, ReliabilityMin and RMR.
	HonestReliability    float64 `json:"honest_reliability"`
	HonestReliabilityMin float64 `json:"honest_reliability_min"`
	HonestRMR            float64 `json:"honest_rmr"`
	// Eclipsed counts live honest nodes without a live honest node in their active view at
	// the end of the run; PoisonedPassive is the mean share of attacker IDs in live honest
	// nodes' passive views, HostileInActive the mean share of attackers in their active
	// views (see AttackStats).
	Eclipsed        int     `json:"eclipsed"`
	PoisonedPassive float64 `json:"poisoned_passive"`
	HostileInActive float64 `json:"hostile_in_active"`
	// FloodBroadcasts counts the flood attackers' broadcasts, and
	// HostileDeliveriesPerHonestNode how many messages of attackers' origin each live honest
	// node delivered, on average: what a flood costs an honest node. InjectedMessages
	// counts the crafted membership messages attackers sent; RefusedFromAttackers the
	// attackers' messages that honest cores refused as invalid.
	FloodBroadcasts uint64 `json:"flood_broadcasts"`
	// ScoredOut counts the links peer scoring closed, at honest and hostile nodes alike.
	ScoredOut                      uint64  `json:"scored_out"`
	HostileDeliveriesPerHonestNode float64 `json:"hostile_deliveries_per_honest_node"`
	InjectedMessages               uint64  `json:"injected_messages"`
	RefusedFromAttackers           uint64  `json:"refused_from_attackers"`
	// PerMessage holds each message's result when requested (not in the JSON summary).
	PerMessage []MessageResult `json:"-"`
}

func (e Experiment) validate() error {
	switch {
	case e.Nodes < 2:
		return fmt.Errorf("sim: %d nodes: need at least 2", e.Nodes)
	case e.Protocol != Plumtree && e.Protocol != Flood:
		return fmt.Errorf("sim: unknown protocol %q (want %q or %q)", e.Protocol, Plumtree, Flood)
	case e.Messages < 0:
		return errors.New("sim: negative message count")
	case e.FailFraction < 0 || e.FailFraction >= 1 || math.IsNaN(e.FailFraction):
		return fmt.Errorf("sim: fail fraction %v is not in [0, 1)", e.FailFraction)
	case e.Churn < 0 || e.ChurnRounds < 0:
		return errors.New("sim: negative churn")
	case e.Churn > 0 && e.ChurnRounds == 0:
		return errors.New("sim: churn needs at least one churn round")
	case e.JoinRounds < 1 || e.StabilizationRounds < 0:
		return errors.New("sim: need at least one join round and a non-negative number of stabilisation rounds")
	case e.MessageInterval <= 0 || e.MessageWindow <= 0:
		return errors.New("sim: message interval and window must be positive")
	case e.DrainRounds < 0:
		return errors.New("sim: negative drain rounds")
	case e.PayloadSize < 0 || e.WarmupMessages < 0 || e.MaxHealRounds < 0 || e.PathSources < 0:
		return errors.New("sim: negative size or count")
	case e.Attackers < 0 || e.Attackers >= 1 || math.IsNaN(e.Attackers):
		return fmt.Errorf("sim: attacker fraction %v is not in [0, 1)", e.Attackers)
	case !e.Attack.Valid():
		return fmt.Errorf("sim: unknown attack %q (want %s)", e.Attack, attackNames())
	case e.Attackers > 0 && e.Attack == NoAttack:
		return fmt.Errorf("sim: attackers without an attack (want %s)", attackNames())
	case e.AttackRounds < 0:
		return errors.New("sim: negative attack rounds")
	}
	return e.Config.validate()
}

// round is one membership round (the shuffle period).
func (e Experiment) round() time.Duration { return e.Config.Membership.ShuffleInterval }

// Run carries out the experiment and returns its result.
func Run(e Experiment) (Result, error) {
	if err := e.validate(); err != nil {
		return Result{}, err
	}
	start := time.Now()
	e.Config.Gossip.Flood = e.Protocol == Flood
	if !e.Defences {
		e.Config.DisableDefences()
	}
	var peak uint64
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	s, err := e.build(sample)
	if err != nil {
		return Result{}, err
	}
	res := Result{Nodes: e.Nodes, Seed: e.Config.Seed, Protocol: e.Protocol, FailFraction: e.FailFraction,
		Churn: e.Churn, Messages: e.Messages, Attackers: e.Attackers, Attack: e.Attack, Defences: e.Defences}
	if s.Attackers() > 0 {
		s.StartAttacks()
		for r := range e.AttackRounds {
			s.RunFor(e.round())
			sample()
			e.progress("attack", r+1, e.AttackRounds)
		}
	}
	s.SetServerGone(e.ServerGone)
	if e.FailFraction > 0 {
		s.CrashRandom(int(math.Round(e.FailFraction * float64(e.Nodes))))
	}
	before, phaseStart := s.Counters(), s.Now()
	per, err := e.broadcastPhase(s, sample)
	if err != nil {
		return Result{}, err
	}
	phaseEnd := s.Counters()
	res.LinkSetups = phaseEnd.LinkSetups - before.LinkSetups
	res.ServerSignals = phaseEnd.ServerSignals - before.ServerSignals
	res.ShuffleRepliesRouted = phaseEnd.ShuffleRepliesRouted - before.ShuffleRepliesRouted
	res.ServerSignalFraction = ServerSignalFraction(before, phaseEnd)
	if d := s.Now() - phaseStart; d > 0 && s.LiveCount() > 0 {
		after, live := s.Counters(), float64(s.LiveCount())
		res.NeighborChangesPerNodeMinute = float64(after.NeighborChanges-before.NeighborChanges) / live / d.Minutes()
		rounds := float64(d) / float64(e.round())
		res.CatchUpBytesPerNodeRound = float64(after.CatchUpBytes-before.CatchUpBytes) / live / rounds
		res.PayloadBytesPerNodeRound = float64(after.PayloadBytes-before.PayloadBytes) / live / rounds
		res.HelloBytesPerNodeRound = float64(after.HelloBytes-before.HelloBytes) / live / rounds
	}
	// Give catch-up its rounds, then take the eventual figure over the nodes alive now.
	for r := range e.DrainRounds {
		s.RunFor(e.round())
		sample()
		e.progress("drain", r+1, e.DrainRounds)
	}
	for k := range per {
		if err := s.Eventual(&per[k]); err != nil {
			return Result{}, err
		}
		s.Forget(per[k].ID)
	}
	res.PerMessage = per
	summarise(&res, per, e.WarmupMessages)
	// Let in-flight membership changes settle before measuring the overlay at rest.
	s.RunFor(e.round())
	sample()
	g := s.Graph(e.PathSources)
	res.Connected, res.Components, res.LiveNodes = g.Connected, g.Components, g.LiveNodes
	res.Isolated, res.AsymmetricLinks, res.DeadLinks = g.Isolated, g.AsymmetricLinks, g.DeadLinks
	res.ActiveViewAvg, res.PassiveViewAvg = g.ActiveViewAvg, g.PassiveViewAvg
	res.ClusteringCoefficient, res.AvgShortestPath, res.MaxShortestPath = g.ClusteringCoefficient, g.AvgShortestPath, g.MaxShortestPath
	as := s.AttackStats()
	res.Eclipsed, res.PoisonedPassive, res.HostileInActive = as.Eclipsed, as.PoisonedPassive, as.HostileInActive
	c := s.Counters()
	res.FloodBroadcasts, res.InjectedMessages, res.RefusedFromAttackers = c.FloodBroadcasts, c.InjectedMessages, c.RefusedFromAttackers
	res.ScoredOut = c.ScoredOut
	if as.HonestLive > 0 {
		res.HostileDeliveriesPerHonestNode = float64(c.HostileDeliveries) / float64(as.HonestLive)
	}
	res.Events, res.MembershipMessages, res.GossipMessages = c.Events, c.MembershipMessages, c.GossipMessages
	res.DuplicateDeliveries, res.StepErrors = c.DuplicateDeliveries, c.StepErrors
	res.HistoryDeliveries = c.HistoryDeliveries
	res.SimulatedSeconds = s.Now().Seconds()
	if e.FailFraction > 0 && !e.SkipHealing {
		res.RoundsToHeal, err = e.healRounds(sample)
		if err != nil {
			return Result{}, err
		}
	}
	res.WallSeconds = time.Since(start).Seconds()
	res.PeakHeapBytes = peak
	return res, nil
}

func (e Experiment) progress(phase string, done, total int) {
	if e.Progress != nil {
		e.Progress(Progress{Phase: phase, Done: done, Total: total})
	}
}

// build creates the network: joins spread over JoinRounds, then StabilizationRounds rounds.
func (e Experiment) build(sample func()) (*Sim, error) {
	s, err := New(e.Config)
	if err != nil {
		return nil, err
	}
	spacing := time.Duration(e.JoinRounds) * e.round() / time.Duration(e.Nodes)
	nextSample := e.round()
	hostile := e.attackers()
	for i := range e.Nodes {
		s.RunUntil(time.Duration(i) * spacing)
		add := s.AddNode
		if hostile != nil && hostile[i] {
			add = func() (int32, error) { return s.AddAttacker(e.Attack) }
		}
		if _, err := add(); err != nil {
			return nil, err
		}
		if s.Now() >= nextSample {
			sample()
			nextSample += e.round()
			e.progress("join", i+1, e.Nodes)
		}
	}
	e.progress("join", e.Nodes, e.Nodes)
	for r := range e.StabilizationRounds {
		s.RunFor(e.round())
		sample()
		e.progress("stabilise", r+1, e.StabilizationRounds)
	}
	return s, nil
}

// attackers returns which of the Nodes are attackers: round(Attackers × Nodes) of them,
// drawn from a source of their own so that the honest nodes' draws do not move; nil when
// there are none.
func (e Experiment) attackers() []bool {
	k := int(math.Round(e.Attackers * float64(e.Nodes)))
	if k == 0 || e.Attack == NoAttack {
		return nil
	}
	rng := rand.New(rand.NewPCG(e.Config.Seed, 0xa77ac4e5a77ac4e5))
	hostile := make([]bool, e.Nodes)
	for _, i := range rng.Perm(e.Nodes)[:k] {
		hostile[i] = true
	}
	return hostile
}

func attackNames() string {
	names := make([]string, len(Attacks))
	for k, a := range Attacks {
		names[k] = string(a)
	}
	return strings.Join(names, ", ")
}

// broadcastPhase sends the messages (with churn, if any) and measures each after the window.
func (e Experiment) broadcastPhase(s *Sim, sample func()) ([]MessageResult, error) {
	if e.Messages == 0 {
		return nil, nil
	}
	start := s.Now()
	interval := e.MessageInterval
	if e.Churn > 0 {
		interval = time.Duration(e.ChurnRounds) * e.round() / time.Duration(e.Messages)
	}
	payload := make([]byte, e.PayloadSize)
	type pending struct {
		id gossip.MessageID
		at time.Duration
	}
	var queue []pending
	results := make([]MessageResult, 0, e.Messages)
	measure := func(p pending) error {
		r, err := s.Measure(p.id, e.round())
		if err != nil {
			return err
		}
		results = append(results, r)
		e.progress("broadcast", len(results), e.Messages)
		return nil
	}
	nextChurn := start + e.round()
	churnRounds := 0
	nextSample := start + e.round()
	for m := 0; m < e.Messages; m++ {
		sendAt := start + time.Duration(m)*interval
		// Run to the send time, measuring due messages and applying churn on the way.
		for {
			next := sendAt
			if len(queue) > 0 && queue[0].at < next {
				next = queue[0].at
			}
			if e.Churn > 0 && churnRounds < e.ChurnRounds && nextChurn < next {
				next = nextChurn
			}
			s.RunUntil(next)
			if s.Now() >= nextSample {
				sample()
				nextSample += e.round()
			}
			if len(queue) > 0 && queue[0].at == next {
				if err := measure(queue[0]); err != nil {
					return nil, err
				}
				queue = queue[1:]
				continue
			}
			if e.Churn > 0 && churnRounds < e.ChurnRounds && nextChurn == next {
				s.CrashRandom(e.Churn)
				for range e.Churn {
					if _, err := s.AddNode(); err != nil {
						return nil, err
					}
				}
				churnRounds++
				nextChurn += e.round()
				continue
			}
			break
		}
		// Broadcast from a node that has been in the overlay for a round, as the measured
		// nodes have (see Measure's join grace).
		origin := s.RandomLiveJoinedBefore(s.Now() - e.round())
		for tries := 0; origin >= 0 && s.IsAttacker(origin); tries++ {
			// Only honest broadcasts are measured; attackers' are their policy's business.
			if tries == 1000 {
				return nil, errors.New("sim: no honest node left to broadcast from")
			}
			origin = s.RandomLiveJoinedBefore(s.Now() - e.round())
		}
		if origin < 0 {
			return nil, errors.New("sim: no live node left to broadcast from")
		}
		id, err := s.Broadcast(origin, payload)
		if err != nil {
			return nil, err
		}
		queue = append(queue, pending{id: id, at: s.Now() + e.MessageWindow})
	}
	for _, p := range queue {
		s.RunUntil(p.at)
		if err := measure(p); err != nil {
			return nil, err
		}
	}
	sample()
	return results, nil
}

func summarise(res *Result, per []MessageResult, warmup int) {
	if len(per) == 0 {
		return
	}
	res.ReliabilityMin, res.EventualReliabilityMin, res.HonestReliabilityMin = 1, 1, 1
	var relSum, rmrSum, ldhSum, honestSum, honestRMRSum float64
	reached, alive := 0, 0
	rmrN := 0
	if warmup >= len(per) {
		warmup = 0
	}
	for k, r := range per {
		relSum += r.Reliability
		res.ReliabilityMin = min(res.ReliabilityMin, r.Reliability)
		honestSum += r.HonestReliability
		res.HonestReliabilityMin = min(res.HonestReliabilityMin, r.HonestReliability)
		res.CaughtUpInWindow += r.CaughtUp
		reached += r.EventualReached
		alive += r.EventualAlive
		res.EventualReliabilityMin = min(res.EventualReliabilityMin, r.EventualReliability)
		if r.Reached == r.Eligible {
			res.FullyReached++
		}
		ldhSum += float64(r.LastDeliveryHop)
		res.LDHMax = max(res.LDHMax, r.LastDeliveryHop)
		if k >= warmup {
			rmrSum += r.RMR
			honestRMRSum += r.HonestRMR
			rmrN++
		}
	}
	res.Reliability = relSum / float64(len(per))
	res.HonestReliability = honestSum / float64(len(per))
	if alive > 0 {
		res.EventualReliability = float64(reached) / float64(alive)
	}
	res.LDH = ldhSum / float64(len(per))
	if rmrN > 0 {
		res.RMR = rmrSum / float64(rmrN)
		res.HonestRMR = honestRMRSum / float64(rmrN)
	}
}

// healRounds rebuilds the same network from the same seed, crashes the same nodes, and sends
// one probe broadcast at the start of every membership round until one reaches every live
// node.
func (e Experiment) healRounds(sample func()) (int, error) {
	quiet := e
	quiet.Progress = nil
	s, err := quiet.build(sample)
	if err != nil {
		return 0, err
	}
	s.SetServerGone(e.ServerGone)
	s.CrashRandom(int(math.Round(e.FailFraction * float64(e.Nodes))))
	crashAt := s.Now()
	payload := make([]byte, e.PayloadSize)
	// Probe k is sent k rounds after the failure and measured MessageWindow later. Probes
	// overlap when the window is longer than a round, so walk both timelines in order.
	type probe struct {
		id    gossip.MessageID
		round int
	}
	var sent []probe
	next := 0
	for {
		sendAt := crashAt + time.Duration(next)*e.round()
		if len(sent) > 0 {
			measureAt := crashAt + time.Duration(sent[0].round)*e.round() + e.MessageWindow
			if next > e.MaxHealRounds || measureAt <= sendAt {
				s.RunUntil(measureAt)
				r, err := s.Measure(sent[0].id, 0)
				if err != nil {
					return 0, err
				}
				if r.Reached == r.Eligible {
					sample()
					return sent[0].round, nil
				}
				sent = sent[1:]
				continue
			}
		}
		if next > e.MaxHealRounds {
			sample()
			return -1, nil
		}
		s.RunUntil(sendAt)
		origin := s.RandomLive()
		if origin < 0 {
			return -1, nil
		}
		id, err := s.Broadcast(origin, payload)
		if err != nil {
			return 0, err
		}
		sent = append(sent, probe{id: id, round: next})
		e.progress("heal", next+1, e.MaxHealRounds+1)
		next++
	}
}
