package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"
)

const topicName = "bench"

// gsTracer is one node's raw tracer: it counts what the node sends and receives and records,
// for each broadcast, the peer that delivered it first, from which the run rebuilds the
// delivery tree and so the hops. Its methods are called from several goroutines.
type gsTracer struct {
	sys        *gsSystem
	self       int
	broadcasts int

	mu     sync.Mutex
	parent map[int]peer.ID // broadcast → the peer its first copy came from
	mesh   map[peer.ID]bool
}

func (g *gsTracer) DeliverMessage(msg *pubsub.Message) {
	k, ok := index(msg.Data, g.broadcasts)
	if !ok {
		return
	}
	g.mu.Lock()
	if _, dup := g.parent[k]; !dup {
		g.parent[k] = msg.ReceivedFrom
	}
	g.mu.Unlock()
}

func (g *gsTracer) RecvRPC(rpc *pubsub.RPC) {
	if n := len(rpc.GetPublish()); n > 0 {
		g.sys.copies.Add(uint64(n))
	}
}

func (g *gsTracer) SendRPCCompleted(rpc *pubsub.RPC, _ peer.ID, _ time.Duration) {
	// What comm.go writes: a uvarint length, then the protobuf.
	size := proto.Size(&rpc.RPC)
	g.sys.bytes.Add(uint64(size + uvarintLen(uint64(size))))
}

func (g *gsTracer) Graft(p peer.ID, _ string) {
	g.sys.grafts.Add(1)
	g.mu.Lock()
	g.mesh[p] = true
	g.mu.Unlock()
}

func (g *gsTracer) Prune(p peer.ID, _ string) {
	g.sys.prunes.Add(1)
	g.mu.Lock()
	delete(g.mesh, p)
	g.mu.Unlock()
}

// DropRPC: an RPC dropped because the peer's outbound queue was full.
func (g *gsTracer) DropRPC(*pubsub.RPC, peer.ID) { g.sys.dropped.Add(1) }

// UndeliverableMessage: a message dropped because the subscriber read too slowly.
func (g *gsTracer) UndeliverableMessage(*pubsub.Message) { g.sys.undeliverable.Add(1) }

func (g *gsTracer) meshSize() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.mesh)
}

func (*gsTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (*gsTracer) OnClosedOutboundStream(peer.ID)           {}
func (*gsTracer) Join(string)                              {}
func (*gsTracer) Leave(string)                             {}
func (*gsTracer) ValidateMessage(*pubsub.Message)          {}
func (*gsTracer) RejectMessage(*pubsub.Message, string)    {}
func (*gsTracer) DuplicateMessage(*pubsub.Message)         {}
func (*gsTracer) ThrottlePeer(peer.ID)                     {}
func (*gsTracer) SendRPC(*pubsub.RPC, peer.ID)             {}

func uvarintLen(x uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], x)
}

// gsSystem is N go-libp2p-pubsub gossipsub routers (v0.19 defaults: signed messages, flood
// publishing, D = 6) on mocknet hosts.
type gsSystem struct {
	hosts   []host.Host
	topics  []*pubsub.Topic
	tracers []*gsTracer
	ctx     context.Context

	bytes, copies, grafts, prunes atomic.Uint64
	dropped, undeliverable        atomic.Uint64
}

func (s *gsSystem) counters() counters {
	return counters{Bytes: s.bytes.Load(), Copies: s.copies.Load(), Grafts: s.grafts.Load(), Prunes: s.prunes.Load()}
}

func (s *gsSystem) broadcast(origin int, data []byte) error {
	return s.topics[origin].Publish(s.ctx, data)
}

// runGossipsub runs the work on gossipsub. Every node joins the topic first, then each dials
// p.Degree distinct random others (a random graph of mean degree about 2·Degree, at least
// Degree), as a node that found that many peers through a DHT or a bootstrap list would; the
// routers then build their meshes from the connected peers.
func runGossipsub(p params) (result, error) {
	r := result{System: "gossipsub", N: p.N, Seed: p.Seed, Knobs: fmt.Sprintf("v0.19 defaults, dial %d", p.Degree)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	// The latency: mocknet's own (-mocknet-latency) or the FIFO delay of latency.go.
	if p.MocknetLatency {
		mn.SetLinkDefaults(mocknet.LinkOptions{Latency: p.Latency})
		r.Knobs += ", mocknet latency"
	}

	s := &gsSystem{ctx: ctx}
	t := newTracker(p.N, p.Broadcasts, p.Warmup)
	keyRand := rand.NewChaCha8(seed32(p.Seed))
	byID := map[peer.ID]int{}
	start := time.Now()
	for i := range p.N {
		sk, _, err := crypto.GenerateEd25519Key(keyRand)
		if err != nil {
			return r, err
		}
		a, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", i>>16&255, i>>8&255, i&255))
		if err != nil {
			return r, err
		}
		h, err := mn.AddPeer(sk, a)
		if err != nil {
			return r, fmt.Errorf("host %d: %w", i, err)
		}
		tr := &gsTracer{sys: s, self: i, broadcasts: p.Broadcasts, parent: map[int]peer.ID{}, mesh: map[peer.ID]bool{}}
		var ph host.Host = delayHost{Host: h, latency: p.Latency}
		if p.MocknetLatency {
			ph = h
		}
		ps, err := pubsub.NewGossipSub(ctx, ph, pubsub.WithRawTracer(tr))
		if err != nil {
			return r, fmt.Errorf("gossipsub %d: %w", i, err)
		}
		topic, err := ps.Join(topicName)
		if err != nil {
			return r, err
		}
		sub, err := topic.Subscribe()
		if err != nil {
			return r, err
		}
		byID[h.ID()] = i
		s.hosts, s.topics, s.tracers = append(s.hosts, h), append(s.topics, topic), append(s.tracers, tr)
		self := h.ID()
		go func() {
			for {
				msg, err := sub.Next(ctx)
				if err != nil {
					return
				}
				if msg.GetFrom() == self {
					continue
				}
				if k, ok := index(msg.Data, p.Broadcasts); ok {
					t.delivered(k, i, -1, time.Now())
				}
			}
		}()
	}

	// The random graph, each edge once.
	rng := rand.New(rand.NewPCG(p.Seed, 0x9a9b))
	seen := map[edge]bool{}
	var edges []edge
	for i := range p.N {
		// Degree distinct others; one that already dialed i makes no second link.
		picked := map[int]bool{i: true}
		for len(picked) < min(p.Degree, p.N-1)+1 {
			j := rng.IntN(p.N)
			if picked[j] {
				continue
			}
			picked[j] = true
			if e := (edge{min(i, j), max(i, j)}); !seen[e] {
				seen[e] = true
				edges = append(edges, e)
			}
		}
	}
	degree := make([]int, p.N)
	for _, e := range edges {
		degree[e.a]++
		degree[e.b]++
	}
	if err := connect(mn, s.hosts, edges); err != nil {
		return r, err
	}
	// Formed: every router sees all its connected peers in the topic and has a mesh of at
	// least Dlo (or all its peers, if fewer).
	dlo := pubsub.DefaultGossipSubParams().Dlo
	err := waitFor(p.Form, func() error {
		for i, tp := range s.topics {
			if got := len(tp.ListPeers()); got < degree[i] {
				return fmt.Errorf("node %d sees %d of its %d peers in the topic", i, got, degree[i])
			}
			if m := s.tracers[i].meshSize(); m < min(dlo, degree[i]) {
				return fmt.Errorf("node %d has a mesh of %d", i, m)
			}
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("gossipsub mesh of %d not formed within %v: %w", p.N, p.Form, err)
	}
	r.FormedS = time.Since(start).Seconds()
	if err := measure(p, s, t, &r); err != nil {
		return r, err
	}
	gsHops(s, t, byID, p)
	t.fill(&r)
	meshSum := 0
	for _, tr := range s.tracers {
		meshSum += tr.meshSize()
	}
	r.Notes += fmt.Sprintf("%d links, mean degree %.1f, mean mesh %.1f; RPCs dropped on full queues %d, messages undeliverable to slow subscribers %d; ",
		len(edges), 2*float64(len(edges))/float64(p.N), float64(meshSum)/float64(p.N), s.dropped.Load(), s.undeliverable.Load())
	return r, nil
}

// edge is a link of the random graph, a < b.
type edge struct{ a, b int }

// gsHops rebuilds each broadcast's delivery tree from the peer each node first got it from,
// and sets every node's depth in it as its hops.
func gsHops(s *gsSystem, t *tracker, idx map[peer.ID]int, p params) {
	for k := range p.Broadcasts {
		parent := make([]int, p.N)
		for i, tr := range s.tracers {
			tr.mu.Lock()
			from, ok := tr.parent[k]
			tr.mu.Unlock()
			parent[i] = -1
			if j, known := idx[from]; ok && known && j != i {
				parent[i] = j
			}
		}
		t.mu.Lock()
		origin := t.origin[k]
		t.mu.Unlock()
		depth := make([]int, p.N)
		for i := range depth {
			depth[i] = -2 // not computed
		}
		depth[origin] = 0
		var walk func(i, guard int) int
		walk = func(i, guard int) int {
			if depth[i] != -2 {
				return depth[i]
			}
			if parent[i] < 0 || guard > p.N {
				depth[i] = -1
				return -1
			}
			d := walk(parent[i], guard+1)
			if d >= 0 {
				d++
			}
			depth[i] = d
			return d
		}
		for i := range p.N {
			if i != origin {
				t.setHops(k, i, walk(i, 0))
			}
		}
	}
}

// connect links and connects the hosts of every edge, a few at a time.
func connect(mn mocknet.Mocknet, hosts []host.Host, edges []edge) error {
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan edge)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range work {
				a, b := hosts[e.a].ID(), hosts[e.b].ID()
				_, err := mn.LinkPeers(a, b)
				if err == nil {
					_, err = mn.ConnectPeers(a, b)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connecting %d and %d: %w", e.a, e.b, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, e := range edges {
		work <- e
	}
	close(work)
	wg.Wait()
	return firstErr
}

func seed32(seed uint64) [32]byte {
	var b [32]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	copy(b[8:], "rtcmesh gossipsub bench")
	return b
}
