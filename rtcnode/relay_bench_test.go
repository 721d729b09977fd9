//go:build !js

package rtcnode

import (
	"fmt"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
	"net"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
	"github.com/rtcmesh/rtcmesh/link/rtclink"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
	"github.com/rtcmesh/rtcmesh/turnserver"
)

// relayBenchNodes is the size of each of the two meshes.
const relayBenchNodes = 10

// BenchmarkRelayedBroadcast measures broadcast latency over links through the bundled TURN relay
// against direct links, side by side: two meshes of relayBenchNodes WebRTC nodes on loopback
// share one signaling server and one in-process relay, and differ only in RelayOnly. Broadcasts
// alternate between the meshes (in alternating order), each waiting until every node of its
// mesh delivered it, so both see the same machine load. Latency is from Broadcast to each other
// node's delivery.
func BenchmarkRelayedBroadcast(b *testing.B) {
	relay := startLoopbackRelay(b)
	sig := startRelaySignaling(b, relay)
	direct := startBenchMesh(b, sig, "direct", false, 1)
	relayed := startBenchMesh(b, sig, "relayed", true, 1000)
	for _, m := range []*benchMesh{direct, relayed} {
		m.waitFormed(b)
	}
	for k := range 10 { // let the broadcast trees form
		direct.broadcast(b, 7*k, false)
		relayed.broadcast(b, 7*k, false)
	}
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			direct.broadcast(b, 13*i+1, true)
			relayed.broadcast(b, 13*i+1, true)
		} else {
			relayed.broadcast(b, 13*i+1, true)
			direct.broadcast(b, 13*i+1, true)
		}
	}
	b.StopTimer()
	// The paths are checked after the measurement too: a relayed link that had been replaced
	// by a direct one (or the reverse) would make the comparison meaningless.
	direct.checkPaths(b)
	relayed.checkPaths(b)
	dp50, dp99 := direct.percentiles()
	rp50, rp99 := relayed.percentiles()
	b.ReportMetric(ms(dp50), "direct-p50-ms")
	b.ReportMetric(ms(dp99), "direct-p99-ms")
	b.ReportMetric(ms(rp50), "relay-p50-ms")
	b.ReportMetric(ms(rp99), "relay-p99-ms")
	b.ReportMetric(float64(rp50)/float64(dp50), "p50-ratio")
	b.ReportMetric(float64(rp99)/float64(dp99), "p99-ratio")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// startLoopbackRelay runs the bundled TURN relay on 127.0.0.1 (UDP only: WebRTC prefers it)
// with the default quotas and bandwidth limit, allowed to relay to loopback, which its
// default deny-list refuses.
func startLoopbackRelay(b *testing.B) *turnserver.Server {
	b.Helper()
	cfg := turnserver.DefaultConfig()
	cfg.ListenUDP, cfg.ListenTCP = "127.0.0.1:0", ""
	cfg.PublicIP = netip.MustParseAddr("127.0.0.1")
	cfg.RelayBindIP = cfg.PublicIP
	cfg.RelayPortMin, cfg.RelayPortMax = 0, 0
	cfg.Secret = "relay-bench-shared-secret-0123456789"
	cfg.AllowedPeers = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(b)).Level(zerolog.WarnLevel)
	srv, err := turnserver.New(cfg)
	if err != nil {
		b.Fatalf("TURN relay: %v", err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	return srv
}

// startRelaySignaling runs a signaling server on loopback whose welcomes carry the relay with
// fresh credentials for each node, as `rtcmesh signal --turn-listen` does.
func startRelaySignaling(b *testing.B, relay *turnserver.Server) string {
	b.Helper()
	cfg := signalserver.DefaultConfig()
	cfg.MaxPeersPerNetwork = 2 * relayBenchNodes
	cfg.ICEServers = func(nodeID string) []signaling.ICEServer {
		user, pass := relay.Credentials(nodeID)
		return []signaling.ICEServer{{URLs: relay.URLs(""), Username: user, Credential: pass}}
	}
	srv, err := signalserver.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener = ln
	hs.Start()
	b.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	return "ws://" + ln.Addr().String() + "/ws"
}

// benchMesh is one mesh of the benchmark and the latencies measured on it.
type benchMesh struct {
	name      string
	relayOnly bool
	nodes     []*Node

	mu   sync.Mutex
	sent map[gossip.MessageID]time.Time // measured broadcasts
	got  map[gossip.MessageID]int       // deliveries by other nodes, per message
	lat  []time.Duration
}

// startBenchMesh starts relayBenchNodes nodes in their own network of the signaling server.
// Their events and deliveries are drained until the benchmark ends.
func startBenchMesh(b *testing.B, url, network string, relayOnly bool, seed uint64) *benchMesh {
	b.Helper()
	m := &benchMesh{name: network, relayOnly: relayOnly, sent: map[gossip.MessageID]time.Time{}, got: map[gossip.MessageID]int{}}
	var wg sync.WaitGroup
	b.Cleanup(func() {
		for _, w := range m.nodes {
			w.Close()
		}
		wg.Wait()
	})
	for i := range relayBenchNodes {
		id, err := identity.GenerateKey()
		if err != nil {
			b.Fatal(err)
		}
		cfg := DefaultConfig(id, url, network)
		cfg.Node = nodetest.Config()
		cfg.Node.Seed = seed + uint64(i)
		cfg.Link.SettingEngine = rtclink.NetworkSettings([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
		cfg.Link.MDNS = rtclink.MDNSDisabled
		cfg.Link.RelayOnly = relayOnly
		cfg.Signal.MinBackoff = 50 * time.Millisecond
		cfg.Signal.MaxBackoff = 500 * time.Millisecond
		w, err := Start(cfg)
		if err != nil {
			b.Fatal(err)
		}
		m.nodes = append(m.nodes, w)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for d := range w.Deliveries() {
				if d.Hops == 0 {
					continue
				}
				m.mu.Lock()
				m.got[d.ID]++
				if at, ok := m.sent[d.ID]; ok {
					m.lat = append(m.lat, d.ReceivedAt.Sub(at))
				}
				m.mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			for range w.Events() {
			}
		}()
	}
	return m
}

// waitFormed waits until the mesh's overlay is connected and symmetric over links of the
// intended kind.
func (m *benchMesh) waitFormed(b *testing.B) {
	b.Helper()
	nodes := make([]*node.Node, len(m.nodes))
	for i, w := range m.nodes {
		nodes[i] = w.Node
	}
	overlay := nodetest.NewMesh(b, nodetest.Config().Membership.ActiveSize)
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := overlay.OverlayOK(nodes)
		if err == nil {
			err = m.pathError()
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s mesh not formed within 90 s: %v", m.name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pathError reports a neighbour link that is not of the mesh's kind: relay for the relayed
// mesh, anything else for the direct one.
func (m *benchMesh) pathError() error {
	for _, w := range m.nodes {
		for _, nb := range w.Neighbors() {
			if (nb.Path == link.PathRelay) != m.relayOnly {
				return fmt.Errorf("%s mesh: link %s -> %s has path %q", m.name, w.ID()[:8], nb.ID[:8], nb.Path)
			}
		}
	}
	return nil
}

func (m *benchMesh) checkPaths(b *testing.B) {
	b.Helper()
	if err := m.pathError(); err != nil {
		b.Fatal(err)
	}
}

// broadcast sends one message from node k (mod the mesh size) and waits until every other node
// delivered it; measure records its latencies.
func (m *benchMesh) broadcast(b *testing.B, k int, measure bool) {
	b.Helper()
	origin := m.nodes[k%len(m.nodes)]
	m.mu.Lock() // held so the deliveries of this message find its send time
	id, err := origin.Broadcast([]byte("latency probe"))
	if err != nil {
		m.mu.Unlock()
		b.Fatal(err)
	}
	if measure {
		m.sent[id] = time.Now()
	}
	m.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m.mu.Lock()
		c := m.got[id]
		m.mu.Unlock()
		if c >= len(m.nodes)-1 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s mesh: broadcast from %s reached %d of %d other nodes", m.name, origin.ID()[:8], c, len(m.nodes)-1)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func (m *benchMesh) percentiles() (p50, p99 time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	slices.Sort(m.lat)
	return percentile(m.lat, 0.5), percentile(m.lat, 0.99)
}
