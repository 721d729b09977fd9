package membership

import (
	"container/heap"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"
)

// network is a test-only driver: it holds cores by name, delivers their messages through one
// FIFO queue (so per-pair order is kept, like the reliable ordered links of the runtime) with
// zero latency, advances time through the cores' deadlines, and plays the link layer: a
// message to a dead node comes back to its sender as PeerDown, like a failed send.
type network struct {
	seed  uint64
	cfg   Config // template for new cores: Self, Rand and Contacts are set per node
	nodes map[string]*netNode
	names []string // creation order; every loop over nodes uses it or a sorted copy
	queue []netMsg
	now   time.Duration
	trace *strings.Builder // nil: quiet
	// delivered counts messages handed to Step, for property tests that bound the work.
	delivered int
	// timers holds (deadline, node) pairs pushed whenever a node's deadline may have
	// changed; an entry no longer matching the node's NextDeadline is stale and skipped.
	timers timerHeap
}

type timerEntry struct {
	at    time.Duration
	index int // creation order: nodes due at the same time wake in this order
	name  string
}

type timerHeap []timerEntry

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || (h[i].at == h[j].at && h[i].index < h[j].index)
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type netNode struct {
	core  *Core
	index int
	alive bool
	// mute drops every message to this node without a PeerDown: a peer that stopped
	// answering but whose link has not failed, so only the sender's timeout notices.
	mute bool
	// script, when set, stands in for the core: a hostile peer in the attack tests. It is
	// handed every message sent to the node and returns its answers to the sender.
	script func(from string, m Message) []Message
}

type netMsg struct {
	from, to string
	msg      Message
}

func newNetwork(seed uint64, cfg Config) *network {
	return &network{seed: seed, cfg: cfg, nodes: map[string]*netNode{}}
}

func (n *network) logf(format string, args ...any) {
	if n.trace != nil {
		fmt.Fprintf(n.trace, format, args...)
		n.trace.WriteByte('\n')
	}
}

// add creates (or re-creates, fresh, if it died) the node name with the given contacts,
// and starts its clock.
func (n *network) add(name string, contacts []string) error {
	if nd, ok := n.nodes[name]; ok && nd.alive {
		return fmt.Errorf("node %s already exists", name)
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	cfg := n.cfg
	cfg.Self = name
	cfg.Rand = rand.New(rand.NewPCG(n.seed, h.Sum64()))
	cfg.Contacts = contacts
	c, err := New(cfg)
	if err != nil {
		return err
	}
	index := len(n.names)
	if old, ok := n.nodes[name]; ok {
		index = old.index
	} else {
		n.names = append(n.names, name)
	}
	n.nodes[name] = &netNode{core: c, index: index, alive: true}
	c.Tick(n.now)
	n.collect(name)
	return nil
}

func (n *network) live(name string) (*netNode, error) {
	nd, ok := n.nodes[name]
	if !ok {
		return nil, fmt.Errorf("unknown node %s", name)
	}
	if !nd.alive {
		return nil, fmt.Errorf("node %s is dead", name)
	}
	return nd, nil
}

// collect queues name's messages, logs its events and notes its next deadline. The harness
// calls it after every call into a core.
func (n *network) collect(name string) {
	nd := n.nodes[name]
	if dl, ok := nd.core.NextDeadline(); ok {
		heap.Push(&n.timers, timerEntry{at: dl, index: nd.index, name: name})
	}
	rd := nd.core.Ready()
	for _, ev := range rd.Events {
		switch ev.Type {
		case NeighborUp:
			n.logf("  %s: up %s", name, ev.Peer)
		case NeighborDown:
			n.logf("  %s: down %s", name, ev.Peer)
		default:
			n.logf("  %s: %s", name, ev.Type)
		}
	}
	for _, e := range rd.Messages {
		n.queue = append(n.queue, netMsg{from: name, to: e.To, msg: e.Msg})
	}
}

// deliverAll delivers queued messages until the network is quiet (or limit messages were
// delivered, to stop a livelock from hanging a test). It reports whether it went quiet.
func (n *network) deliverAll(limit int) bool {
	for i := 0; len(n.queue) > 0; i++ {
		if i >= limit {
			return false
		}
		m := n.queue[0]
		n.queue[0] = netMsg{}
		n.queue = n.queue[1:]
		n.deliver(m)
	}
	n.queue = nil
	return true
}

func (n *network) deliver(m netMsg) {
	sender := n.nodes[m.from]
	if sender == nil || !sender.alive {
		return // the sender died with the message in its queue
	}
	rcv := n.nodes[m.to]
	switch {
	case rcv == nil || !rcv.alive:
		n.logf("%s -> %s %s (%s is down: PeerDown)", m.from, m.to, formatMsg(m.msg), m.to)
		sender.core.PeerDown(m.to)
		n.collect(m.from)
	case rcv.mute:
		n.logf("%s -> %s %s (lost)", m.from, m.to, formatMsg(m.msg))
	case rcv.script != nil:
		n.logf("%s -> %s %s", m.from, m.to, formatMsg(m.msg))
		n.delivered++
		for _, r := range rcv.script(m.from, m.msg) {
			n.queue = append(n.queue, netMsg{from: m.to, to: m.from, msg: r})
		}
	default:
		n.logf("%s -> %s %s", m.from, m.to, formatMsg(m.msg))
		n.delivered++
		if err := rcv.core.Step(m.from, m.msg); err != nil {
			n.logf("  %s: error: %v", m.to, err)
		}
		n.collect(m.to)
	}
}

// advance moves time forward by d, waking each live node at its own deadlines (in creation
// order when several are due at once) and delivering the messages in between.
func (n *network) advance(d time.Duration, limit int) bool {
	target := n.now + d
	for {
		if !n.deliverAll(limit) {
			return false
		}
		if len(n.timers) == 0 || n.timers[0].at > target {
			break
		}
		e := heap.Pop(&n.timers).(timerEntry)
		nd := n.nodes[e.name]
		if dl, ok := nd.core.NextDeadline(); !nd.alive || !ok || dl != e.at || nd.index != e.index {
			continue // stale entry
		}
		if e.at > n.now {
			n.now = e.at
			n.logf("-- %v", n.now)
		}
		nd.core.Tick(n.now)
		n.collect(e.name)
	}
	n.now = target
	for _, name := range n.names {
		if nd := n.nodes[name]; nd.alive {
			nd.core.Tick(n.now)
			n.collect(name)
		}
	}
	return n.deliverAll(limit)
}

// kill stops a node. Unless silent, the link layer of each live neighbour notices (a
// heartbeat timeout) and reports PeerDown; messages still on the way to it fail later.
func (n *network) kill(name string, silent bool) error {
	nd, err := n.live(name)
	if err != nil {
		return err
	}
	nd.alive = false
	if silent {
		return nil
	}
	for _, other := range n.names {
		o := n.nodes[other]
		if o.alive && slices.Contains(o.core.active, name) {
			n.logf("%s: PeerDown %s", other, name)
			o.core.PeerDown(name)
			n.collect(other)
		}
	}
	return nil
}

func (n *network) liveNames() []string {
	var out []string
	for _, name := range n.names {
		// A node that left is gone for the overlay even though its core still runs.
		if nd := n.nodes[name]; nd.alive && !nd.core.left {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (n *network) views(names []string) string {
	if len(names) == 0 {
		names = n.liveNames()
	}
	var b strings.Builder
	for _, name := range names {
		nd := n.nodes[name]
		if nd == nil {
			fmt.Fprintf(&b, "%s: unknown\n", name)
			continue
		}
		if !nd.alive {
			fmt.Fprintf(&b, "%s: dead\n", name)
			continue
		}
		a, p := nd.core.ActiveView(), nd.core.PassiveView()
		sort.Strings(a)
		sort.Strings(p)
		fmt.Fprintf(&b, "%s: active=[%s] passive=[%s]\n", name, strings.Join(a, " "), strings.Join(p, " "))
	}
	return b.String()
}

// check verifies the overlay invariants over the live nodes and returns the violations
// (nil when healthy) and a summary.
func (n *network) check() (problems []string, summary string) {
	live := n.liveNames()
	links := 0
	for _, name := range live {
		c := n.nodes[name].core
		a, p := c.active, c.passive
		if len(a) < 1 || len(a) > c.cfg.ActiveSize {
			problems = append(problems, fmt.Sprintf("%s: active view size %d not in [1,%d]", name, len(a), c.cfg.ActiveSize))
		}
		if len(p) > c.cfg.PassiveSize {
			problems = append(problems, fmt.Sprintf("%s: passive view size %d > %d", name, len(p), c.cfg.PassiveSize))
		}
		problems = append(problems, defenceProblems(name, c)...)
		for i, x := range a {
			if x == name {
				problems = append(problems, fmt.Sprintf("%s: itself in active view", name))
			}
			if slices.Contains(a[i+1:], x) {
				problems = append(problems, fmt.Sprintf("%s: %s twice in active view", name, x))
			}
			if slices.Contains(p, x) {
				problems = append(problems, fmt.Sprintf("%s: %s in both views", name, x))
			}
			peer := n.nodes[x]
			switch {
			case peer == nil || !peer.alive:
				problems = append(problems, fmt.Sprintf("%s: dead node %s in active view", name, x))
			case !slices.Contains(peer.core.active, name):
				problems = append(problems, fmt.Sprintf("%s: link to %s not symmetric", name, x))
			default:
				links++
			}
		}
		for i, x := range p {
			if x == name {
				problems = append(problems, fmt.Sprintf("%s: itself in passive view", name))
			}
			if slices.Contains(p[i+1:], x) {
				problems = append(problems, fmt.Sprintf("%s: %s twice in passive view", name, x))
			}
		}
	}
	// Connectivity: a breadth-first walk over active links from the first live node.
	reached := 0
	if len(live) > 0 {
		seen := map[string]bool{live[0]: true}
		frontier := []string{live[0]}
		for len(frontier) > 0 {
			x := frontier[0]
			frontier = frontier[1:]
			reached++
			for _, y := range n.nodes[x].core.active {
				if nd := n.nodes[y]; nd != nil && nd.alive && !seen[y] {
					seen[y] = true
					frontier = append(frontier, y)
				}
			}
		}
		if reached != len(live) {
			problems = append(problems, fmt.Sprintf("overlay not connected: %d of %d live nodes reachable from %s", reached, len(live), live[0]))
		}
	}
	summary = fmt.Sprintf("%d live nodes, %d links, connected=%t, symmetric=%t", len(live), links/2,
		len(live) > 0 && reached == len(live), !slices.ContainsFunc(problems, func(s string) bool { return strings.Contains(s, "symmetric") }))
	return problems, summary
}

func formatMsg(m Message) string {
	switch m.Type {
	case ForwardJoin:
		return fmt.Sprintf("%v node=%s ttl=%d", m.Type, m.Node, m.TTL)
	case Neighbor:
		if m.HighPriority {
			return "NEIGHBOR high"
		}
		return "NEIGHBOR low"
	case NeighborReply:
		if m.Accepted {
			return "NEIGHBOR_REPLY accepted"
		}
		return "NEIGHBOR_REPLY refused"
	case Disconnect:
		if m.Leaving {
			return "DISCONNECT leaving"
		}
		return "DISCONNECT"
	case Shuffle:
		return fmt.Sprintf("%v node=%s ttl=%d nodes=[%s]", m.Type, m.Node, m.TTL, strings.Join(m.Nodes, " "))
	case ShuffleReply:
		return fmt.Sprintf("%v nodes=[%s]", m.Type, strings.Join(m.Nodes, " "))
	}
	return m.Type.String()
}

// parseMsg reads a message written as formatMsg prints it: TYPE followed by flags
// (high, accepted, leaving) and key=value fields (node=, ttl=, nodes=a,b).
func parseMsg(words []string) (Message, error) {
	if len(words) == 0 {
		return Message{}, fmt.Errorf("missing message type")
	}
	var m Message
	found := false
	for t := Join; t <= ShuffleReply; t++ {
		if t.String() == words[0] {
			m.Type, found = t, true
		}
	}
	if !found {
		var raw uint8
		if _, err := fmt.Sscanf(words[0], "type%d", &raw); err != nil {
			return m, fmt.Errorf("unknown message type %q", words[0])
		}
		m.Type = MessageType(raw)
	}
	for _, w := range words[1:] {
		k, v, _ := strings.Cut(w, "=")
		switch k {
		case "high":
			m.HighPriority = true
		case "low", "refused":
		case "accepted":
			m.Accepted = true
		case "leaving":
			m.Leaving = true
		case "node":
			m.Node = v
		case "ttl":
			var ttl int
			if _, err := fmt.Sscan(v, &ttl); err != nil || ttl < 0 || ttl > 255 {
				return m, fmt.Errorf("bad ttl %q", v)
			}
			m.TTL = uint8(ttl)
		case "nodes":
			if v != "" {
				m.Nodes = strings.Split(v, ",")
			}
		default:
			return m, fmt.Errorf("unknown message field %q", w)
		}
	}
	return m, nil
}

// defenceProblems checks the bookkeeping of the defences: the per-entry records run parallel
// to their views, no teacher holds more than MaxPassiveFromPeer passive entries, and the
// bounded tables stay within their bounds.
func defenceProblems(name string, c *Core) []string {
	var out []string
	if len(c.activeSince) != len(c.active) {
		out = append(out, fmt.Sprintf("%s: %d active times for %d neighbours", name, len(c.activeSince), len(c.active)))
	}
	if len(c.activeChosen) != len(c.active) {
		out = append(out, fmt.Sprintf("%s: %d chosen flags for %d neighbours", name, len(c.activeChosen), len(c.active)))
	} else if q := c.cfg.OutboundQuota; q > 0 && c.cfg.OutboundQuotaFor == 0 {
		// (A quota that comes into force after an offence finds the askers that were there.)
		asked := 0
		for _, chosen := range c.activeChosen {
			if !chosen {
				asked++
			}
		}
		if asked > c.cfg.ActiveSize-q {
			out = append(out, fmt.Sprintf("%s: %d neighbours that asked, more than ActiveSize-OutboundQuota (%d)", name, asked, c.cfg.ActiveSize-q))
		}
	}
	if len(c.passiveFrom) != len(c.passive) {
		out = append(out, fmt.Sprintf("%s: %d passive teachers for %d entries", name, len(c.passiveFrom), len(c.passive)))
	}
	if limit := c.cfg.MaxPassiveFromPeer; limit > 0 {
		count := map[string]int{}
		for _, t := range c.passiveFrom {
			if t != "" {
				count[t]++
			}
		}
		for t, k := range count {
			if k > limit {
				out = append(out, fmt.Sprintf("%s: %s taught %d passive entries, more than MaxPassiveFromPeer (%d)", name, t, k, limit))
			}
		}
	}
	if c.cfg.PeerMessageRate > 0 && len(c.rates) > c.cfg.MaxRateEntries {
		out = append(out, fmt.Sprintf("%s: %d rate buckets, more than MaxRateEntries (%d)", name, len(c.rates), c.cfg.MaxRateEntries))
	}
	if len(c.shuffles) > max(c.cfg.MaxPendingShuffles, 1) {
		out = append(out, fmt.Sprintf("%s: %d shuffles pending, more than MaxPendingShuffles (%d)", name, len(c.shuffles), c.cfg.MaxPendingShuffles))
	}
	return out
}
