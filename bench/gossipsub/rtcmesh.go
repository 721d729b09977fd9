package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
	"github.com/rtcmesh/rtcmesh/link/memlink"
	"github.com/rtcmesh/rtcmesh/node"
)

// countingTransport counts the bytes a node sends: the wire frames, as rtclink would carry
// them inside its data channel.
type countingTransport struct {
	link.Transport
	bytes *atomic.Uint64
}

func (c countingTransport) Send(peer string, frame []byte) error {
	err := c.Transport.Send(peer, frame)
	if err == nil {
		c.bytes.Add(uint64(len(frame)))
	}
	return err
}

// rtcConfig is the node configuration of a run: node.DefaultLANConfig (the profile for links
// that open in milliseconds) with the knobs p sets, and a knob summary for the report.
func rtcConfig(p params) (node.Config, string) {
	cfg := node.DefaultLANConfig()
	var knobs []string
	if p.Tick > 0 {
		cfg.TickInterval = p.Tick
		knobs = append(knobs, "tick="+p.Tick.String())
	}
	if p.OptThreshold >= 0 {
		cfg.Gossip.OptimizationThreshold = p.OptThreshold
		knobs = append(knobs, fmt.Sprintf("opt=%d", p.OptThreshold))
	}
	if p.Missing > 0 {
		cfg.Gossip.MissingTimeout = p.Missing
		knobs = append(knobs, "missing="+p.Missing.String())
	}
	if p.GraftRetry > 0 {
		cfg.Gossip.GraftRetryTimeout = p.GraftRetry
		knobs = append(knobs, "graftretry="+p.GraftRetry.String())
	}
	if p.LazyFlush >= 0 {
		cfg.Gossip.LazyFlushInterval = p.LazyFlush
		knobs = append(knobs, "lazyflush="+p.LazyFlush.String())
	}
	if p.Shuffle > 0 {
		cfg.Membership.ShuffleInterval = p.Shuffle
		knobs = append(knobs, "shuffle="+p.Shuffle.String())
	}
	if p.LinkShuffleReplies {
		cfg.RouteShuffleReplies = false
		knobs = append(knobs, "link-shuffle-replies")
	}
	// The catch-up digests leave out what the tree may still be delivering (see
	// node.DefaultLANConfig); keep that true when the timeouts change.
	cfg.Gossip.CatchUpSettle = max(cfg.Gossip.CatchUpSettle, cfg.Gossip.MissingTimeout+cfg.Gossip.GraftRetryTimeout)
	if len(knobs) == 0 {
		return cfg, "defaults"
	}
	return cfg, strings.Join(knobs, " ")
}

// rtcSystem is N complete rtcmesh nodes (the node runtime, signed broadcasts) over memlink.
type rtcSystem struct {
	nodes []*node.Node
	bytes atomic.Uint64
	downs atomic.Uint64 // NeighborDown events of all nodes
}

func (s *rtcSystem) counters() counters {
	c := counters{Bytes: s.bytes.Load(), NeighborDowns: s.downs.Load()}
	for _, nd := range s.nodes {
		g := nd.Stats().Gossip
		c.Copies += g.Received[gossip.Gossip] + g.Received[gossip.History]
		c.Grafts += g.Sent[gossip.Graft]
		c.Prunes += g.Sent[gossip.Prune]
	}
	return c
}

func (s *rtcSystem) broadcast(origin int, data []byte) error {
	_, err := s.nodes[origin].Broadcast(data)
	return err
}

// runRTCMesh runs the work on rtcmesh: each node starts with up to three contacts among the
// nodes started before it (what the signaling server's welcome hands out), and a node that
// needs contacts is handed a random one.
func runRTCMesh(p params) (result, error) {
	cfg0, knobs := rtcConfig(p)
	r := result{System: "rtcmesh", N: p.N, Seed: p.Seed, Knobs: knobs}
	lc := memlink.DefaultConfig()
	lat := p.Latency
	lc.Latency = func(string, string) time.Duration { return lat }
	net, err := memlink.NewNetwork(lc)
	if err != nil {
		return r, err
	}
	defer net.Close()

	s := &rtcSystem{}
	t := newTracker(p.N, p.Broadcasts, p.Warmup)
	ids := make([]string, p.N)
	keys := make([]*identity.Key, p.N)
	for i := range p.N {
		seed := sha256.Sum256(fmt.Appendf(nil, "rtcmesh bench %d %d", p.Seed, i))
		if keys[i], err = identity.KeyFromSeed(seed[:]); err != nil {
			return r, err
		}
		ids[i] = keys[i].ID()
	}
	rng := rand.New(rand.NewPCG(p.Seed, 0x5eed))
	var mu sync.Mutex // guards s.nodes while nodes start
	var wg sync.WaitGroup
	start := time.Now()
	for i := range p.N {
		tr, err := net.Transport(ids[i])
		if err != nil {
			return r, err
		}
		cfg := cfg0
		cfg.Key, cfg.Transport, cfg.Seed = keys[i], countingTransport{tr, &s.bytes}, p.Seed<<20+uint64(i)+1
		for k := 0; k < 3 && i > 0; k++ {
			cfg.Contacts = append(cfg.Contacts, ids[rng.IntN(i)])
		}
		var self *node.Node
		cfg.NeedContacts = func() {
			go func() {
				mu.Lock()
				defer mu.Unlock()
				if self == nil || len(s.nodes) < 2 {
					return
				}
				if other := s.nodes[rand.IntN(len(s.nodes))]; other != self {
					go self.Join(other.ID())
				}
			}()
		}
		nd, err := node.New(cfg)
		if err != nil {
			return r, fmt.Errorf("node %d: %w", i, err)
		}
		mu.Lock()
		self = nd
		s.nodes = append(s.nodes, nd)
		mu.Unlock()
		wg.Add(2)
		go func() {
			defer wg.Done()
			for d := range nd.Deliveries() {
				if k, ok := index(d.Data, p.Broadcasts); ok {
					t.delivered(k, i, d.Hops, d.ReceivedAt)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for ev := range nd.Events() {
				if ev.Type == node.NeighborDown {
					s.downs.Add(1)
				}
			}
		}()
	}
	defer func() {
		for _, nd := range s.nodes {
			nd.Close()
		}
		wg.Wait()
	}()

	if err := waitFor(p.Form, func() error { return overlayOK(s.nodes, cfg0.Membership.ActiveSize) }); err != nil {
		return r, fmt.Errorf("overlay of %d not formed within %v: %w", p.N, p.Form, err)
	}
	r.FormedS = time.Since(start).Seconds()
	if err := measure(p, s, t, &r); err != nil {
		return r, err
	}
	t.fill(&r)
	full := 0
	for _, nd := range s.nodes {
		if len(nd.Neighbors()) == cfg0.Membership.ActiveSize {
			full++
		}
	}
	r.Notes += fmt.Sprintf("%d of %d nodes with a full active view at the end; ", full, p.N)
	return r, nil
}

// overlayOK says whether the active views are non-empty, within bounds, symmetric and connected.
func overlayOK(nodes []*node.Node, maxActive int) error {
	views := make(map[string][]string, len(nodes))
	for _, nd := range nodes {
		for _, nb := range nd.Neighbors() {
			views[nd.ID()] = append(views[nd.ID()], nb.ID)
		}
	}
	for _, nd := range nodes {
		v := views[nd.ID()]
		if len(v) < 1 || len(v) > maxActive {
			return fmt.Errorf("a node has %d neighbours", len(v))
		}
		for _, q := range v {
			if !slices.Contains(views[q], nd.ID()) {
				return errors.New("a link is not symmetric")
			}
		}
	}
	seen := map[string]bool{nodes[0].ID(): true}
	queue := []string{nodes[0].ID()}
	for len(queue) > 0 {
		q := queue[0]
		queue = queue[1:]
		for _, x := range views[q] {
			if !seen[x] {
				seen[x] = true
				queue = append(queue, x)
			}
		}
	}
	if len(seen) != len(nodes) {
		return fmt.Errorf("not connected: %d of %d reachable", len(seen), len(nodes))
	}
	return nil
}

// waitFor polls cond every 200 ms until it holds or within passed.
func waitFor(within time.Duration, cond func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
