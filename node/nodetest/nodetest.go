// Package nodetest holds test helpers for complete nodes, whatever their links: a Mesh that
// follows each node's deliveries, checks the overlay (bounded, symmetric, connected views) and
// measures broadcasts, and deterministic identity keys. The node and rtcnode tests share it.
package nodetest

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/node"
)

// Key is the identity key of the test node called name: the same name, the same key and ID.
func Key(t testing.TB, name string) *identity.Key {
	t.Helper()
	seed := sha256.Sum256([]byte("rtcmesh test key " + name))
	k, err := identity.KeyFromSeed(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Config is node.DefaultLANConfig with the timers of a test: shuffles every 500 ms, neighbour
// requests that time out after 1 s, ticks every 20 ms, catch-up digests every 500 ms (leaving
// out, as the LAN profile does, the last 1.5 s, which the tree may still be delivering), so
// overlays form and repair, and missed messages arrive, in seconds.
func Config() node.Config {
	c := node.DefaultLANConfig()
	c.Membership.ShuffleInterval = 500 * time.Millisecond
	c.Membership.NeighborTimeout = time.Second
	c.Membership.RejoinBackoff = 500 * time.Millisecond
	c.TickInterval = 20 * time.Millisecond
	c.IdleLinkTimeout = 2 * time.Second
	c.Gossip.CatchUpInterval = 500 * time.Millisecond
	c.Gossip.CatchUpPullTimeout = time.Second
	return c
}

// Mesh follows a set of complete nodes: their deliveries, counted per message, and their
// events, drained.
type Mesh struct {
	t testing.TB
	// MaxActive is the largest active view OverlayOK accepts.
	MaxActive int

	mu    sync.Mutex
	nodes []*node.Node
	got   []map[gossip.MessageID]int       // got[i][id] counts deliveries of id at node i
	at    []map[gossip.MessageID]time.Time // at[i][id] is when node i first delivered id
	wg    sync.WaitGroup
}

// NewMesh returns an empty Mesh whose views may hold up to maxActive neighbours.
func NewMesh(t testing.TB, maxActive int) *Mesh { return &Mesh{t: t, MaxActive: maxActive} }

// Nodes returns the tracked nodes, in the order they were tracked.
func (m *Mesh) Nodes() []*node.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.nodes)
}

// Track follows nd's deliveries and drains its events until nd is closed.
func (m *Mesh) Track(nd *node.Node) {
	m.mu.Lock()
	k := len(m.nodes)
	m.nodes = append(m.nodes, nd)
	m.got = append(m.got, map[gossip.MessageID]int{})
	m.at = append(m.at, map[gossip.MessageID]time.Time{})
	m.mu.Unlock()
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		for d := range nd.Deliveries() {
			m.mu.Lock()
			if m.got[k][d.ID]++; m.got[k][d.ID] == 1 {
				m.at[k][d.ID] = time.Now()
			}
			m.mu.Unlock()
		}
	}()
	go func() {
		defer m.wg.Done()
		for range nd.Events() {
		}
	}()
}

// Wait waits until every tracked node was closed and its channels drained.
func (m *Mesh) Wait() { m.wg.Wait() }

// WaitFor polls cond until it holds, failing the test after within.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PickNodes returns k nodes of from chosen at random, with repetition: broadcast origins.
func PickNodes(rng *rand.Rand, from []*node.Node, k int) []*node.Node {
	out := make([]*node.Node, 0, k)
	for range k {
		out = append(out, from[rng.IntN(len(from))])
	}
	return out
}

// OverlayOK checks the live nodes' active views: within bounds, symmetric, connected.
func (m *Mesh) OverlayOK(live []*node.Node) error {
	views := map[string][]string{}
	for _, nd := range live {
		for _, nb := range nd.Neighbors() {
			views[nd.ID()] = append(views[nd.ID()], nb.ID)
		}
	}
	for _, nd := range live {
		v := views[nd.ID()]
		if len(v) < 1 || len(v) > m.MaxActive {
			return fmt.Errorf("%s has %d neighbours", nd.ID(), len(v))
		}
		for _, p := range v {
			if !slices.Contains(views[p], nd.ID()) {
				return fmt.Errorf("link %s -> %s is not symmetric", nd.ID(), p)
			}
		}
	}
	seen := map[string]bool{live[0].ID(): true}
	queue := []string{live[0].ID()}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, q := range views[p] {
			if !seen[q] {
				seen[q] = true
				queue = append(queue, q)
			}
		}
	}
	if len(seen) != len(live) {
		return fmt.Errorf("overlay not connected: %d of %d reachable", len(seen), len(live))
	}
	return nil
}

// BroadcastAllWithin bounds how long BroadcastAll waits for each message to reach every node.
// It asserts delivery, not speed (speed is measured in benchmarks): on a machine saturated by
// other tests, loopback WebRTC links were seen with round trips of 2–4 s, and a node whose
// eager frame was lost then needs several round trips (IHAVE, GRAFT, or catch-up's DIGEST,
// HAVE and PULL) for a message that normally takes milliseconds.
const BroadcastAllWithin = 30 * time.Second

// BroadcastAll sends one message from each of origins in turn, waiting until every node of
// live delivered it, and returns the payload frames the broadcasts cost.
func (m *Mesh) BroadcastAll(origins, live []*node.Node) (payloads uint64) {
	m.t.Helper()
	before := PayloadsReceived(live)
	for _, o := range origins {
		id, err := o.Broadcast([]byte("hello from " + o.ID()))
		if err != nil {
			m.t.Fatal(err)
		}
		m.WaitDelivered(id, live, BroadcastAllWithin)
	}
	return PayloadsReceived(live) - before
}

// WaitDelivered waits until every node of live delivered message id, failing the test after
// within.
func (m *Mesh) WaitDelivered(id gossip.MessageID, live []*node.Node, within time.Duration) {
	m.t.Helper()
	index := map[*node.Node]int{}
	for k, nd := range m.Nodes() {
		index[nd] = k
	}
	WaitFor(m.t, within, "delivery of "+id.String(), func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, nd := range live {
			if m.got[index[nd]][id] == 0 {
				// Enough state to tell a lost frame from a refusal or a cut node.
				s := nd.Stats()
				g := s.Gossip
				return fmt.Errorf("%s has not delivered %s (neighbours %d, eager %d, lazy %d, missing %d, pulls %d, refused: signature %d, replay %d, clock %d, self-origin %d; frames dropped %d, catch-up frames dropped %d, slow peers %d)",
					nd.ID(), id, len(nd.Neighbors()), g.EagerPeers, g.LazyPeers, g.PendingMissing, g.PendingPulls,
					g.RefusedSignature, g.RefusedReplay, g.RefusedClock, g.RefusedSelfOrigin, s.FramesDropped, s.CatchUpFramesDropped, s.SlowPeers)
			}
		}
		return nil
	})
}

// DeliveredBy counts the nodes of live that delivered message id by deadline.
func (m *Mesh) DeliveredBy(id gossip.MessageID, live []*node.Node, deadline time.Time) int {
	index := map[*node.Node]int{}
	for k, nd := range m.Nodes() {
		index[nd] = k
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, nd := range live {
		k, ok := index[nd]
		if !ok {
			continue
		}
		if at, ok := m.at[k][id]; ok && !at.After(deadline) {
			n++
		}
	}
	return n
}

// PayloadsReceived sums the GOSSIP messages (payload frames) the nodes received.
func PayloadsReceived(live []*node.Node) uint64 {
	var total uint64
	for _, nd := range live {
		total += nd.Stats().Gossip.Received[gossip.Gossip]
	}
	return total
}

// NoDuplicates fails the test if any node delivered a message other than exactly once.
func (m *Mesh) NoDuplicates() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, got := range m.got {
		for id, c := range got {
			if c != 1 {
				m.t.Errorf("%s delivered %s %d times", m.nodes[k].ID(), id, c)
			}
		}
	}
}
