package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

func TestSignalNATSFlags(t *testing.T) {
	env := map[string]string{"RTCMESH_NATS_TOKEN": "t0ken", "RTCMESH_NATS_INSTANCE": "east-1"}
	cfg, _, err := parseSignalFlags([]string{"--nats", "nats://a:4222", "--nats", "nats://b:4222,nats://c:4222"}, io.Discard, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("parseSignalFlags: %v", err)
	}
	if cfg.NATS == nil || !slices.Equal(cfg.NATS.URLs, []string{"nats://a:4222", "nats://b:4222", "nats://c:4222"}) {
		t.Fatalf("NATS config %+v, want three URLs", cfg.NATS)
	}
	if cfg.NATS.Token != "t0ken" || cfg.NATS.Instance != "east-1" || cfg.NATS.Prefix != "rtcmesh" {
		t.Errorf("token %q, instance %q, prefix %q: the environment and defaults were not applied", cfg.NATS.Token, cfg.NATS.Instance, cfg.NATS.Prefix)
	}
	cfg, _, err = parseSignalFlags(nil, io.Discard, func(string) string { return "" })
	if err != nil || cfg.NATS != nil {
		t.Fatalf("without --nats: %v, NATS %+v; want a single instance", err, cfg.NATS)
	}
	for args, want := range map[string]string{
		"--nats http://a:4222":                                "--nats",
		"--nats nats://a:4222 --nats-presence-ttl 1s":         "--nats-presence-ttl",
		"--nats nats://a:4222 --nats-prefix a.b":              "--nats-prefix",
		"--nats nats://a:4222 --nats-user u --nats-token t":   "--nats-user",
		"--nats nats://a:4222 --nats-instance has.dots.in.it": "--nats-instance",
	} {
		_, _, err := parseSignalFlags(strings.Fields(args), io.Discard, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", args, err, want)
		}
	}
}

func TestNodeSignalURLs(t *testing.T) {
	cfg, err := parseNodeFlags([]string{"--signal", "ws://a:8080/ws", "--signal", "ws://b:8080/ws,ws://c:8080/ws", "--ephemeral"}, io.Discard, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.WebRTC.Signal
	if s.URL != "ws://a:8080/ws" || !slices.Equal(s.FallbackURLs, []string{"ws://b:8080/ws", "ws://c:8080/ws"}) {
		t.Errorf("URL %q, fallbacks %q", s.URL, s.FallbackURLs)
	}
	cfg, err = parseNodeFlags([]string{"--ephemeral"}, io.Discard, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.WebRTC.Signal; s.URL != "ws://127.0.0.1:8080/ws" || len(s.FallbackURLs) != 0 {
		t.Errorf("default: URL %q, fallbacks %q", s.URL, s.FallbackURLs)
	}
}

// meshWatch follows node processes' events: neighbours and delivered lines.
type meshWatch struct {
	mu        sync.Mutex
	neighbors map[string]map[string]bool
	delivered map[string]map[string]bool // node → data
}

func (w *meshWatch) watch(id string, p *process) {
	w.mu.Lock()
	w.neighbors[id], w.delivered[id] = map[string]bool{}, map[string]bool{}
	w.mu.Unlock()
	go func() {
		for m := range p.lines {
			peer, _ := m["peer"].(string)
			data, _ := m["data"].(string)
			w.mu.Lock()
			switch m["event"] {
			case "neighbor_up":
				w.neighbors[id][peer] = true
			case "neighbor_down":
				delete(w.neighbors[id], peer)
			case "deliver":
				w.delivered[id][data] = true
			}
			w.mu.Unlock()
		}
	}()
}

// oneMesh reports why the neighbour relation does not join every node of ids, or nil.
func (w *meshWatch) oneMesh(ids []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{ids[0]: true}
	queue := []string{ids[0]}
	for len(queue) > 0 {
		for p := range w.neighbors[queue[0]] {
			if !seen[p] && slices.Contains(ids, p) {
				seen[p] = true
				queue = append(queue, p)
			}
		}
		queue = queue[1:]
	}
	if len(seen) != len(ids) {
		return fmt.Errorf("%d of %d nodes reachable from the first", len(seen), len(ids))
	}
	return nil
}

func (w *meshWatch) missing(ids []string, data string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, id := range ids {
		if !w.delivered[id][data] {
			n++
		}
	}
	if n > 0 {
		return fmt.Errorf("%d of %d nodes have not delivered %q", n, len(ids), data)
	}
	return nil
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signalMetric reads one series of a signal process's /metrics.
func signalMetric(base, series string) (float64, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s", series)
}

// Two `rtcmesh signal --nats` processes share one nats-server, with four `rtcmesh node`
// processes on each: they form one mesh, and a line typed into a node of instance A is
// delivered by every node of instance B. Then A is killed (SIGKILL): its nodes move to B, the
// next line reaches every node, and nodes that still name A first join through B.
func TestSignalProcessesShareNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("separate processes skipped in -short mode")
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	startSignal := func(name string) (*process, string) {
		p := startProcess(t, "stderr", "signal", "--listen", "127.0.0.1:0", "--web=false", "--nats", ns.ClientURL(),
			"--nats-instance", name, "--nats-presence-interval", "200ms", "--nats-presence-ttl", "1s")
		ws := p.await("signaling server listening", func(m map[string]any) bool {
			return m["message"] == "signaling server listening"
		})["ws"].(string)
		go func() { // keep draining its log
			for range p.lines {
			}
		}()
		return p, ws
	}
	sigA, wsA := startSignal("a")
	_, wsB := startSignal("b")
	httpB := "http://" + strings.TrimSuffix(strings.TrimPrefix(wsB, "ws://"), "/ws")

	w := &meshWatch{neighbors: map[string]map[string]bool{}, delivered: map[string]map[string]bool{}}
	procs := map[string]*process{}
	var ids, onA, onB []string
	startNode := func(urls string) string {
		p := startProcess(t, "stdout", "node", "--signal", urls, "--network", "natsproc", "--ephemeral",
			"--mdns=false", "--ice-networks", "127.0.0.0/8", "--profile", "lan", "--log-level", "warn")
		id := p.await("ready", func(m map[string]any) bool { return m["event"] == "ready" })["id"].(string)
		w.watch(id, p)
		procs[id] = p
		ids = append(ids, id)
		return id
	}
	for range 4 {
		onA = append(onA, startNode(wsA+","+wsB))
		onB = append(onB, startNode(wsB+","+wsA))
	}
	waitUntil(t, 60*time.Second, "eight node processes on two instances form one mesh", func() error { return w.oneMesh(ids) })
	if n, err := signalMetric(httpB, "rtcmesh_signal_nats_relays_in_total"); err != nil || n == 0 {
		t.Errorf("instance B received %v relays from A (%v): the mesh did not cross instances", n, err)
	}
	say := func(id, line string, to []string) {
		t.Helper()
		if _, err := io.WriteString(procs[id].stdin, line+"\n"); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 30*time.Second, "the line reaches every node", func() error { return w.missing(to, line) })
	}
	say(onA[0], "from a node of instance A", onB)

	killed := time.Now()
	if err := sigA.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	sigA.cmd.Wait()
	waitUntil(t, 30*time.Second, "A's nodes move to B", func() error {
		n, err := signalMetric(httpB, "rtcmesh_signal_peers")
		if err == nil && n != 8 {
			err = fmt.Errorf("B holds %v nodes, want 8", n)
		}
		return err
	})
	t.Logf("all eight nodes on B %v after A was killed", time.Since(killed).Round(time.Millisecond))
	say(onA[1], "after instance A was killed", ids)
	newcomer := startNode(wsA + "," + wsB) // A is dead: it joins through B
	waitUntil(t, 60*time.Second, "a newcomer naming the dead instance first joins the mesh", func() error { return w.oneMesh(ids) })
	say(newcomer, "from the newcomer", ids)
}
