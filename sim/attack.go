package sim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/membership"
)

// Attack names a hostile policy that some simulated nodes run against the honest ones
// (Sim.AddAttacker, Experiment.Attack). An attacker is a real overlay.Peer, so it speaks the
// protocols as the wire carries them and stays in the overlay like any node; the simulator
// filters and rewrites what its cores send, answers some requests in their place, and injects
// crafted messages every Config.AttackInterval once StartAttacks is called. Honest nodes run
// the unchanged cores. Attackers know every node (the simulator's list), a stronger adversary
// than one that has to learn IDs through shuffles.
type Attack string

const (
	// NoAttack: every node is honest.
	NoAttack Attack = ""
	// AttackDrop joins and takes part in membership normally, but never sends a payload:
	// no GOSSIP (so it forwards nothing and answers no GRAFT) and no HISTORY (it answers no
	// catch-up PULL). Its core still announces what it received (IHAVE, catch-up HAVE), so
	// honest nodes are promised messages that never come. It never sends PRUNE either, so it
	// stays an eager peer of its honest neighbours.
	AttackDrop Attack = "drop"
	// AttackEclipse drops like AttackDrop and aims, every AttackInterval, a high-priority
	// NEIGHBOR, a JOIN and a SHUFFLE (of attacker IDs, TTL 0) at three honest nodes drawn at
	// random, to take their active-view slots. It accepts every NEIGHBOR request in its core's
	// place and never sends DISCONNECT, so a slot it won stays won.
	AttackEclipse Attack = "eclipse"
	// AttackPoison drops like AttackDrop and fills honest passive views with attacker IDs:
	// every SHUFFLE, SHUFFLE_REPLY and FORWARD_JOIN its core sends carries attacker IDs only,
	// and every AttackInterval it sends a SHUFFLE (TTL 0), an unsolicited SHUFFLE_REPLY and a
	// FORWARD_JOIN (TTL PRWL, naming an attacker) to honest nodes drawn at random, each
	// SHUFFLE carrying as many IDs as a receiver accepts (membership MaxMessageNodes). Like
	// AttackEclipse it accepts every NEIGHBOR and never sends DISCONNECT, so a repair that
	// picks an attacker from a poisoned view succeeds and stays.
	AttackPoison Attack = "poison"
	// AttackFlood forwards normally and broadcasts Config.FloodBurst messages of
	// Config.FloodPayload bytes every AttackInterval, far above any fair share.
	AttackFlood Attack = "flood"
)

// Attacks lists the hostile policies, in the order the README and the help list them.
var Attacks = []Attack{AttackDrop, AttackEclipse, AttackPoison, AttackFlood}

// Valid reports whether a is NoAttack or one of Attacks.
func (a Attack) Valid() bool {
	switch a {
	case NoAttack, AttackDrop, AttackEclipse, AttackPoison, AttackFlood:
		return true
	}
	return false
}

// drops reports whether the policy withholds payloads.
func (a Attack) drops() bool { return a == AttackDrop || a == AttackEclipse || a == AttackPoison }

// holds reports whether the policy accepts every NEIGHBOR and never lets a link go.
func (a Attack) holds() bool { return a == AttackEclipse || a == AttackPoison }

// hostile is an attacker's state beside its cores.
type hostile struct {
	attack Attack
	// rng draws targets and attacker IDs: the attacker's own source, so honest nodes' draws
	// and the simulator's never shift.
	rng *rand.Rand
	// ticking says an attack tick is scheduled.
	ticking bool
}

// AttackStats are the attack's effect on the honest nodes (see Sim.AttackStats).
type AttackStats struct {
	// HonestLive is the number of live honest nodes.
	HonestLive int
	// Eclipsed counts live honest nodes with no live honest node in their active view.
	Eclipsed int
	// PoisonedPassive is the mean, over live honest nodes with a non-empty passive view, of
	// the share of attacker IDs in it.
	PoisonedPassive float64
	// HostileInActive is the mean share of attackers in live honest nodes' active views.
	HostileInActive float64
}

// AddAttacker adds a node as AddNode does, which then runs the hostile policy a: its filters
// at once (so a drop attacker never forwards), its injected messages from StartAttacks on.
func (s *Sim) AddAttacker(a Attack) (int32, error) {
	if a == NoAttack || !a.Valid() {
		return -1, fmt.Errorf("sim: unknown attack %q", a)
	}
	i := int32(len(s.nodes))
	h := &hostile{attack: a, rng: rand.New(rand.NewPCG(s.cfg.Seed^0xa77ac4e5, uint64(i)))}
	// Mark the slot hostile before the node joins, so the filters apply to its first output.
	s.pendingHostile = h
	j, err := s.AddNode()
	s.pendingHostile = nil
	if err != nil {
		return -1, err
	}
	s.hostiles = append(s.hostiles, j)
	if s.attacking {
		s.scheduleAttack(j, s.q.now+1+int64(h.rng.IntN(int(ms(s.cfg.AttackInterval)))))
	}
	return j, nil
}

// IsAttacker reports whether node i runs a hostile policy.
func (s *Sim) IsAttacker(i int32) bool { return s.nodes[i].hostile != nil }

// Attackers returns the number of attackers ever added.
func (s *Sim) Attackers() int { return len(s.hostiles) }

// StartAttacks starts the attackers' injected messages (eclipse, poison, flood), each
// attacker at a random offset within Config.AttackInterval so they do not act in lockstep.
// Attackers added later start at once.
func (s *Sim) StartAttacks() {
	if s.attacking {
		return
	}
	s.attacking = true
	iv := ms(s.cfg.AttackInterval)
	for _, i := range s.hostiles {
		s.scheduleAttack(i, s.q.now+1+int64(s.nodes[i].hostile.rng.IntN(int(iv))))
	}
}

func (s *Sim) scheduleAttack(i int32, at int64) {
	h := s.nodes[i].hostile
	if h.attack == AttackDrop || h.ticking {
		return // dropping needs no timer
	}
	h.ticking = true
	s.q.push(event{at: at, kind: evAttack, to: i})
}

// attackTick is one round of attacker i's injected messages.
func (s *Sim) attackTick(i int32) {
	n := &s.nodes[i]
	h := n.hostile
	h.ticking = false
	switch h.attack {
	case AttackEclipse:
		// Three honest nodes, one message each: every one of them costs its receiver an
		// active-view slot (the JOIN also sends FORWARD_JOIN walks whose ends ask this
		// attacker to be their neighbour, with high priority).
		if v := s.randomHonest(h.rng); v >= 0 {
			s.inject(i, v, membership.Message{Type: membership.Neighbor, HighPriority: true})
		}
		if v := s.randomHonest(h.rng); v >= 0 {
			s.inject(i, v, membership.Message{Type: membership.Join})
		}
		if v := s.randomHonest(h.rng); v >= 0 {
			s.inject(i, v, membership.Message{Type: membership.Shuffle, Node: n.id, TTL: 0, Nodes: s.attackerIDs(h.rng, n.id)})
		}
	case AttackPoison:
		if v := s.randomHonest(h.rng); v >= 0 {
			s.inject(i, v, membership.Message{Type: membership.Shuffle, Node: n.id, TTL: 0, Nodes: s.attackerIDs(h.rng, n.id)})
		}
		if v := s.randomHonest(h.rng); v >= 0 {
			s.inject(i, v, membership.Message{Type: membership.ShuffleReply, Nodes: s.attackerIDs(h.rng, "")})
		}
		if v := s.randomHonest(h.rng); v >= 0 {
			s.inject(i, v, membership.Message{Type: membership.ForwardJoin, Node: s.randomAttackerID(h.rng), TTL: s.cfg.Membership.PRWL})
		}
	case AttackFlood:
		payload := make([]byte, s.cfg.FloodPayload)
		for range s.cfg.FloodBurst {
			if _, err := n.p.Broadcast(s.nowD(), payload); err != nil {
				s.cnt.StepErrors++
				break
			}
			s.cnt.FloodBroadcasts++
		}
		s.flush(i)
	}
	s.scheduleAttack(i, s.q.now+ms(s.cfg.AttackInterval))
}

// inject sends a crafted membership message from attacker i to node v, past i's cores.
func (s *Sim) inject(i, v int32, m membership.Message) {
	s.cnt.InjectedMessages++
	s.send(i, s.nodes[v].id, event{kind: evMembership, mm: m})
}

// randomHonest returns a live honest node drawn with rng, or -1 after a few unlucky draws
// (an overlay that is nearly all attackers).
func (s *Sim) randomHonest(rng *rand.Rand) int32 {
	for range 32 {
		if len(s.live) == 0 {
			return -1
		}
		v := s.live[rng.IntN(len(s.live))]
		if s.nodes[v].hostile == nil {
			return v
		}
	}
	return -1
}

// randomAttackerID returns the ID of an attacker drawn with rng.
func (s *Sim) randomAttackerID(rng *rand.Rand) string {
	return s.nodes[s.hostiles[rng.IntN(len(s.hostiles))]].id
}

// attackerIDs returns as many distinct attacker IDs as a receiver accepts in one message
// (membership MaxMessageNodes, or every attacker when there are fewer), first among them
// first when it is not "" (a SHUFFLE names its origin first).
func (s *Sim) attackerIDs(rng *rand.Rand, first string) []string {
	k := min(s.cfg.Membership.MaxMessageNodes, len(s.hostiles))
	ids := make([]string, 0, k)
	if first != "" {
		ids = append(ids, first)
	}
	for tries := 0; len(ids) < k && tries < 4*k; tries++ {
		id := s.randomAttackerID(rng)
		dup := false
		for _, x := range ids {
			if x == id {
				dup = true
				break
			}
		}
		if !dup {
			ids = append(ids, id)
		}
	}
	return ids
}

// hostileIn lets attacker i answer an incoming membership message in its cores' place; it
// reports whether it did (the cores then never see the message).
func (s *Sim) hostileIn(i int32, from int32, m *membership.Message) bool {
	h := s.nodes[i].hostile
	if !h.attack.holds() || m.Type != membership.Neighbor {
		return false
	}
	// Every request is accepted: a slot in an honest view is what the attacker wants.
	s.send(i, s.nodes[from].id, event{kind: evMembership, mm: membership.Message{Type: membership.NeighborReply, Accepted: true}})
	return true
}

// hostileMembershipOut filters and rewrites a membership message attacker i's core sends;
// it reports whether to send it.
func (s *Sim) hostileMembershipOut(i int32, m *membership.Message) bool {
	h := s.nodes[i].hostile
	if !h.attack.holds() {
		return true
	}
	switch m.Type {
	case membership.Disconnect:
		return false // a slot won is never given back
	case membership.Shuffle:
		if h.attack == AttackPoison {
			m.Nodes = s.attackerIDs(h.rng, m.Node)
		}
	case membership.ShuffleReply:
		if h.attack == AttackPoison {
			m.Nodes = s.attackerIDs(h.rng, "")
		}
	case membership.ForwardJoin:
		if h.attack == AttackPoison {
			m.Node = s.randomAttackerID(h.rng)
		}
	}
	return true
}

// hostileGossipOut filters a gossip message attacker i's core sends; it reports whether to
// send it.
func (s *Sim) hostileGossipOut(i int32, m *gossip.Message) bool {
	if !s.nodes[i].hostile.attack.drops() {
		return true
	}
	switch m.Type {
	case gossip.Gossip, gossip.History, gossip.Prune:
		return false
	}
	return true
}

// AttackStats measures what the attackers did to the honest nodes' views now.
func (s *Sim) AttackStats() AttackStats {
	var st AttackStats
	var poisonSum, activeSum float64
	poisonN, activeN := 0, 0
	for _, i := range s.live {
		n := &s.nodes[i]
		if n.hostile != nil {
			continue
		}
		st.HonestLive++
		honest, hostile := 0, 0
		active := n.p.ActiveView()
		for _, p := range active {
			j, ok := s.lookup(p)
			if !ok || !s.nodes[j].alive {
				continue
			}
			if s.nodes[j].hostile != nil {
				hostile++
			} else {
				honest++
			}
		}
		if honest == 0 {
			st.Eclipsed++
		}
		if len(active) > 0 {
			activeSum += float64(hostile) / float64(len(active))
			activeN++
		}
		passive := n.p.PassiveView()
		if len(passive) == 0 {
			continue
		}
		bad := 0
		for _, p := range passive {
			if j, ok := s.lookup(p); ok && s.nodes[j].hostile != nil {
				bad++
			}
		}
		poisonSum += float64(bad) / float64(len(passive))
		poisonN++
	}
	if poisonN > 0 {
		st.PoisonedPassive = poisonSum / float64(poisonN)
	}
	if activeN > 0 {
		st.HostileInActive = activeSum / float64(activeN)
	}
	return st
}

// validateAttack checks the attack settings of c.
func (c Config) validateAttack() error {
	switch {
	case c.AttackInterval < time.Millisecond:
		return fmt.Errorf("sim: AttackInterval %v is below the simulator's 1 ms resolution", c.AttackInterval)
	case c.FloodBurst < 1:
		return fmt.Errorf("sim: FloodBurst %d must be at least 1", c.FloodBurst)
	case c.FloodPayload < 0 || c.FloodPayload > c.Gossip.MaxPayload:
		return fmt.Errorf("sim: FloodPayload %d is not in [0, Gossip.MaxPayload %d]", c.FloodPayload, c.Gossip.MaxPayload)
	}
	return nil
}
