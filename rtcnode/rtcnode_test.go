//go:build !js

package rtcnode

import (
	"fmt"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link/rtclink"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

// signalingServer runs a signaling server on a loopback port that can be stopped and started
// again on the same address.
type signalingServer struct {
	t    testing.TB
	addr string
	srv  *signalserver.Server
	http *httptest.Server
}

func startSignaling(t testing.TB, addr string, mods ...func(*signalserver.Config)) *signalingServer {
	t.Helper()
	cfg := signalserver.DefaultConfig()
	cfg.MaxPeersPerNetwork = 200
	// Every node of these tests connects from 127.0.0.1: one source address stands for 50
	// machines, which reconnect together when the server comes back.
	cfg.MaxConnectionsPerSource = 1000
	cfg.ConnectionsPerSourcePerMinute = 10000
	cfg.HellosPerSourcePerMinute = 10000
	for _, mod := range mods {
		mod(&cfg)
	}
	srv, err := signalserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	for try := 0; ; try++ { // the old listener's port may take a moment to be free again
		ln, err = net.Listen("tcp", addr)
		if err == nil || try == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(http.Handler(srv))
	hs.Listener = ln
	hs.Start()
	return &signalingServer{t: t, addr: ln.Addr().String(), srv: srv, http: hs}
}

func (s *signalingServer) url() string { return "ws://" + s.addr + "/ws" }

func (s *signalingServer) stop() {
	s.srv.Close()
	s.http.Close()
}

// startWebRTCNode starts a node on loopback. heartbeat is the link heartbeat timeout; 0 keeps
// rtclink's default.
func startWebRTCNode(t testing.TB, url string, seed uint64, heartbeat time.Duration, mods ...func(*Config)) *Node {
	t.Helper()
	id, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(id, url, "test")
	cfg.Node = nodetest.Config()
	cfg.Node.Seed = seed
	cfg.Link.SetICENetworks([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	cfg.Link.MDNS = rtclink.MDNSDisabled
	if heartbeat > 0 {
		cfg.Link.HeartbeatInterval = heartbeat / 6
		cfg.Link.HeartbeatTimeout = heartbeat
	}
	cfg.Signal.MinBackoff = 50 * time.Millisecond
	cfg.Signal.MaxBackoff = 500 * time.Millisecond
	for _, mod := range mods {
		mod(&cfg)
	}
	w, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWebRTCMesh(t *testing.T) {
	if testing.Short() {
		t.Skip("50 WebRTC nodes skipped in -short mode")
	}
	sig := startSignaling(t, "")
	m := nodetest.NewMesh(t, nodetest.Config().Membership.ActiveSize)
	var rtc []*Node
	t.Cleanup(func() {
		if t.Failed() {
			logLinks(t, rtc)
		}
		for _, w := range rtc {
			w.Close()
		}
		m.Wait()
		sig.stop()
	})
	// rtclink's default heartbeat timeout (5 s): shorter ones timed out healthy links on a
	// machine saturated by other tests, and every re-formed link costs duplicates.
	const n, heartbeat = 50, 5 * time.Second
	for i := range n {
		w := startWebRTCNode(t, sig.url(), uint64(i+1), heartbeat)
		rtc = append(rtc, w)
		m.Track(w.Node)
	}
	nodetest.WaitFor(t, 60*time.Second, "50 WebRTC nodes connected and symmetric", func() error { return m.OverlayOK(m.Nodes()) })
	for _, nd := range m.Nodes() {
		for _, nb := range nd.Neighbors() {
			if nb.Path == "" || strings.Contains(string(nb.Path), "relay") {
				t.Errorf("%s -> %s: path %q, want a direct loopback path", nd.ID(), nb.ID, nb.Path)
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	pick := func(from []*node.Node, k int) []*node.Node { return nodetest.PickNodes(rng, from, k) }
	m.BroadcastAll(pick(m.Nodes(), 10), m.Nodes())
	const measured = 90
	payloads := m.BroadcastAll(pick(m.Nodes(), measured), m.Nodes())
	rmr := float64(payloads)/float64(measured*(n-1)) - 1
	t.Logf("50 WebRTC nodes: %d payload frames for %d broadcasts, RMR %.3f", payloads, measured, rmr)
	if rmr > 0.1 {
		t.Errorf("RMR %.3f once the tree formed, want <= 0.1", rmr)
	}
	m.NoDuplicates()

	// The signaling server goes away: the overlay does not need it.
	sig.stop()
	nodetest.WaitFor(t, 10*time.Second, "nodes notice the server is gone", func() error {
		for _, w := range rtc {
			if w.SignalingConnected() {
				return fmt.Errorf("%s still connected", w.ID())
			}
		}
		return nil
	})
	m.BroadcastAll(pick(m.Nodes(), 5), m.Nodes())
	sig = startSignaling(t, sig.addr)
	nodetest.WaitFor(t, 20*time.Second, "nodes reconnect to the returning server", func() error {
		for _, w := range rtc {
			if !w.SignalingConnected() {
				return fmt.Errorf("%s not reconnected", w.ID())
			}
		}
		return nil
	})

	// Ten nodes hang silently: no goodbye, their traffic stops. The survivors notice within
	// the heartbeat timeout, repair their views, and the next broadcasts reach every survivor.
	crashed := map[string]bool{}
	for _, w := range rtc[40:] {
		w.transport.Freeze()
		crashed[w.ID()] = true
	}
	frozeAt := time.Now()
	survivors := m.Nodes()[:40]
	nodetest.WaitFor(t, 30*time.Second, "survivors repaired their views", func() error {
		for _, nd := range survivors {
			for _, nb := range nd.Neighbors() {
				if crashed[nb.ID] {
					return fmt.Errorf("%s still has hung %s as a neighbour", nd.ID(), nb.ID)
				}
			}
		}
		return m.OverlayOK(survivors)
	})
	t.Logf("survivors repaired their views %v after 10 nodes hung (heartbeat timeout %v)", time.Since(frozeAt).Round(10*time.Millisecond), heartbeat)
	m.BroadcastAll(pick(survivors, 10), survivors)
	m.NoDuplicates()
}

// logLinks logs what each node knows of its neighbours and links, so that a failure tells a
// lost frame from a stalled link or a view that is not symmetric.
func logLinks(t *testing.T, nodes []*Node) {
	t.Helper()
	for _, w := range nodes {
		s := w.Stats()
		var nbs []string
		for _, nb := range w.Neighbors() {
			kind := "lazy"
			if nb.Eager {
				kind = "eager"
			}
			nbs = append(nbs, short(nb.ID)+"/"+kind)
		}
		t.Logf("%s: neighbours %v; received gossip %d ihave %d graft %d prune %d; bad frames %d, dropped %d, slow peers %d",
			short(w.ID()), nbs, s.Gossip.Received[gossip.Gossip], s.Gossip.Received[gossip.IHave],
			s.Gossip.Received[gossip.Graft], s.Gossip.Received[gossip.Prune], s.BadFrames, s.FramesDropped, s.SlowPeers)
		for _, l := range w.transport.Links() {
			t.Logf("    link %s %s: up %v, frames in %d out %d, bytes in %d out %d, rtt %v",
				short(l.Peer), l.Path, time.Since(l.Since).Round(time.Millisecond), l.FramesIn, l.FramesOut, l.BytesIn, l.BytesOut, l.RTT)
		}
	}
}

func short(id string) string { return id[:min(8, len(id))] }
