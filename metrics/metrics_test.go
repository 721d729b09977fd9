package metrics

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/logging"
	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
	"github.com/rtcmesh/rtcmesh/link/memlink"
	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
	"github.com/rtcmesh/rtcmesh/scoring"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
	"github.com/rtcmesh/rtcmesh/turnserver"
)

// wait is the generous deadline for conditions on loopback sockets and goroutines: the test
// machines are shared and slow.
const wait = 15 * time.Second

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gather registers c alone and returns its families by name.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("Register: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// value returns the value of the sample of family name whose labels are exactly labels
// (name=value pairs), failing the test when there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	mf, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		match := true
		for i, lp := range m.GetLabel() {
			if lp.GetName() != labels[2*i] || lp.GetValue() != labels[2*i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("family %s has no sample with labels %q", name, labels)
	return 0
}

// lint fails the test on any problem Prometheus's linter finds in c's families (names,
// units, help texts).
func lint(t *testing.T, c prometheus.Collector) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// fakeNode is a NodeSource with fixed answers, for exact values.
type fakeNode struct {
	stats     node.Stats
	neighbors []node.Neighbor
}

func (f *fakeNode) Stats() node.Stats          { return f.stats }
func (f *fakeNode) Neighbors() []node.Neighbor { return f.neighbors }

func TestNodeCollectorValues(t *testing.T) {
	f := &fakeNode{}
	f.stats.Membership.ActiveSize, f.stats.Membership.PassiveSize = 3, 17
	f.stats.Membership.MessagesReceived[membership.ForwardJoin] = 4
	f.stats.Membership.MessagesSent[membership.ShuffleReply] = 2
	f.stats.Membership.PeerDowns = 6
	f.stats.Membership.Refused[membership.RefusedStrangerShuffle] = 16
	f.stats.Membership.RateLimited[membership.Join] = 17
	f.stats.Membership.ForcedEvictions, f.stats.Membership.EvictionsRefused = 18, 19
	f.stats.Membership.PassiveCapped, f.stats.Membership.RepairStalls = 20, 21
	f.stats.Membership.PassiveNotSampled, f.stats.Membership.OpportunisticRepairs = 22, 23
	f.stats.Gossip.Broadcasts, f.stats.Gossip.Delivered, f.stats.Gossip.Duplicates = 1, 9, 2
	f.stats.Gossip.Sent[gossip.IHave], f.stats.Gossip.Received[gossip.Prune] = 5, 1
	f.stats.Gossip.CachedMessages, f.stats.Gossip.EagerPeers, f.stats.Gossip.LazyPeers = 10, 2, 1
	f.stats.Links, f.stats.BadFrames, f.stats.SlowPeers, f.stats.FramesDropped = 4, 7, 8, 11
	f.stats.Gossip.HistoryMessages, f.stats.Gossip.HistoryBytes, f.stats.Gossip.HistoryDelivered = 12, 3400, 5
	f.stats.Gossip.HistoryDuplicates, f.stats.Gossip.PendingPulls, f.stats.Gossip.CatchUpThrottled = 2, 3, 13
	f.stats.Gossip.Unsent, f.stats.Gossip.UnsentDropped = 1, 14
	f.stats.CatchUpFramesDropped = 15
	f.stats.Gossip.Sent[gossip.Digest], f.stats.Gossip.Received[gossip.History] = 6, 5
	f.stats.Gossip.RefusedLinkRate, f.stats.Gossip.IHaveExcess, f.stats.Gossip.BrokenPromises = 16, 17, 18
	f.stats.Gossip.CacheBytes = 1 << 20
	f.stats.Scoring.Peers, f.stats.Scoring.Refused, f.stats.Scoring.MinScore = 5, 1, -42.5
	f.stats.Scoring.Offences[scoring.Flood], f.stats.RefusedLinks = 19, 2
	f.neighbors = []node.Neighbor{{ID: "a", Path: link.PathHost}, {ID: "b", Path: link.PathRelay}, {ID: "c", Path: link.PathHost}, {ID: "d"}}

	fams := gather(t, NewNodeCollector(f))
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"rtcmesh_membership_active_view_size", nil, 3},
		{"rtcmesh_membership_passive_view_size", nil, 17},
		{"rtcmesh_membership_messages_received_total", []string{"type", "FORWARD_JOIN"}, 4},
		{"rtcmesh_membership_messages_received_total", []string{"type", "JOIN"}, 0},
		{"rtcmesh_membership_messages_sent_total", []string{"type", "SHUFFLE_REPLY"}, 2},
		{"rtcmesh_membership_peer_downs_total", nil, 6},
		{"rtcmesh_membership_refused_total", []string{"reason", "stranger_shuffle"}, 16},
		{"rtcmesh_membership_refused_total", []string{"reason", "rate_limited"}, 0},
		{"rtcmesh_membership_rate_limited_total", []string{"type", "JOIN"}, 17},
		{"rtcmesh_membership_forced_evictions_total", nil, 18},
		{"rtcmesh_membership_evictions_refused_total", nil, 19},
		{"rtcmesh_membership_passive_capped_total", nil, 20},
		{"rtcmesh_membership_repair_stalls_total", nil, 21},
		{"rtcmesh_membership_passive_not_sampled_total", nil, 22},
		{"rtcmesh_membership_opportunistic_repairs_total", nil, 23},
		{"rtcmesh_links", []string{"path", "host"}, 2},
		{"rtcmesh_links", []string{"path", "relay"}, 1},
		{"rtcmesh_links", []string{"path", "srflx"}, 0},
		{"rtcmesh_links", []string{"path", "unknown"}, 1},
		{"rtcmesh_links_open", nil, 4},
		{"rtcmesh_gossip_broadcasts_total", nil, 1},
		{"rtcmesh_gossip_delivered_total", nil, 9},
		{"rtcmesh_gossip_duplicates_total", nil, 2},
		{"rtcmesh_gossip_messages_sent_total", []string{"type", "IHAVE"}, 5},
		{"rtcmesh_gossip_messages_received_total", []string{"type", "PRUNE"}, 1},
		{"rtcmesh_gossip_messages_received_total", []string{"type", "GOSSIP"}, 0},
		{"rtcmesh_gossip_cache_messages", nil, 10},
		{"rtcmesh_gossip_eager_peers", nil, 2},
		{"rtcmesh_gossip_lazy_peers", nil, 1},
		{"rtcmesh_node_bad_frames_total", nil, 7},
		{"rtcmesh_node_slow_peers_total", nil, 8},
		{"rtcmesh_node_frames_dropped_total", nil, 11},
		{"rtcmesh_gossip_history_messages", nil, 12},
		{"rtcmesh_gossip_history_bytes", nil, 3400},
		{"rtcmesh_gossip_history_delivered_total", nil, 5},
		{"rtcmesh_gossip_history_duplicates_total", nil, 2},
		{"rtcmesh_gossip_pending_pulls", nil, 3},
		{"rtcmesh_gossip_catch_up_throttled_total", nil, 13},
		{"rtcmesh_gossip_unsent_messages", nil, 1},
		{"rtcmesh_gossip_unsent_dropped_total", nil, 14},
		{"rtcmesh_node_catch_up_frames_dropped_total", nil, 15},
		{"rtcmesh_gossip_messages_sent_total", []string{"type", "DIGEST"}, 6},
		{"rtcmesh_gossip_messages_received_total", []string{"type", "HISTORY"}, 5},
		{"rtcmesh_gossip_refused_total", []string{"reason", "link-rate"}, 16},
		{"rtcmesh_gossip_ihave_excess_total", nil, 17},
		{"rtcmesh_gossip_broken_promises_total", nil, 18},
		{"rtcmesh_gossip_cache_bytes", nil, 1 << 20},
		{"rtcmesh_score_peers", nil, 5},
		{"rtcmesh_score_refused_peers", nil, 1},
		{"rtcmesh_score_min", nil, -42.5},
		{"rtcmesh_score_offences_total", []string{"offence", "flood"}, 19},
		{"rtcmesh_score_offences_total", []string{"offence", "invalid_signature"}, 0},
		{"rtcmesh_node_refused_links_total", nil, 2},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%q = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Every membership and gossip type is exported, even at zero.
	if n := len(fams["rtcmesh_membership_messages_sent_total"].GetMetric()); n != int(membership.ShuffleReply) {
		t.Errorf("%d membership types exported, want %d", n, membership.ShuffleReply)
	}
	if n := len(fams["rtcmesh_gossip_messages_sent_total"].GetMetric()); n != int(gossip.History) {
		t.Errorf("%d gossip types exported, want %d", n, gossip.History)
	}
	lint(t, NewNodeCollector(f))
}

// memNodes starts n complete nodes over an in-memory network, each joining through the first.
func memNodes(t *testing.T, n int) []*node.Node {
	t.Helper()
	net, err := memlink.NewNetwork(memlink.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*node.Node
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.Close()
		}
		net.Close()
	})
	first := nodetest.Key(t, "node0").ID()
	for i := range n {
		key := nodetest.Key(t, fmt.Sprintf("node%d", i))
		tr, err := net.Transport(key.ID())
		if err != nil {
			t.Fatal(err)
		}
		cfg := node.DefaultLANConfig()
		cfg.TickInterval = 20 * time.Millisecond
		cfg.Key, cfg.Transport, cfg.Seed = key, tr, uint64(i+1)
		if i > 0 {
			cfg.Contacts = []string{first}
		}
		nd, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, nd)
		// Drain events so the bounded channel never drops (and so counts stay exact).
		go func() {
			for range nd.Events() {
			}
		}()
	}
	return nodes
}

func TestNodeCollectorOnMemlinkNodes(t *testing.T) {
	nodes := memNodes(t, 3)
	for _, nd := range nodes {
		eventually(t, nd.ID()+" has two neighbours", func() bool { return len(nd.Neighbors()) == 2 })
	}
	sender, receivers := nodes[0], nodes[1:]
	if _, err := sender.Broadcast([]byte("hello metrics")); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	for _, r := range receivers {
		select {
		case d := <-r.Deliveries():
			if string(d.Data) != "hello metrics" {
				t.Fatalf("%s delivered %q", r.ID(), d.Data)
			}
		case <-time.After(wait):
			t.Fatalf("%s did not deliver the broadcast", r.ID())
		}
	}

	c := NewNodeCollector(sender)
	if got := testutil.ToFloat64(onlyFamily(c, "rtcmesh_gossip_broadcasts_total")); got != 1 {
		t.Errorf("sender broadcasts_total = %v, want 1", got)
	}
	fams := gather(t, c)
	if got := value(t, fams, "rtcmesh_gossip_delivered_total"); got != 0 {
		t.Errorf("sender delivered_total = %v, want 0 (its own broadcast is not counted)", got)
	}
	if got := value(t, fams, "rtcmesh_membership_active_view_size"); got != 2 {
		t.Errorf("sender active_view_size = %v, want 2", got)
	}
	if got := value(t, fams, "rtcmesh_links", "path", "memory"); got != 2 {
		t.Errorf("sender links{path=memory} = %v, want 2", got)
	}
	if got := value(t, fams, "rtcmesh_gossip_messages_sent_total", "type", "GOSSIP"); got < 1 {
		t.Errorf("sender sent %v GOSSIP messages, want at least 1", got)
	}
	if got := value(t, fams, "rtcmesh_membership_messages_received_total", "type", "JOIN"); got != 2 {
		t.Errorf("contact received %v JOINs, want 2", got)
	}
	for _, r := range receivers {
		fams := gather(t, NewNodeCollector(r))
		if got := value(t, fams, "rtcmesh_gossip_delivered_total"); got != 1 {
			t.Errorf("%s delivered_total = %v, want 1", r.ID(), got)
		}
		if got := value(t, fams, "rtcmesh_gossip_broadcasts_total"); got != 0 {
			t.Errorf("%s broadcasts_total = %v, want 0", r.ID(), got)
		}
		if got := value(t, fams, "rtcmesh_gossip_messages_received_total", "type", "GOSSIP"); got < 1 {
			t.Errorf("%s received %v GOSSIP messages, want at least 1", r.ID(), got)
		}
	}
	if n := testutil.CollectAndCount(c); n < 27 {
		t.Errorf("node collector yields %d samples, want at least one per family (27)", n)
	}

	// A closed node reads as zero rather than blocking or failing the scrape.
	sender.Close()
	if got := testutil.ToFloat64(onlyFamily(NewNodeCollector(sender), "rtcmesh_membership_active_view_size")); got != 0 {
		t.Errorf("closed node active_view_size = %v, want 0", got)
	}
}

// onlyFamily wraps c so that it yields only the samples of family name, for ToFloat64.
func onlyFamily(c prometheus.Collector, name string) prometheus.Collector {
	return filtered{c, name}
}

type filtered struct {
	prometheus.Collector
	name string
}

func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() {
		f.Collector.Collect(all)
		close(all)
	}()
	for m := range all {
		if strings.Contains(m.Desc().String(), `fqName: "`+f.name+`"`) {
			ch <- m
		}
	}
}

func TestSignalCollector(t *testing.T) {
	srv, err := signalserver.New(signalserver.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	c := NewSignalCollector(srv)

	// dial connects the test node called name: it answers the server's challenge with a hello
	// signed by name's key (signaling protocol 2).
	dial := func(name string) *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial(url, http.Header{})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { ws.Close() })
		_ = ws.SetReadDeadline(time.Now().Add(wait))
		var challenge signaling.Challenge
		if err := ws.ReadJSON(&challenge); err != nil {
			t.Fatalf("%s: challenge: %v", name, err)
		}
		key := nodetest.Key(t, name)
		nonce, err := challenge.NonceBytes()
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := key.Sign(identity.Transcript(identity.LabelSignalingHello, nonce, []byte("lobby")))
		hello := fmt.Sprintf(`{"type":"hello","version":%d,"network":"lobby","public_key":%q,"signature":%q}`,
			signaling.ProtocolVersion, signaling.EncodeBinary(key.PublicKey()), signaling.EncodeBinary(sig))
		if err := ws.WriteMessage(websocket.TextMessage, []byte(hello)); err != nil {
			t.Fatal(err)
		}
		_, data, err := ws.ReadMessage()
		if err != nil || !strings.Contains(string(data), `"welcome"`) {
			t.Fatalf("%s: reply %s (%v), want a welcome", name, data, err)
		}
		return ws
	}
	alice := dial("alice")
	dial("bob")
	// An offer to a peer that is not there is refused with unknown_target.
	if err := alice.WriteMessage(websocket.TextMessage, []byte(`{"type":"offer","to":"carol","sdp":"v=0"}`)); err != nil {
		t.Fatal(err)
	}
	if err := alice.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"type":"offer","to":%q,"sdp":"v=0"}`, nodetest.Key(t, "bob").ID()))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the refusal and the relay to be counted", func() bool {
		s := srv.Stats()
		return s.Rejections[signaling.CodeUnknownTarget] == 1 && s.MessagesRelayed == 1
	})

	fams := gather(t, c)
	for _, w := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"rtcmesh_signal_connections", nil, 2},
		{"rtcmesh_signal_peers", nil, 2},
		{"rtcmesh_signal_networks", nil, 1},
		{"rtcmesh_signal_welcomed_total", nil, 2},
		{"rtcmesh_signal_messages_relayed_total", nil, 1},
		{"rtcmesh_signal_rejections_total", []string{"reason", string(signaling.CodeUnknownTarget)}, 1},
		{"rtcmesh_signal_sources", nil, 1},
		{"rtcmesh_signal_max_connections", nil, float64(srv.Stats().MaxConnections)},
	} {
		if got := value(t, fams, w.name, w.labels...); got != w.want {
			t.Errorf("%s%q = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
	if got := value(t, fams, "rtcmesh_signal_queued_bytes"); got < 0 {
		t.Errorf("rtcmesh_signal_queued_bytes = %v", got)
	}
	lint(t, c)
}

func TestTURNCollector(t *testing.T) {
	const secret = "metrics-test-turn-secret-0123456789"
	cfg := turnserver.DefaultConfig()
	cfg.ListenUDP, cfg.ListenTCP = "127.0.0.1:0", ""
	cfg.PublicIP = netip.MustParseAddr("127.0.0.1")
	cfg.RelayBindIP = cfg.PublicIP
	cfg.RelayPortMin, cfg.RelayPortMax = 0, 0
	cfg.Secret = secret
	cfg.AllowedPeers = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	srv, err := turnserver.New(cfg)
	if err != nil {
		t.Fatalf("turnserver.New: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c := NewTURNCollector(srv)

	user, pass := srv.Credentials("node-a")
	relayConn, err := turnClient(t, srv.UDPAddr().String(), user, pass).Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	defer relayConn.Close()
	if _, err := turnClient(t, srv.UDPAddr().String(), user, "wrong password").Allocate(); err == nil {
		t.Fatal("Allocate with a wrong password succeeded")
	}
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	payload := []byte("seventeen bytes!!")
	if _, err := relayConn.WriteTo(payload, peer.LocalAddr()); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	buf := make([]byte, 64)
	_ = peer.SetReadDeadline(time.Now().Add(wait))
	if _, _, err := peer.ReadFrom(buf); err != nil {
		t.Fatalf("peer did not receive the relayed datagram: %v", err)
	}
	// The relay counts after it acted (a datagram after it sent it), so the client or the peer
	// may see the effect first.
	eventually(t, "the allocation, the refusal and the datagram to be counted", func() bool {
		s := srv.Stats()
		return s.AllocationsTotal == 1 && s.AuthFailures == 1 && s.PacketsToPeers == 1
	})

	fams := gather(t, c)
	for _, w := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"rtcmesh_turn_allocations", nil, 1},
		{"rtcmesh_turn_allocations_total", nil, 1},
		{"rtcmesh_turn_relayed_bytes_total", []string{"direction", "to_peer"}, float64(len(payload))},
		{"rtcmesh_turn_relayed_bytes_total", []string{"direction", "from_peer"}, 0},
		{"rtcmesh_turn_relayed_packets_total", []string{"direction", "to_peer"}, 1},
		{"rtcmesh_turn_auth_failures_total", nil, 1},
		{"rtcmesh_turn_permission_refusals_total", nil, 0},
		{"rtcmesh_turn_quota_refusals_total", nil, 0},
		{"rtcmesh_turn_bandwidth_drops_total", nil, 0},
		{"rtcmesh_turn_tcp_queue_drops_total", nil, 0},
		{"rtcmesh_turn_retired_secret_auths_total", nil, 0},
		{"rtcmesh_turn_reloads_total", nil, 0},
		{"rtcmesh_turn_reload_failures_total", nil, 0},
		{"rtcmesh_turn_user_allocations_max", nil, 1},
	} {
		if got := value(t, fams, w.name, w.labels...); got != w.want {
			t.Errorf("%s%q = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
	if h := fams["rtcmesh_turn_user_allocations"].GetMetric()[0].GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 1 ||
		h.GetBucket()[0].GetUpperBound() != 1 || h.GetBucket()[0].GetCumulativeCount() != 1 {
		t.Errorf("rtcmesh_turn_user_allocations = %v, want one user with one allocation", h)
	}
	if n := testutil.CollectAndCount(c); n != 16 {
		t.Errorf("TURN collector yields %d samples, want 16", n)
	}
	lint(t, c)
}

// turnClient is a pion/turn client on 127.0.0.1 talking UDP to server.
func turnClient(t *testing.T, server, username, password string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server,
		TURNServerAddr: server,
		Conn:           conn,
		Username:       username,
		Password:       password,
		LoggerFactory:  &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled},
	})
	if err != nil {
		t.Fatalf("turn.NewClient: %v", err)
	}
	if err := client.Listen(); err != nil {
		t.Fatalf("turn client Listen: %v", err)
	}
	t.Cleanup(client.Close)
	return client
}

func TestNewRegistryAndHandler(t *testing.T) {
	f := &fakeNode{}
	f.stats.Gossip.Broadcasts = 3
	reg, err := NewRegistry(NewNodeCollector(f))
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	// Registering the same families twice is refused with an error, not a panic.
	if _, err := NewRegistry(NewNodeCollector(f), NewNodeCollector(f)); err == nil {
		t.Error("NewRegistry accepted two node collectors")
	}
	rec := httptest.NewRecorder()
	Handler(reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, body)
	}
	for _, want := range []string{"rtcmesh_gossip_broadcasts_total 3", "go_goroutines", "# TYPE rtcmesh_links gauge"} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}
