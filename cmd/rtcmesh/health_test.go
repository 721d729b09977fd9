package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/turnserver"
)

// httpGet fetches url and returns the status and body, failing the test on a transport error.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: testWait}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// scrape fetches a /metrics page and returns its samples by series ("name" or
// `name{label="value"}`, as the text format writes them).
func scrape(t *testing.T, addr net.Addr) map[string]float64 {
	t.Helper()
	code, body := httpGet(t, "http://"+addr.String()+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics answered %d: %s", code, body)
	}
	out := map[string]float64{}
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("unparsable sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// requireSeries fails the test unless every series is in samples.
func requireSeries(t *testing.T, what string, samples map[string]float64, series ...string) {
	t.Helper()
	for _, s := range series {
		if _, ok := samples[s]; !ok {
			t.Errorf("%s /metrics lacks %s", what, s)
		}
	}
}

// waitFor polls cond until it holds or testWait passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startTestNode runs serveNode in-process on loopback with its metrics on 127.0.0.1:0 and
// returns the metrics address and the writer of its standard input. extra flags are added to
// the command line.
func startTestNode(t *testing.T, ws, network string, extra ...string) (net.Addr, io.Writer) {
	t.Helper()
	cfg, err := parseNodeFlags(append([]string{
		"--signal", ws, "--network", network, "--ephemeral", "--mdns=false", "--ice-networks", "127.0.0.0/8",
		"--profile", "lan", "--http-listen", "127.0.0.1:0",
	}, extra...), io.Discard, noEnv)
	if err != nil {
		t.Fatalf("parseNodeFlags: %v", err)
	}
	if cfg.HTTPListen != "127.0.0.1:0" {
		t.Fatalf("HTTPListen %q, want 127.0.0.1:0", cfg.HTTPListen)
	}
	in, stdin := io.Pipe()
	t.Cleanup(func() { _ = stdin.Close() })
	cmd := startCommand(t, func(ctx context.Context, log zerolog.Logger, ready func(net.Addr)) error {
		cfg.HTTPReady = ready
		return serveNode(ctx, cfg, in, io.Discard, log.Level(zerolog.WarnLevel))
	})
	return cmd.addrs, stdin
}

func TestMetricsEndToEnd(t *testing.T) {
	sigCfg, _, err := parseSignalFlags([]string{"--listen", "127.0.0.1:0"}, io.Discard, noEnv)
	if err != nil {
		t.Fatalf("parseSignalFlags: %v", err)
	}
	sig := startCommand(t, func(ctx context.Context, log zerolog.Logger, ready func(signalAddrs)) error {
		return serveSignal(ctx, sigCfg, log, ready)
	})
	sigHTTP := "http://" + sig.addrs.HTTP.String()
	if code, body := httpGet(t, sigHTTP+"/readyz"); code != http.StatusOK || body != "ready" {
		t.Errorf("signal /readyz answered %d %q, want 200 \"ready\"", code, body)
	}
	ws := "ws://" + sig.addrs.HTTP.String() + "/ws"

	first, firstIn := startTestNode(t, ws, "metrics")
	base := "http://" + first.String()
	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK || body != "ok" {
		t.Errorf("node /healthz answered %d %q, want 200 \"ok\"", code, body)
	}
	// Alone in its network, the node has no neighbour and is not ready.
	if code, body := httpGet(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no neighbour") {
		t.Errorf("lone node /readyz answered %d %q, want 503 naming the missing neighbour", code, body)
	}
	nodeFamilies := []string{
		"rtcmesh_membership_active_view_size", "rtcmesh_membership_passive_view_size",
		`rtcmesh_membership_messages_received_total{type="JOIN"}`, `rtcmesh_membership_messages_sent_total{type="SHUFFLE"}`,
		`rtcmesh_links{path="host"}`, `rtcmesh_links{path="relay"}`, "rtcmesh_links_open",
		"rtcmesh_gossip_broadcasts_total", "rtcmesh_gossip_delivered_total", "rtcmesh_gossip_duplicates_total",
		`rtcmesh_gossip_messages_sent_total{type="GOSSIP"}`, `rtcmesh_gossip_messages_received_total{type="IHAVE"}`,
		`rtcmesh_gossip_messages_sent_total{type="GRAFT"}`, `rtcmesh_gossip_messages_received_total{type="PRUNE"}`,
		"rtcmesh_gossip_cache_messages", "rtcmesh_gossip_eager_peers", "rtcmesh_gossip_lazy_peers",
		"rtcmesh_node_bad_frames_total", "rtcmesh_node_slow_peers_total", "rtcmesh_node_frames_dropped_total",
		"rtcmesh_membership_peer_downs_total", "go_goroutines",
	}
	requireSeries(t, "node", scrape(t, first), nodeFamilies...)

	second, _ := startTestNode(t, ws, "metrics")
	for _, a := range []net.Addr{first, second} {
		waitFor(t, a.String()+" /readyz to answer 200", func() bool {
			code, _ := httpGet(t, "http://"+a.String()+"/readyz")
			return code == http.StatusOK
		})
	}
	if _, err := io.WriteString(firstIn, "counted line\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second node to count the delivery", func() bool {
		return scrape(t, second)["rtcmesh_gossip_delivered_total"] == 1
	})
	s1, s2 := scrape(t, first), scrape(t, second)
	if s1["rtcmesh_gossip_broadcasts_total"] != 1 || s2["rtcmesh_gossip_broadcasts_total"] != 0 {
		t.Errorf("broadcasts_total %v and %v, want 1 (sender) and 0", s1["rtcmesh_gossip_broadcasts_total"], s2["rtcmesh_gossip_broadcasts_total"])
	}
	for k, s := range []map[string]float64{s1, s2} {
		direct := s[`rtcmesh_links{path="host"}`] + s[`rtcmesh_links{path="srflx"}`] + s[`rtcmesh_links{path="prflx"}`]
		if s["rtcmesh_membership_active_view_size"] != 1 || direct != 1 {
			t.Errorf("node %d: active view %v, direct links %v, want 1 and 1", k, s["rtcmesh_membership_active_view_size"], direct)
		}
	}

	sm := scrape(t, sig.addrs.HTTP)
	requireSeries(t, "signal", sm, "rtcmesh_signal_connections", "rtcmesh_signal_peers", "rtcmesh_signal_networks",
		"rtcmesh_signal_welcomed_total", "rtcmesh_signal_messages_relayed_total", "go_goroutines")
	if sm["rtcmesh_signal_peers"] != 2 || sm["rtcmesh_signal_welcomed_total"] != 2 || sm["rtcmesh_signal_networks"] != 1 {
		t.Errorf("signal peers %v, welcomed %v, networks %v, want 2, 2, 1", sm["rtcmesh_signal_peers"], sm["rtcmesh_signal_welcomed_total"], sm["rtcmesh_signal_networks"])
	}
	if sm["rtcmesh_signal_messages_relayed_total"] < 2 {
		t.Errorf("signal relayed %v messages, want at least an offer and an answer", sm["rtcmesh_signal_messages_relayed_total"])
	}
}

func TestSignalMetricsIncludeEmbeddedRelay(t *testing.T) {
	cfg, _, err := parseSignalFlags([]string{
		"--listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0", "--turn-relay-ports", "0", "--turn-secret", testTURNSecret,
	}, io.Discard, noEnv)
	if err != nil {
		t.Fatalf("parseSignalFlags: %v", err)
	}
	cmd := startCommand(t, func(ctx context.Context, log zerolog.Logger, ready func(signalAddrs)) error {
		return serveSignal(ctx, cfg, log, ready)
	})
	requireSeries(t, "signal with relay", scrape(t, cmd.addrs.HTTP), "rtcmesh_signal_peers", "rtcmesh_turn_allocations",
		`rtcmesh_turn_relayed_bytes_total{direction="to_peer"}`)
}

func TestTurnMetricsAndHealth(t *testing.T) {
	c, err := parseTurnCommand([]string{
		"--listen", "127.0.0.1:0", "--listen-tcp", "off", "--relay-ports", "0", "--secret", testTURNSecret,
		"--http-listen", "127.0.0.1:0",
	}, io.Discard, noEnv)
	if err != nil {
		t.Fatalf("parseTurnCommand: %v", err)
	}
	cmd := startCommand(t, func(ctx context.Context, log zerolog.Logger, ready func(turnAddrs)) error {
		return serveTurnHTTP(ctx, c, nil, log, ready)
	})
	if cmd.addrs.HTTP == nil {
		t.Fatal("no HTTP address with --http-listen set")
	}
	base := "http://" + cmd.addrs.HTTP.String()
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		if code, body := httpGet(t, base+path); code != http.StatusOK || body != want {
			t.Errorf("%s answered %d %q, want 200 %q", path, code, body, want)
		}
	}
	user, pass := turnserver.Credentials(testTURNSecret, "node-a", time.Hour, time.Now())
	relayConn, err := newTURNClient(t, cmd.addrs.UDP.String(), user, pass).Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	defer relayConn.Close()
	var m map[string]float64
	waitFor(t, "the allocation to be counted", func() bool {
		m = scrape(t, cmd.addrs.HTTP)
		return m["rtcmesh_turn_allocations_total"] == 1
	})
	requireSeries(t, "turn", m, `rtcmesh_turn_relayed_bytes_total{direction="from_peer"}`, "rtcmesh_turn_permission_refusals_total",
		"rtcmesh_turn_auth_failures_total", "rtcmesh_turn_quota_refusals_total", "process_open_fds")
	if m["rtcmesh_turn_allocations"] != 1 || m["rtcmesh_turn_allocations_total"] != 1 {
		t.Errorf("allocations %v active, %v total, want 1 and 1", m["rtcmesh_turn_allocations"], m["rtcmesh_turn_allocations_total"])
	}
	if err := cmd.stop(t); err != nil {
		t.Fatalf("serveTurnHTTP returned %v after cancel, want nil", err)
	}
	// The health server stopped with the relay.
	if conn, err := net.DialTimeout("tcp", cmd.addrs.HTTP.String(), testWait); err == nil {
		conn.Close()
		t.Error("the health server still accepts connections after the relay stopped")
	}
}

func TestHTTPListenFlags(t *testing.T) {
	var usage usageError
	if _, err := parseNodeFlags([]string{"--ephemeral", "--http-listen", "no-port"}, io.Discard, noEnv); !errors.As(err, &usage) ||
		!strings.Contains(err.Error(), "--http-listen") {
		t.Errorf("node --http-listen no-port: %v, want a usage error naming the flag", err)
	}
	_, err := parseTurnCommand([]string{"--listen", "127.0.0.1:0", "--secret", testTURNSecret, "--http-listen", "no-port"}, io.Discard, noEnv)
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "--http-listen") {
		t.Errorf("turn --http-listen no-port: %v, want a usage error naming the flag", err)
	}
	c, err := parseTurnCommand([]string{"--listen", "127.0.0.1:0", "--secret", testTURNSecret}, io.Discard, noEnv)
	if err != nil || c.HTTPListen != "" {
		t.Errorf("turn without --http-listen: %q, %v; want it off", c.HTTPListen, err)
	}
	cfg, err := parseNodeFlags([]string{"--ephemeral"}, io.Discard, noEnv)
	if err != nil || cfg.HTTPListen != "" || cfg.HTTPBroadcast {
		t.Errorf("node without --http-listen: %q, broadcast %v, %v; want both off", cfg.HTTPListen, cfg.HTTPBroadcast, err)
	}
	if _, err := parseNodeFlags([]string{"--ephemeral", "--http-broadcast"}, io.Discard, noEnv); !errors.As(err, &usage) ||
		!strings.Contains(err.Error(), "--http-listen") {
		t.Errorf("node --http-broadcast without --http-listen: %v, want a usage error naming --http-listen", err)
	}
	env := map[string]string{"RTCMESH_HTTP_LISTEN": "127.0.0.1:0", "RTCMESH_HTTP_BROADCAST": "true"}
	cfg, err = parseNodeFlags([]string{"--ephemeral"}, io.Discard, func(k string) string { return env[k] })
	if err != nil || !cfg.HTTPBroadcast || cfg.HTTPListen != "127.0.0.1:0" {
		t.Errorf("RTCMESH_HTTP_BROADCAST=true: broadcast %v, listen %q, %v; want it on", cfg.HTTPBroadcast, cfg.HTTPListen, err)
	}
}
