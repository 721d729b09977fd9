package overlay

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/routing"
)

// inFlight is a message between two peers of a testNet: membership or gossip.
type inFlight struct {
	from, to string
	mm       *membership.Message
	gm       *gossip.Message
	rm       *routing.Message
}

// testNet drives Peers the way a discrete-event driver does: one FIFO of messages with zero
// latency, time that moves only when the test says so, TickDue at each peer's NextDeadline.
// After every input a peer is drained and checked against the invariants (checkPeer).
type testNet struct {
	t     testing.TB
	cfg   Config
	seed  uint64
	now   time.Duration
	peers map[string]*Peer
	names []string // every peer ever added, in order
	dead  map[string]bool
	queue []inFlight
	// delivered counts deliveries per peer and message; events logs each peer's events.
	delivered map[string]map[gossip.MessageID]int
	events    map[string][]membership.Event
	// answerContacts makes a NeedContacts event join a random live peer, as the simulator does.
	answerContacts bool
	rng            *rand.Rand
	// disconnects lists, per peer, the peers its scoring disconnected.
	disconnects map[string][]string
	// routed lists, per peer, the ROUTED envelopes delivered to it.
	routed map[string][]routing.Message
}

// testConfig is DefaultConfig with LAN timing, so a few seconds hold several rounds.
func testConfig() Config {
	c := DefaultConfig()
	c.Membership = membership.DefaultLANConfig()
	return c
}

func newTestNet(t testing.TB, seed uint64) *testNet {
	return &testNet{
		t: t, cfg: testConfig(), seed: seed,
		peers:       map[string]*Peer{},
		dead:        map[string]bool{},
		delivered:   map[string]map[gossip.MessageID]int{},
		events:      map[string][]membership.Event{},
		disconnects: map[string][]string{},
		routed:      map[string][]routing.Message{},
		rng:         rand.New(rand.NewPCG(seed, 99)),
	}
}

// add creates peer name, which joins through contacts[0] (the others are its fallbacks).
func (n *testNet) add(name string, contacts ...string) *Peer {
	n.t.Helper()
	c := n.cfg
	c.Self = name
	k := uint64(len(n.names))
	c.Membership.Rand = rand.New(rand.NewPCG(n.seed, 2*k+1))
	c.Membership.Contacts = contacts
	c.Gossip.Rand = rand.New(rand.NewPCG(n.seed, 2*k+2))
	p, err := New(c)
	if err != nil {
		n.t.Fatalf("New(%s): %v", name, err)
	}
	n.peers[name] = p
	n.names = append(n.names, name)
	n.delivered[name] = map[gossip.MessageID]int{}
	p.Tick(n.now)
	if len(contacts) > 0 {
		p.Join(n.now, contacts[0])
	}
	n.drain(name)
	return p
}

func (n *testNet) live() []string {
	var out []string
	for _, name := range n.names {
		if !n.dead[name] {
			out = append(out, name)
		}
	}
	return out
}

// drain carries out peer name's output until it is quiet, then checks the invariants.
func (n *testNet) drain(name string) {
	n.t.Helper()
	p := n.peers[name]
	for p.HasReady() {
		rd := p.Ready()
		for _, env := range rd.Membership {
			m := env.Msg
			n.queue = append(n.queue, inFlight{from: name, to: env.To, mm: &m})
		}
		for _, e := range rd.Events {
			n.events[name] = append(n.events[name], e)
			if e.Type == membership.NeedContacts && n.answerContacts {
				live := n.live()
				if c := live[n.rng.IntN(len(live))]; c != name && !slices.Contains(p.ActiveView(), c) {
					p.Join(n.now, c)
				}
			}
		}
		for _, env := range rd.Gossip {
			m := env.Msg
			n.queue = append(n.queue, inFlight{from: name, to: env.To, gm: &m})
		}
		for _, d := range rd.Deliveries {
			n.delivered[name][d.ID]++
		}
		for _, env := range rd.Routing {
			m := env.Msg
			n.queue = append(n.queue, inFlight{from: name, to: env.To, rm: &m})
		}
		n.routed[name] = append(n.routed[name], rd.Routed...)
		for _, q := range rd.Disconnect {
			// The driver closes the link: the other end sees it fail.
			n.disconnects[name] = append(n.disconnects[name], q)
			if other := n.peers[q]; other != nil && !n.dead[q] {
				other.PeerDown(n.now, name)
				n.drain(q)
			}
		}
	}
	n.checkPeer(name)
}

// checkPeer asserts what must hold of a quiet peer, after every event (iroh-gossip checks the
// same after each step of its simulations).
func (n *testNet) checkPeer(name string) {
	n.t.Helper()
	p := n.peers[name]
	active, passive := p.ActiveView(), p.PassiveView()
	eager, lazy := p.EagerPeers(), p.LazyPeers()
	// Plumtree's neighbours are exactly HyParView's active view, split in two.
	tree := append(slices.Clone(eager), lazy...)
	slices.Sort(tree)
	sortedActive := slices.Sorted(slices.Values(active))
	if !slices.Equal(tree, sortedActive) {
		n.t.Fatalf("%s at %v: eager %v ∪ lazy %v != active view %v", name, n.now, eager, lazy, active)
	}
	if len(slices.Compact(tree)) != len(eager)+len(lazy) {
		n.t.Fatalf("%s at %v: a peer is both eager and lazy: %v %v", name, n.now, eager, lazy)
	}
	if len(active) > n.cfg.Membership.ActiveSize || len(passive) > n.cfg.Membership.PassiveSize {
		n.t.Fatalf("%s at %v: views over their bounds: active %d, passive %d", name, n.now, len(active), len(passive))
	}
	for _, q := range active {
		if q == name || slices.Contains(passive, q) {
			n.t.Fatalf("%s at %v: %s in the active view is itself or also passive (passive %v)", name, n.now, q, passive)
		}
	}
	if slices.Contains(passive, name) {
		n.t.Fatalf("%s at %v: passive view holds itself", name, n.now)
	}
	if at, ok := p.NextDeadline(); ok && at <= n.now {
		n.t.Fatalf("%s at %v: a quiet peer has a deadline in the past (%v)", name, n.now, at)
	}
	for id, k := range n.delivered[name] {
		if k > 1 {
			n.t.Fatalf("%s: message %s delivered %d times", name, id, k)
		}
	}
}

// deliver hands every queued message to its destination, in order, until the queue is empty.
// A message to a dead peer fails: the sender gets PeerDown, as from a link layer.
func (n *testNet) deliver() {
	n.t.Helper()
	for len(n.queue) > 0 {
		m := n.queue[0]
		n.queue = n.queue[1:]
		if n.dead[m.from] {
			continue
		}
		if n.dead[m.to] || n.peers[m.to] == nil {
			n.peers[m.from].PeerDown(n.now, m.to)
			n.drain(m.from)
			continue
		}
		p := n.peers[m.to]
		var err error
		switch {
		case m.mm != nil:
			err = p.StepMembership(n.now, m.from, *m.mm)
		case m.rm != nil:
			err = p.StepRouting(n.now, m.from, *m.rm)
		default:
			err = p.StepGossip(n.now, m.from, *m.gm)
		}
		if err != nil {
			n.t.Fatalf("%s refused a message from %s: %v", m.to, m.from, err)
		}
		n.drain(m.to)
	}
}

// runFor moves time forward by d, waking each live peer at its NextDeadline.
func (n *testNet) runFor(d time.Duration) {
	n.t.Helper()
	end := n.now + d
	for {
		n.deliver()
		next, found := end, false
		for _, name := range n.live() {
			if at, ok := n.peers[name].NextDeadline(); ok && at <= next {
				next, found = at, true
			}
		}
		if !found {
			break
		}
		n.now = next
		for _, name := range n.live() {
			if at, ok := n.peers[name].NextDeadline(); ok && at <= n.now {
				n.peers[name].TickDue(n.now)
				n.drain(name)
			}
		}
	}
	n.now = end
}

// crash stops peer name; every neighbour notices (a link heartbeat) and gets PeerDown.
func (n *testNet) crash(name string) {
	n.t.Helper()
	n.dead[name] = true
	for _, q := range n.live() {
		if slices.Contains(n.peers[q].ActiveView(), name) {
			n.peers[q].PeerDown(n.now, name)
			n.drain(q)
		}
	}
}

func (n *testNet) broadcast(name, text string) gossip.MessageID {
	n.t.Helper()
	if n.dead[name] {
		// A crashed peer is no longer ticked, so its deadlines fall behind: checkPeer would
		// report that, not the protocols.
		n.t.Fatalf("broadcast from %s, which crashed", name)
	}
	id, err := n.peers[name].Broadcast(n.now, []byte(text))
	if err != nil {
		n.t.Fatalf("broadcast from %s: %v", name, err)
	}
	n.drain(name)
	return id
}

// missing lists the live peers that did not deliver id.
func (n *testNet) missing(id gossip.MessageID) []string {
	var out []string
	for _, name := range n.live() {
		if n.delivered[name][id] == 0 {
			out = append(out, name)
		}
	}
	return out
}

func peerName(i int) string { return fmt.Sprintf("p%02d", i) }

// build adds k peers, each joining through a random earlier one, and lets the overlay settle.
func (n *testNet) build(k int) {
	n.t.Helper()
	n.add(peerName(0))
	for i := 1; i < k; i++ {
		n.add(peerName(i), peerName(n.rng.IntN(i)))
		n.deliver()
	}
	n.runFor(10 * n.cfg.Membership.ShuffleInterval)
}
