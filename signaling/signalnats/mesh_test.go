//go:build !js

package signalnats_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/link/rtclink"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
	"github.com/rtcmesh/rtcmesh/rtcnode"
)

// startNode starts a WebRTC node on loopback that knows the signaling instances at urls, in
// that order.
func startNode(t testing.TB, seed uint64, urls ...string) *rtcnode.Node {
	t.Helper()
	cfg := rtcnode.DefaultConfig(newKey(t), urls[0], "mesh")
	cfg.Signal.FallbackURLs = urls[1:]
	cfg.Node = nodetest.Config()
	cfg.Node.Seed = seed
	cfg.Link.SettingEngine = rtclink.NetworkSettings([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	cfg.Link.MDNS = rtclink.MDNSDisabled
	cfg.Signal.MinBackoff = 50 * time.Millisecond
	cfg.Signal.MaxBackoff = 500 * time.Millisecond
	w, err := rtcnode.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// Two signaling instances share one nats-server, with four WebRTC nodes on each: the eight
// form one mesh, so a broadcast from a node on A reaches every node on B. Then A is killed:
// its nodes move to B, and the mesh goes on (broadcasts, and new nodes joining through B).
func TestMeshAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("eight WebRTC nodes skipped in -short mode")
	}
	runMeshAcrossInstances(t, startNATS(t))
}

func runMeshAcrossInstances(t *testing.T, natsURL string) {
	a, b := startInstance(t, testClusterConfig(natsURL)), startInstance(t, testClusterConfig(natsURL))
	m := nodetest.NewMesh(t, nodetest.Config().Membership.ActiveSize)
	var all []*rtcnode.Node
	t.Cleanup(func() {
		for _, w := range all {
			w.Close()
		}
		m.Wait()
	})
	var onA, onB []*node.Node
	var rtcA []*rtcnode.Node
	for i := range 8 {
		var w *rtcnode.Node
		if i%2 == 0 {
			w = startNode(t, uint64(i+1), a.url(), b.url())
			onA, rtcA = append(onA, w.Node), append(rtcA, w)
		} else {
			w = startNode(t, uint64(i+1), b.url(), a.url())
			onB = append(onB, w.Node)
		}
		all = append(all, w)
		m.Track(w.Node)
	}
	nodetest.WaitFor(t, 60*time.Second, "eight nodes on two instances form one mesh", func() error {
		if pa, pb := a.srv.Stats().Peers, b.srv.Stats().Peers; pa != 4 || pb != 4 {
			return fmt.Errorf("instances hold %d and %d nodes, want 4 and 4", pa, pb)
		}
		return m.OverlayOK(m.Nodes())
	})
	crossed := a.srv.Stats().ClusterRelayed + b.srv.Stats().ClusterRelayed
	if crossed == 0 {
		t.Fatal("no signal crossed instances: the mesh did not need NATS")
	}
	t.Logf("mesh formed; %d signals crossed instances through NATS", crossed)
	m.BroadcastAll(onA[:1], onB)
	m.BroadcastAll(onB[:1], onA)

	// Instance A is killed: cut off NATS without a word, then its sockets drop. Its nodes move
	// to B, which forgets A's members within PresenceTTL.
	a.crash()
	nodetest.WaitFor(t, 30*time.Second, "A's nodes move to B", func() error {
		for _, w := range rtcA {
			if !w.SignalingConnected() {
				return fmt.Errorf("%s not reconnected", w.ID())
			}
		}
		if n := b.srv.Stats().Peers; n != 8 {
			return fmt.Errorf("B holds %d nodes, want 8", n)
		}
		if st := b.cluster.Stats(); st.RemotePeers != 0 {
			return fmt.Errorf("B still knows %d members elsewhere", st.RemotePeers)
		}
		return nil
	})
	m.BroadcastAll(onA[:1], m.Nodes())
	for i := range 2 {
		w := startNode(t, uint64(100+i), b.url(), a.url())
		all = append(all, w)
		m.Track(w.Node)
	}
	nodetest.WaitFor(t, 60*time.Second, "two new nodes join through B", func() error { return m.OverlayOK(m.Nodes()) })
	m.BroadcastAll(m.Nodes()[8:9], m.Nodes())
	m.NoDuplicates()
}
