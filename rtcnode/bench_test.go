//go:build !js

package rtcnode

import (
	"fmt"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
)

// percentile returns the p-th percentile (0..1) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// BenchmarkWebRTCLinkSetup measures a link through the signaling server, from the first
// node's NEIGHBOR request (a dial) to the NeighborUp event on both sides: signaling round
// trips, ICE on loopback, DTLS, SCTP and the data channel. Each iteration starts a fresh
// pair of nodes.
func BenchmarkWebRTCLinkSetup(b *testing.B) {
	sig := startSignaling(b, "")
	defer sig.stop()
	var setups []time.Duration
	for i := range b.N {
		first := startWebRTCNode(b, sig.url(), uint64(2*i+1), 0)
		waitNeighbors(b, first, 0) // welcomed, alone
		start := time.Now()
		second := startWebRTCNode(b, sig.url(), uint64(2*i+2), 0)
		for ev := range second.Events() {
			if ev.Type == node.NeighborUp {
				break
			}
		}
		setups = append(setups, time.Since(start))
		second.Close()
		first.Close()
	}
	slices.Sort(setups)
	b.ReportMetric(float64(percentile(setups, 0.5).Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(percentile(setups, 0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkWebRTCBroadcast50 measures broadcast latency over 50 WebRTC nodes on loopback: the
// time from Broadcast to each other node's delivery, over b.N broadcasts from random nodes
// (sent one after the other once the tree has formed).
func BenchmarkWebRTCBroadcast50(b *testing.B) {
	sig := startSignaling(b, "")
	defer sig.stop()
	const n = 50
	var nodes []*Node
	var mu sync.Mutex
	sent := map[gossip.MessageID]time.Time{}
	var lat []time.Duration
	got := map[gossip.MessageID]map[string]bool{} // message → nodes that delivered it
	var wg sync.WaitGroup
	for i := range n {
		w := startWebRTCNode(b, sig.url(), uint64(i+1), 0)
		nodes = append(nodes, w)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for d := range w.Deliveries() {
				mu.Lock()
				if d.Hops > 0 {
					if at, ok := sent[d.ID]; ok {
						lat = append(lat, d.ReceivedAt.Sub(at))
					}
				}
				if got[d.ID] == nil {
					got[d.ID] = map[string]bool{}
				}
				got[d.ID][w.ID()] = true
				mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			for range w.Events() {
			}
		}()
	}
	defer func() {
		for _, w := range nodes {
			w.Close()
		}
		wg.Wait()
	}()
	m := nodetest.NewMesh(b, nodetest.Config().Membership.ActiveSize)
	var inner []*node.Node
	for _, w := range nodes {
		inner = append(inner, w.Node)
	}
	deadline := time.Now().Add(60 * time.Second)
	for m.OverlayOK(inner) != nil {
		if time.Now().After(deadline) {
			b.Fatal("overlay of 50 not connected within 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	broadcast := func(k int, measure bool) {
		o := nodes[k%n]
		mu.Lock() // hold so the deliveries of this message find its send time
		id, err := o.Broadcast([]byte("latency probe"))
		if err != nil {
			mu.Unlock()
			b.Fatal(err)
		}
		if measure {
			sent[id] = time.Now()
		}
		mu.Unlock()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			c := len(got[id])
			if c == n {
				mu.Unlock()
				return
			}
			mu.Unlock()
			if time.Now().After(deadline) {
				mu.Lock()
				delivered := maps.Clone(got[id])
				mu.Unlock()
				b.Fatalf("broadcast %s from %s reached %d of %d nodes; missing:\n%s", id, o.ID(), c, n, missing(nodes, delivered))
			}
			time.Sleep(time.Millisecond)
		}
	}
	for k := range 10 { // let the tree form
		broadcast(7*k, false)
	}
	b.ResetTimer()
	for i := range b.N {
		broadcast(13*i+1, true)
	}
	b.StopTimer()
	mu.Lock()
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	mu.Unlock()
}

// missing describes the nodes that have not delivered a message: their neighbours and counters.
func missing(nodes []*Node, delivered map[string]bool) string {
	var out []string
	for _, w := range nodes {
		if delivered[w.ID()] {
			continue
		}
		s := w.Stats()
		var ids []string
		for _, nb := range w.Neighbors() {
			ids = append(ids, fmt.Sprintf("%s(eager=%v)", nb.ID[:6], nb.Eager))
		}
		out = append(out, fmt.Sprintf("%s: neighbours %v, links %d, gossip %+v, bad %d dropped %d slow %d peerdowns %d",
			w.ID()[:6], ids, s.Links, s.Gossip, s.BadFrames, s.FramesDropped, s.SlowPeers, s.Membership.PeerDowns))
		// How each of its neighbours sees it: symmetric, and eager or lazy?
		for _, nb := range w.Neighbors() {
			for _, other := range nodes {
				if other.ID() != nb.ID {
					continue
				}
				seen := "does not list it"
				for _, back := range other.Neighbors() {
					if back.ID == w.ID() {
						seen = fmt.Sprintf("lists it (eager=%v)", back.Eager)
					}
				}
				os := other.Stats()
				out = append(out, fmt.Sprintf("  neighbour %s %s; delivered=%v dropped %d slow %d peerdowns %d gossip sent %v",
					nb.ID[:6], seen, delivered[nb.ID], os.FramesDropped, os.SlowPeers, os.Membership.PeerDowns, os.Gossip.Sent))
			}
		}
	}
	return strings.Join(out, "\n")
}

func waitNeighbors(b *testing.B, w *Node, want int) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !w.SignalingConnected() || len(w.Neighbors()) != want {
		if time.Now().After(deadline) {
			b.Fatalf("%s: not connected with %d neighbours in time", w.ID(), want)
		}
		time.Sleep(time.Millisecond)
	}
}
