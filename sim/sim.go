// Package sim is a deterministic discrete-event simulator that drives the very same HyParView
// (membership) and Plumtree (gossip) cores the real node runs, composed the same way (one
// overlay.Peer per node), at 10,000 to 100,000 nodes in one process. Each event touches one
// core and wakes a node exactly at its NextDeadline (overlay.Peer.TickDue), so the other core
// costs nothing.
//
// The simulator leaves the cryptography out: its gossip cores have no Authenticator, so
// broadcasts are unsigned. In an honest run a signature changes no protocol decision, and
// Ed25519 at every receiver would cost more than the rest of the simulation; the per-origin
// sequence numbers, the replay window and the clock-skew check do run (on simulated time).
//
// Time is simulated in whole milliseconds. Every pair of nodes has a fixed one-way latency drawn
// from [Config.LatencyMin, Config.LatencyMax] by hashing the pair with the seed, so messages on
// one link arrive in the order they were sent, as on the reliable, ordered data channels of the
// real runtime. Crashed nodes stop at once; their peers learn of it the way a link layer would:
// a message sent to a crashed node fails, and the sender's core gets PeerDown after
// Config.DetectionDelay; and every node that had the crashed node in its active view gets
// PeerDown after Config.HeartbeatTimeout, like the heartbeat on the runtime's links. Setting
// HeartbeatTimeout to 0 leaves detection on send only, the papers' model, under which a node
// whose neighbours all crashed learns of it one shuffle round at a time. Partition cuts the
// network into groups that cannot reach each other, with the same failure detection. A core that is
// isolated and out of contacts (membership.NeedContacts) is given a random live node to join
// through, as the signaling server's peer list would. Optional loss drops a message (any
// protocol) with Config.Loss probability.
//
// Some nodes can be hostile (AddAttacker, Experiment.Attackers; see Attack): real peers whose
// output the simulator filters and rewrites, with crafted messages of their own, against
// honest nodes that run the unchanged cores with their defences on or off.
//
// The same Config and seed give the same run, event for event: the simulator and the cores
// draw every random number from seeded sources and iterate nothing in map order.
package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/link"
	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/overlay"
	"github.com/rtcmesh/rtcmesh/routing"
	"github.com/rtcmesh/rtcmesh/scoring"
)

// Config describes the simulated network and the protocol settings every node gets.
type Config struct {
	// Seed makes the run reproducible: the same Config gives the same run.
	Seed uint64
	// Membership is the template for every node's HyParView core; Self, Rand and Contacts are
	// filled in per node.
	Membership membership.Config
	// Gossip is the template for every node's Plumtree core; Self and Rand are filled in per
	// node. Set Gossip.Flood for the eager-flooding baseline.
	Gossip gossip.Config
	// Scoring is every node's peer scoring (the runtime's defaults). A peer it disconnects
	// gets PeerDown at the other end of the link, one link latency later, as when the
	// runtime closes the link.
	Scoring scoring.Config
	// Routing is every node's routing through the overlay (route.go): what decides whether a
	// link setup needs the signaling server (Counters.ServerSignals).
	Routing routing.Config
	// RouteShuffleReplies sends a SHUFFLE_REPLY whose destination is not a neighbour through
	// the overlay when a route is known, as the runtime does (node.Config.RouteShuffleReplies):
	// no link setup is counted for it. Without a route, or with this off, it opens a link.
	RouteShuffleReplies bool
	// LatencyMin and LatencyMax bound each link's fixed one-way latency (whole milliseconds,
	// at least 1 ms).
	LatencyMin, LatencyMax time.Duration
	// Loss is the probability that a message is dropped in transit (0 by default: the real
	// links are reliable data channels).
	Loss float64
	// DetectionDelay is how long after sending to a crashed node the sender learns that the
	// link failed (PeerDown).
	DetectionDelay time.Duration
	// HeartbeatTimeout, when positive, also reports a crash to every node that had the
	// crashed node in its active view, this long after the crash: the link heartbeat of the
	// runtime. 0 detects failures only on send, as the papers' simulations do.
	HeartbeatTimeout time.Duration
	// ContactCount is how many live nodes a joining node is given as contacts, like the
	// contacts the signaling server hands out in its welcome.
	ContactCount int
	// AttackInterval is how often each attacker (AddAttacker) injects its crafted messages
	// once StartAttacks was called: one eclipse or poison round, or one flood burst.
	AttackInterval time.Duration
	// FloodBurst is how many broadcasts a flood attacker makes every AttackInterval (200 a
	// second: ten times gossip's default per-origin budget), and FloodPayload their size in
	// bytes. What the honest nodes accept of a flood they forward to everyone, so a flood
	// costs the simulator about attackers × accepted rate × nodes events a simulated second:
	// keep floods small or short.
	FloodBurst, FloodPayload int
}

// DefaultConfig returns the simulator's defaults: the papers' protocol parameters with the WAN
// profile's 10 s membership rounds, links of 5–50 ms, failure detection 200 ms after a send and
// a 5 s link heartbeat.
// Simulated links open at once, so a Neighbor request that has no answer within a second has
// failed.
func DefaultConfig() Config {
	mc := membership.DefaultWANConfig()
	mc.NeighborTimeout = time.Second
	mc.RejoinBackoff = 2 * time.Second
	gc := gossip.DefaultConfig()
	// A simulated broadcast completes in well under its 5 s measurement window, so half a
	// minute of cached payloads covers every Graft; the runtime's longer defaults would only
	// cost memory, which at 100,000 nodes is gigabytes.
	gc.CacheMaxAge = 30 * time.Second
	// Catch-up keeps a minute of history (the runtime keeps 5): a survivor of a mass failure
	// or a node that joined under churn is offered what was broadcast in the last 50 s
	// (the window less one CatchUpInterval) once it has a neighbour again. Each node holds
	// one history entry (about 100 bytes; payloads are shared) per message of the window,
	// so the window is what costs memory: at one broadcast a second, about 6 KB per node,
	// 60 MB at 10,000 nodes, 600 MB at 100,000. Experiments that need more (a node joining
	// later than the window after a message cannot get it) set Gossip.CatchUpWindow.
	gc.CatchUpWindow = time.Minute
	// Every simulated node reads the same clock, so the skew allowed only has to cover a
	// broadcast's delay. Seen IDs must outlive the oldest message accepted (the window) by
	// more than the skew, or a message caught up on could be delivered twice; see
	// SeenMaxAgeFor.
	gc.MaxClockSkew = 20 * time.Second
	gc.SeenMaxAge = SeenMaxAgeFor(gc)
	return Config{
		Seed:                1,
		Membership:          mc,
		Gossip:              gc,
		Scoring:             scoring.DefaultConfig(),
		Routing:             routing.DefaultConfig(),
		RouteShuffleReplies: true,
		LatencyMin:          5 * time.Millisecond,
		LatencyMax:          50 * time.Millisecond,
		DetectionDelay:      200 * time.Millisecond,
		HeartbeatTimeout:    link.DefaultHeartbeatTimeout,
		ContactCount:        3,
		AttackInterval:      time.Second,
		FloodBurst:          200,
		FloodPayload:        1024,
	}
}

// DisableDefences turns off the defences against hostile peers of every node's membership
// core, gossip core and peer scoring (their DisableDefences), for figures beside the
// defended runs.
func (c *Config) DisableDefences() {
	c.Membership.DisableDefences()
	c.Gossip.DisableDefences()
	c.Scoring.DisableDefences()
}

// SeenMaxAgeFor returns the shortest seen-ID age the gossip core accepts with gc's
// MaxClockSkew and CatchUpWindow, rounded up to whole 10 s: the oldest age accepted (the
// larger of the two) plus the skew, plus 10 s. Seen IDs cost memory on every node for that
// long, so the simulator keeps them no longer; set it again after changing either field.
func SeenMaxAgeFor(gc gossip.Config) time.Duration {
	const step = 10 * time.Second
	need := max(gc.MaxClockSkew, gc.CatchUpWindow) + gc.MaxClockSkew + step
	return (need + step - 1) / step * step
}

func (c Config) validate() error {
	switch {
	case c.LatencyMin < time.Millisecond:
		return fmt.Errorf("sim: LatencyMin %v is below the simulator's 1 ms resolution", c.LatencyMin)
	case c.LatencyMax < c.LatencyMin:
		return fmt.Errorf("sim: LatencyMax %v is below LatencyMin %v", c.LatencyMax, c.LatencyMin)
	case c.Loss < 0 || c.Loss >= 1:
		return fmt.Errorf("sim: Loss %v is not in [0, 1)", c.Loss)
	case c.DetectionDelay < time.Millisecond:
		return fmt.Errorf("sim: DetectionDelay %v is below 1 ms", c.DetectionDelay)
	case c.HeartbeatTimeout < 0:
		return errors.New("sim: HeartbeatTimeout is negative")
	case c.ContactCount < 1:
		return fmt.Errorf("sim: ContactCount %d must be at least 1", c.ContactCount)
	}
	if err := c.validateAttack(); err != nil {
		return err
	}
	// The protocol templates are checked once here, by the composition every node gets, with
	// the per-node fields filled in as AddNode fills them, rather than at the first AddNode.
	oc := overlay.Config{Self: nodeID(0), Membership: c.Membership, Gossip: c.Gossip, Scoring: c.Scoring, Routing: c.Routing}
	oc.Membership.Rand = rand.New(rand.NewPCG(c.Seed, 1))
	oc.Gossip.Rand = rand.New(rand.NewPCG(c.Seed, 2))
	if _, err := overlay.New(oc); err != nil {
		return fmt.Errorf("sim: protocol settings: %w", err)
	}
	return nil
}

const noWake = -1

// simNode is one simulated node: its composed cores and its life span.
type simNode struct {
	id string
	// p is held by value (see overlay.Peer): one pointer chase less on every event.
	p      overlay.Peer
	alive  bool
	bornAt int64 // ms
	diedAt int64 // ms; meaningful when !alive
	wakeAt int64 // the pending wake event's time, or noWake
	// hostile is the attacker's policy and state; nil for an honest node.
	hostile *hostile
}

// Counters are totals over the whole run.
type Counters struct {
	Events                     uint64
	MembershipMessages         uint64
	GossipMessages             uint64
	PayloadMessages            uint64
	DroppedByLoss              uint64
	SendsToCrashed             uint64 // and to nodes cut off by a partition
	StepErrors                 uint64
	DuplicateDeliveries        uint64
	MessagesToUnknownAddresses uint64
	// ContactRequests counts NeedContacts events.
	ContactRequests uint64
	// NeighborChanges counts NeighborUp and NeighborDown events of all nodes: how much the
	// active views (and so the links and the broadcast tree) churn.
	NeighborChanges uint64
	// HistoryDeliveries counts deliveries that came by catch-up (gossip.Delivery.History)
	// rather than through the broadcast tree.
	HistoryDeliveries uint64
	// FloodBroadcasts counts the flood attackers' broadcasts, InjectedMessages the crafted
	// membership messages attackers sent past their cores, and HostileDeliveries the
	// deliveries, at honest nodes, of messages an attacker broadcast.
	FloodBroadcasts, InjectedMessages, HostileDeliveries uint64
	// RefusedFromAttackers counts attackers' messages that honest cores refused as invalid
	// (StepErrors counts only honest senders', which no core should refuse).
	RefusedFromAttackers uint64
	// ScoredOut counts the links closed because peer scoring put the peer below its
	// threshold (overlay.Ready.Disconnect).
	ScoredOut uint64
	// LinkSetups counts the links honest nodes would open (route.go), ServerSignals those
	// whose signals found no route through the overlay and needed the signaling server;
	// RoutingMessages counts the VIEWs sent; ShuffleRepliesRouted the SHUFFLE_REPLYs that went
	// through the overlay instead of opening a link (Config.RouteShuffleReplies).
	LinkSetups, ServerSignals, RoutingMessages, ShuffleRepliesRouted uint64
	// Withheld counts the messages attackers' cores produced that their policy did not send
	// (payloads, PRUNEs, DISCONNECTs and links their scoring would close).
	Withheld uint64
	// CatchUpMessages and CatchUpBytes count the catch-up messages sent (Digest, Have, Pull,
	// History) and their size as package wire encodes them for the runtime (whose times are
	// Unix milliseconds: see wireSize); PayloadBytes counts the application
	// payload bytes of the Gossip and History messages sent. Messages sent to a crashed or
	// cut-off node count: they left the sender.
	CatchUpMessages, CatchUpBytes, PayloadBytes uint64
	// HelloBytes counts the encoded size of the hellos and keepalives (gossip.IsHello) the
	// silent-neighbour check sends, which are not catch-up.
	HelloBytes uint64
}

// Sim is one simulated network. It is not safe for concurrent use; one goroutine drives it.
type Sim struct {
	cfg   Config
	rng   *rand.Rand
	q     *calendarQueue
	nodes []simNode
	live  []int32 // indexes of live nodes, unordered; livePos maps node → position
	pos   []int32
	track map[gossip.MessageID]*broadcast
	cnt   Counters
	// ids holds every node's ID (see idArena).
	ids idArena
	// group[i] is node i's side of a partition; nil when the network is whole.
	group []int32
	// wireBuf is scratch space for encoding catch-up messages to count their bytes.
	wireBuf []byte
	// hostiles are the attackers' indexes, in the order they were added; attacking says
	// StartAttacks was called; pendingHostile is the policy AddAttacker hands AddNode.
	hostiles       []int32
	attacking      bool
	pendingHostile *hostile
	// serverGone: the signaling server is gone (SetServerGone, route.go).
	serverGone bool
}

// broadcast follows one message through the network, from Broadcast until Forget, with a
// bit per node ever added: delivered through the tree, or by catch-up (caught, nil until the
// first). Measure (at once) and Eventual (at the end) read both.
type broadcast struct {
	id        gossip.MessageID
	origin    int32
	sentAt    int64
	delivered []uint64
	caught    []uint64
	count     int // nodes that delivered it through the tree
	payloads  int // Gossip messages received by live nodes
	maxHops   int
	// honestCount and honestPayloads are count and payloads over honest nodes only.
	honestCount, honestPayloads int
}

// New returns an empty simulated network.
func New(cfg Config) (*Sim, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Sim{
		cfg:   cfg,
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x5eed5eed5eed5eed)),
		q:     newCalendarQueue(),
		track: make(map[gossip.MessageID]*broadcast),
	}, nil
}

// Now returns the simulated time.
func (s *Sim) Now() time.Duration { return time.Duration(s.q.now) * time.Millisecond }

// Counters returns the run's totals so far.
func (s *Sim) Counters() Counters { return s.cnt }

// Rand returns the simulator's own random source, for experiments that choose nodes at random.
func (s *Sim) Rand() *rand.Rand { return s.rng }

// LiveCount returns the number of live nodes.
func (s *Sim) LiveCount() int { return len(s.live) }

// NodeCount returns the number of nodes ever added.
func (s *Sim) NodeCount() int { return len(s.nodes) }

// RandomLive returns a live node chosen uniformly, or -1 when none is left.
func (s *Sim) RandomLive() int32 {
	if len(s.live) == 0 {
		return -1
	}
	return s.live[s.rng.IntN(len(s.live))]
}

// RandomLiveJoinedBefore returns a live node added at or before t, chosen uniformly among
// those, or -1 when there is none. Under churn it keeps broadcasts from starting at a node
// that joined a moment ago and has no neighbour yet.
func (s *Sim) RandomLiveJoinedBefore(t time.Duration) int32 {
	cutoff := ms(t)
	for range 64 { // nearly every live node qualifies: sample, and scan only if unlucky
		i := s.RandomLive()
		if i < 0 {
			return -1
		}
		if s.nodes[i].bornAt <= cutoff {
			return i
		}
	}
	var old []int32
	for _, i := range s.live {
		if s.nodes[i].bornAt <= cutoff {
			old = append(old, i)
		}
	}
	if len(old) == 0 {
		return -1
	}
	return old[s.rng.IntN(len(old))]
}

// AddNode creates a node and, when the network already has live nodes, makes it join through
// one of them (chosen at random; Config.ContactCount of them become its contacts for
// re-joining). It returns the new node's index.
func (s *Sim) AddNode() (int32, error) {
	i := int32(len(s.nodes))
	if i >= maxNodes {
		return -1, fmt.Errorf("sim: more than %d nodes", maxNodes)
	}
	id := s.ids.id(i)
	oc := overlay.Config{Self: id, Membership: s.cfg.Membership, Gossip: s.cfg.Gossip, Scoring: s.cfg.Scoring, Routing: s.cfg.Routing}
	oc.Membership.Rand = rand.New(rand.NewPCG(s.cfg.Seed, 2*uint64(i)+1))
	var contacts []string
	for k := 0; k < s.cfg.ContactCount && k < len(s.live); k++ {
		contacts = append(contacts, s.nodes[s.RandomLive()].id)
	}
	oc.Membership.Contacts = contacts
	oc.Gossip.Rand = rand.New(rand.NewPCG(s.cfg.Seed, 2*uint64(i)+2))
	peer, err := overlay.New(oc)
	if err != nil {
		return -1, fmt.Errorf("sim: node %s: %w", id, err)
	}
	s.nodes = append(s.nodes, simNode{id: id, p: *peer, alive: true, bornAt: s.q.now, wakeAt: noWake, hostile: s.pendingHostile})
	s.pos = append(s.pos, int32(len(s.live)))
	s.live = append(s.live, i)
	p := &s.nodes[i].p
	// Give the cores the current time, then join.
	p.Tick(s.nowD())
	if len(contacts) > 0 {
		p.Join(s.nowD(), contacts[0])
	}
	s.flush(i)
	return i, nil
}

// Crash stops node i at once: it sends nothing more and messages to it fail.
func (s *Sim) Crash(i int32) {
	n := &s.nodes[i]
	if !n.alive {
		return
	}
	n.alive = false
	n.diedAt = s.q.now
	// Remove from the live list in O(1).
	p := s.pos[i]
	last := s.live[len(s.live)-1]
	s.live[p] = last
	s.pos[last] = p
	s.live = s.live[:len(s.live)-1]
	if s.cfg.HeartbeatTimeout > 0 {
		at := s.q.now + ms(s.cfg.HeartbeatTimeout)
		for _, peer := range n.p.ActiveView() {
			if j, ok := s.lookup(peer); ok {
				s.q.push(event{at: at, kind: evPeerDown, to: j, from: i})
			}
		}
	}
}

// Partition splits the network: the nodes of each group can reach each other but no node of
// another group, and nodes in no group form one more group. A message sent across fails like
// one sent to a crashed node, and with a heartbeat every active link across goes down after
// HeartbeatTimeout, at both ends. Heal joins the network again.
func (s *Sim) Partition(groups ...[]int32) {
	s.group = make([]int32, len(s.nodes))
	for k, g := range groups {
		for _, i := range g {
			s.group[i] = int32(k + 1)
		}
	}
	if s.cfg.HeartbeatTimeout <= 0 {
		return
	}
	at := s.q.now + ms(s.cfg.HeartbeatTimeout)
	for _, i := range s.live {
		for _, peer := range s.nodes[i].p.ActiveView() {
			if j, ok := s.lookup(peer); ok && s.separated(i, j) {
				s.q.push(event{at: at, kind: evPeerDown, to: i, from: j})
			}
		}
	}
}

// Heal ends a partition.
func (s *Sim) Heal() { s.group = nil }

// separated reports whether a partition keeps nodes a and b apart.
func (s *Sim) separated(a, b int32) bool {
	if s.group == nil {
		return false
	}
	ga, gb := int32(0), int32(0)
	if int(a) < len(s.group) {
		ga = s.group[a]
	}
	if int(b) < len(s.group) {
		gb = s.group[b]
	}
	return ga != gb
}

// CrashRandom crashes k live nodes chosen uniformly at random and returns them.
func (s *Sim) CrashRandom(k int) []int32 {
	if k > len(s.live) {
		k = len(s.live)
	}
	crashed := make([]int32, 0, k)
	for range k {
		i := s.RandomLive()
		s.Crash(i)
		crashed = append(crashed, i)
	}
	return crashed
}

// Broadcast makes live node i broadcast payload and starts following the message.
func (s *Sim) Broadcast(i int32, payload []byte) (gossip.MessageID, error) {
	n := &s.nodes[i]
	if !n.alive {
		return gossip.MessageID{}, fmt.Errorf("sim: node %s is not alive", n.id)
	}
	id, err := n.p.Broadcast(s.nowD(), payload)
	if err != nil {
		return id, fmt.Errorf("sim: broadcast from %s: %w", n.id, err)
	}
	s.track[id] = &broadcast{id: id, origin: i, sentAt: s.q.now, delivered: make([]uint64, (len(s.nodes)+63)/64)}
	s.flush(i)
	return id, nil
}

// RunFor runs the simulation for d of simulated time.
func (s *Sim) RunFor(d time.Duration) { s.RunUntil(s.Now() + d) }

// RunUntil runs every event due up to and including time t.
func (s *Sim) RunUntil(t time.Duration) {
	end := ms(t)
	for {
		next, ok := s.q.nextTime()
		if !ok || next > end {
			break
		}
		s.q.advance(next)
		s.q.runBucket(s.handle)
	}
	if end > s.q.now {
		s.q.advance(end)
	}
}

func ms(d time.Duration) int64 { return int64((d + time.Millisecond - 1) / time.Millisecond) }

// nowD is the simulated time as the cores count it.
func (s *Sim) nowD() time.Duration { return time.Duration(s.q.now) * time.Millisecond }

func (s *Sim) handle(ev *event) {
	s.cnt.Events++
	n := &s.nodes[ev.to]
	message := ev.kind == evMembership || ev.kind == evGossip || ev.kind == evView
	if !n.alive || (message && s.separated(ev.from, ev.to)) {
		if message {
			// The message reached a node that crashed, or was cut off by a partition, while
			// it was in flight: the sender's link breaks.
			s.linkFailed(ev.from, ev.to)
		}
		return
	}
	switch ev.kind {
	case evMembership:
		if n.hostile != nil && s.hostileIn(ev.to, ev.from, &ev.mm) {
			return
		}
		if err := n.p.StepMembership(s.nowD(), s.nodes[ev.from].id, ev.mm); err != nil {
			s.stepError(ev.from)
		}
		s.flush(ev.to)
	case evGossip:
		if ev.gm.Type == gossip.Gossip {
			if b := s.track[ev.gm.ID]; b != nil {
				b.payloads++
				if n.hostile == nil {
					b.honestPayloads++
				}
			}
		}
		if err := n.p.StepGossip(s.nowD(), s.nodes[ev.from].id, ev.gm); err != nil {
			s.stepError(ev.from)
		}
		s.flush(ev.to)
	case evWake:
		if ev.at != n.wakeAt {
			return // superseded by an earlier wake
		}
		n.wakeAt = noWake
		n.p.TickDue(s.nowD())
		s.flush(ev.to)
	case evPeerDown:
		n.p.PeerDown(s.nowD(), s.nodes[ev.from].id)
		s.flush(ev.to)
	case evJoin:
		n.p.Join(s.nowD(), s.nodes[ev.from].id)
		s.flush(ev.to)
	case evAttack:
		s.attackTick(ev.to)
	case evView:
		if err := n.p.StepRouting(s.nowD(), s.nodes[ev.from].id, routing.Message{Type: routing.View, Nodes: ev.mm.Nodes}); err != nil {
			s.stepError(ev.from)
		}
		s.flush(ev.to)
	}
}

// stepError counts a message a core refused: a bug when an honest core sent it, a defence
// at work when an attacker did.
func (s *Sim) stepError(from int32) {
	if s.nodes[from].hostile != nil {
		s.cnt.RefusedFromAttackers++
		return
	}
	s.cnt.StepErrors++
}

// closeLink closes node i's link to peer, as the runtime does for a peer scored out: the
// peer's core learns of it (PeerDown) one link latency later. Node i's own core was told
// by its composition.
func (s *Sim) closeLink(i int32, peer string) {
	s.cnt.ScoredOut++
	j, ok := s.lookup(peer)
	if !ok || !s.nodes[j].alive || s.separated(i, j) {
		return
	}
	s.q.push(event{at: s.q.now + s.latency(i, j), kind: evPeerDown, to: j, from: i})
}

// linkFailed reports to node from, after the detection delay, that its link to node to failed.
func (s *Sim) linkFailed(from, to int32) {
	s.cnt.SendsToCrashed++
	if s.nodes[from].alive {
		s.q.push(event{at: s.q.now + ms(s.cfg.DetectionDelay), kind: evPeerDown, to: from, from: to})
	}
}

// flush carries out what node i's cores asked for, until both are quiet, and schedules the
// node's next wake. The composition refreshes only the deadline of a core the event touched.
func (s *Sim) flush(i int32) {
	n := &s.nodes[i]
	for n.p.HasReady() {
		rd := n.p.Ready()
		for _, env := range rd.Membership {
			if n.hostile != nil && !s.hostileMembershipOut(i, &env.Msg) {
				s.cnt.Withheld++
				continue
			}
			if !s.countSetup(i, &env) {
				continue
			}
			s.send(i, env.To, event{kind: evMembership, mm: env.Msg})
		}
		for _, e := range rd.Events {
			switch e.Type {
			case membership.NeighborUp, membership.NeighborDown:
				s.cnt.NeighborChanges++
			case membership.NeedContacts:
				// What the signaling server's peer list gives a real node: a live node,
				// not already a neighbour.
				s.cnt.ContactRequests++
				if s.serverGone {
					continue
				}
				if c := s.RandomLive(); c >= 0 && c != i && !slices.Contains(n.p.ActiveView(), s.nodes[c].id) && !n.p.Refused(s.nowD(), s.nodes[c].id) {
					n.p.Join(s.nowD(), s.nodes[c].id)
				}
			}
		}
		for _, env := range rd.Gossip {
			if n.hostile != nil && !s.hostileGossipOut(i, &env.Msg) {
				s.cnt.Withheld++
				continue
			}
			s.send(i, env.To, event{kind: evGossip, gm: env.Msg})
		}
		for _, d := range rd.Deliveries {
			s.recordDelivery(i, d)
		}
		s.sendRouting(i, rd.Routing)
		for _, peer := range rd.Disconnect {
			if n.hostile != nil && n.hostile.attack.holds() {
				s.cnt.Withheld++
				continue // a slot won is never given back
			}
			s.closeLink(i, peer)
		}
	}
	s.scheduleWake(i)
}

func (s *Sim) scheduleWake(i int32) {
	n := &s.nodes[i]
	next, ok := n.p.NextDeadline()
	if !ok {
		return
	}
	at := ms(next)
	if at <= s.q.now {
		at = s.q.now + 1
	}
	if n.wakeAt != noWake && n.wakeAt <= at {
		return
	}
	n.wakeAt = at
	s.q.push(event{at: at, kind: evWake, to: i})
}

func (s *Sim) send(from int32, to string, ev event) {
	j, ok := s.lookup(to)
	if !ok {
		// A core addressed a node that never existed: a bug in a core, counted so tests
		// catch it; the sender sees a failed link like any unreachable peer.
		s.cnt.MessagesToUnknownAddresses++
		return
	}
	switch ev.kind {
	case evMembership:
		s.cnt.MembershipMessages++
	case evView:
		s.cnt.RoutingMessages++
	default:
		s.cnt.GossipMessages++
		switch ev.gm.Type {
		case gossip.Gossip:
			s.cnt.PayloadMessages++
			s.cnt.PayloadBytes += uint64(len(ev.gm.Payload))
		case gossip.History:
			s.cnt.PayloadBytes += uint64(len(ev.gm.Payload))
			fallthrough
		case gossip.Digest, gossip.Have, gossip.Pull:
			if gossip.IsHello(&ev.gm) {
				size, buf, _ := wireSize(s.wireBuf, &ev.gm)
				s.wireBuf = buf
				s.cnt.HelloBytes += uint64(size)
				break
			}
			s.cnt.CatchUpMessages++
			size, buf, ok := wireSize(s.wireBuf, &ev.gm)
			s.wireBuf = buf
			if !ok {
				// The wire format cannot carry what a core produced: a bug, counted as a
				// refused message so that tests catch it.
				s.cnt.StepErrors++
			}
			s.cnt.CatchUpBytes += uint64(size)
		}
	}
	if !s.nodes[j].alive || s.separated(from, j) {
		s.linkFailed(from, j)
		return
	}
	if s.cfg.Loss > 0 && s.rng.Float64() < s.cfg.Loss {
		s.cnt.DroppedByLoss++
		return
	}
	ev.at = s.q.now + s.latency(from, j)
	ev.from, ev.to = from, j
	s.q.push(ev)
}

// nodeID names node i. The index is written in the name, so the simulator finds a node from
// the ID a core addresses without a map lookup on every send (see lookup).
func nodeID(i int32) string { return fmt.Sprintf("n%07d", i) }

// idBlockSize is how many node IDs share one backing string (512 KiB of ID bytes).
const idBlockSize = 1 << 16

// idArena hands out node IDs (nodeID's format) as slices of large shared strings. The cores
// compare and hash these IDs on nearly every step; strings allocated one by one end up
// scattered over gigabytes of heap, one cache miss per comparison at 100,000 nodes, while
// 100,000 IDs packed together take 800 KB and stay in cache. The IDs are equal, byte for
// byte, to nodeID's, so nothing the cores see changes.
type idArena struct{ blocks []string }

// id returns node i's ID, making its block the first time.
func (a *idArena) id(i int32) string {
	b := int(i) / idBlockSize
	for len(a.blocks) <= b {
		a.blocks = append(a.blocks, makeIDBlock(int32(len(a.blocks)*idBlockSize)))
	}
	k := int(i) % idBlockSize * idLen
	return a.blocks[b][k : k+idLen]
}

// maxNodes bounds the nodes a simulation can add: IDs have seven digits.
const maxNodes = 10_000_000

// idLen is the length of every node ID: "n" and seven digits.
const idLen = 8

// makeIDBlock returns the IDs of nodes first to first+idBlockSize-1, concatenated.
func makeIDBlock(first int32) string {
	buf := make([]byte, 0, idBlockSize*idLen)
	for k := range int32(idBlockSize) {
		buf = append(buf, nodeID(first+k)...)
	}
	return string(buf)
}

// lookup returns the index of the node with ID id.
func (s *Sim) lookup(id string) (int32, bool) {
	if len(id) != idLen || id[0] != 'n' {
		return 0, false
	}
	var i int32
	for k := 1; k < len(id); k++ {
		d := id[k] - '0'
		if d > 9 {
			return 0, false
		}
		i = i*10 + int32(d)
	}
	if int(i) >= len(s.nodes) || s.nodes[i].id != id {
		return 0, false
	}
	return i, true
}

// latency returns the fixed one-way latency of the link between a and b in milliseconds.
func (s *Sim) latency(a, b int32) int64 {
	if a > b {
		a, b = b, a
	}
	lo, hi := ms(s.cfg.LatencyMin), ms(s.cfg.LatencyMax)
	if hi <= lo {
		return lo
	}
	h := splitmix64(s.cfg.Seed ^ uint64(a)<<32 ^ uint64(b))
	return lo + int64(h%uint64(hi-lo+1))
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (s *Sim) recordDelivery(i int32, d gossip.Delivery) {
	b := s.track[d.ID]
	if b == nil {
		if len(s.hostiles) > 0 && s.nodes[i].hostile == nil {
			if j, ok := s.lookup(d.Origin); ok && s.nodes[j].hostile != nil {
				s.cnt.HostileDeliveries++
			}
		}
		return
	}
	if b.has(i) {
		s.cnt.DuplicateDeliveries++
		return
	}
	if d.History {
		// Caught up on: the hops of a History say nothing about the tree's depth, and RMR
		// is the tree's.
		b.caught = s.setBit(b.caught, i)
		s.cnt.HistoryDeliveries++
		return
	}
	b.delivered = s.setBit(b.delivered, i)
	b.count++
	if s.nodes[i].hostile == nil {
		b.honestCount++
	}
	if int(d.Hops) > b.maxHops {
		b.maxHops = int(d.Hops)
	}
}

// setBit sets node i's bit in set, growing it to the number of nodes when it is too short.
func (s *Sim) setBit(set []uint64, i int32) []uint64 {
	if int(i)/64 >= len(set) {
		grown := make([]uint64, (len(s.nodes)+63)/64)
		copy(grown, set)
		set = grown
	}
	set[i/64] |= 1 << (uint(i) % 64)
	return set
}

func bitSet(set []uint64, i int32) bool {
	return int(i)/64 < len(set) && set[i/64]&(1<<(uint(i)%64)) != 0
}

// inTree reports whether node i delivered the message through the tree, has whether it
// delivered it at all.
func (b *broadcast) inTree(i int32) bool { return bitSet(b.delivered, i) }
func (b *broadcast) has(i int32) bool    { return bitSet(b.delivered, i) || bitSet(b.caught, i) }

// MessageResult is how far one broadcast got.
type MessageResult struct {
	ID gossip.MessageID
	// Eligible is the number of nodes that were alive from the broadcast until it was
	// measured and had joined at least JoinGrace before it; Reached is how many of them
	// delivered it by then, and CaughtUp how many of those by catch-up rather than through
	// the tree. Catch-up races the tree's own repair (a Graft a second or more after a
	// missed payload): under churn it is often first, so a tree-only count would blame the
	// tree for messages it was about to deliver. Run without catch-up for Plumtree alone.
	Eligible, Reached, CaughtUp int
	// Reliability is Reached / Eligible.
	Reliability float64
	// Delivered counts every node that delivered the message through the tree, eligible or
	// not; Payloads is the number of Gossip messages that carried it to live nodes.
	// RMR = Payloads/(Delivered-1) - 1.
	Delivered, Payloads int
	RMR                 float64
	// LastDeliveryHop is the largest hop count at which a node delivered it through the
	// tree (deliveries by catch-up do not count).
	LastDeliveryHop int
	// EventualAlive is the number of nodes alive when Eventual was taken (every one, however
	// late it joined), EventualReached how many of them had delivered the message by then,
	// and EventualReliability the ratio; zero until Eventual is taken.
	EventualAlive, EventualReached int
	EventualReliability            float64
	// HonestEligible and HonestReached are Eligible and Reached over honest nodes only
	// (attackers' cores deliver too), and HonestReliability their ratio; HonestRMR is the
	// RMR of the payloads honest nodes received. Without attackers they equal the others.
	HonestEligible, HonestReached int
	HonestReliability, HonestRMR  float64
}

// Measure reports how far broadcast id got by now: the immediate figure. Nodes count as
// eligible if they were alive from the broadcast until now and were added at least joinGrace
// before it. The message stays followed (later deliveries are recorded for Eventual) until
// Forget.
func (s *Sim) Measure(id gossip.MessageID, joinGrace time.Duration) (MessageResult, error) {
	b := s.track[id]
	if b == nil {
		return MessageResult{}, fmt.Errorf("sim: message %s is not being followed", id)
	}
	r := MessageResult{ID: id, Delivered: b.count, Payloads: b.payloads, LastDeliveryHop: b.maxHops}
	cutoff := b.sentAt - ms(joinGrace)
	for _, i := range s.live {
		if s.nodes[i].bornAt > cutoff {
			continue
		}
		r.Eligible++
		honest := s.nodes[i].hostile == nil
		if honest {
			r.HonestEligible++
		}
		if b.has(i) {
			r.Reached++
			if honest {
				r.HonestReached++
			}
			if !b.inTree(i) {
				r.CaughtUp++
			}
		}
	}
	if r.Eligible > 0 {
		r.Reliability = float64(r.Reached) / float64(r.Eligible)
	}
	if r.HonestEligible > 0 {
		r.HonestReliability = float64(r.HonestReached) / float64(r.HonestEligible)
	}
	if r.Delivered > 1 {
		r.RMR = float64(r.Payloads)/float64(r.Delivered-1) - 1
	}
	if b.honestCount > 1 {
		r.HonestRMR = float64(b.honestPayloads)/float64(b.honestCount-1) - 1
	}
	return r, nil
}

// Eventual fills r's eventual figures for the message r.ID: how many of the nodes alive now,
// whenever they joined, have delivered it. Catch-up is what brings it to the nodes the tree
// missed; a node that joined later than the gossip CatchUpWindow after the message was sent
// cannot get it (its neighbours no longer offer it), by design.
func (s *Sim) Eventual(r *MessageResult) error {
	b := s.track[r.ID]
	if b == nil {
		return fmt.Errorf("sim: message %s is not being followed", r.ID)
	}
	r.EventualAlive, r.EventualReached = len(s.live), 0
	for _, i := range s.live {
		if b.has(i) {
			r.EventualReached++
		}
	}
	r.EventualReliability = 0
	if r.EventualAlive > 0 {
		r.EventualReliability = float64(r.EventualReached) / float64(r.EventualAlive)
	}
	return nil
}

// Forget stops following message id and frees its delivery bitset.
func (s *Sim) Forget(id gossip.MessageID) { delete(s.track, id) }
