package demo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rtcmesh/rtcmesh/chat"
	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/node"
)

// demoConfig is the demo's default configuration with nodes Go nodes and seed, on a free
// loopback port.
func demoConfig(nodes int, seed uint64) Config {
	cfg := DefaultConfig()
	cfg.Listen, cfg.Seed, cfg.Nodes = "127.0.0.1:0", seed, nodes
	return cfg
}

// startDemoWith starts a demo, closed when the test ends.
func startDemoWith(t *testing.T, cfg Config) *Demo {
	t.Helper()
	d, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("closing the demo: %v", err)
		}
	})
	return d
}

// startPageDemo starts a demo for a browser test: it checks the browser peer is embedded and
// waits until the Go nodes form a mesh.
func startPageDemo(t *testing.T, cfg Config) *Demo {
	t.Helper()
	d := startDemoWith(t, cfg)
	if !d.Page().HasPeer() {
		t.Fatal("web/static/peer.wasm.gz is not embedded: run go generate ./web")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*browserWait)
	defer cancel()
	if err := d.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestGoNodes runs the demo without a browser: the Go nodes form a mesh, a broadcast reaches
// every one of them as a chat message with its latency, and the page and its config are
// served on the same address as signaling.
func TestGoNodes(t *testing.T) {
	d := startDemoWith(t, demoConfig(5, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := d.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	nodes := d.Nodes()
	// A node that just got its first neighbour may not reach all the others yet: repeat
	// until one broadcast reaches everyone.
	var text string
	for try := 0; ; try++ {
		text = "hello from the test " + strings.Repeat("!", try)
		if _, err := nodes[0].Say(text); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		missing := 0
		for _, n := range nodes {
			if _, err := n.WaitMessage(wctx, text); err != nil {
				missing++
			}
		}
		wcancel()
		if missing == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d nodes never delivered a broadcast", missing, len(nodes))
		}
	}
	for i, n := range nodes {
		m, _ := n.WaitMessage(ctx, text)
		if !m.Chat || m.Origin != nodes[0].ID() || m.Latency < 0 {
			t.Errorf("node %d delivered %+v", i+1, m)
		}
		if (i == 0) != (m.Hops == 0) {
			t.Errorf("node %d: hops %d", i+1, m.Hops)
		}
	}

	resp, err := http.Get(d.URL() + "config.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cfg struct{ Network string }
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &cfg); err != nil || cfg.Network != "demo" {
		t.Errorf("config.json %q: %v", body, err)
	}
	page, err := http.Get(d.URL())
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if page.StatusCode != 200 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Errorf("page: %s %q", page.Status, page.Header.Get("Content-Type"))
	}
}

func TestChatter(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen, cfg.Nodes, cfg.Chatter, cfg.Seed = "127.0.0.1:0", 3, 200*time.Millisecond, 2
	d, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		heard := 0
		for _, m := range d.Nodes()[0].Messages() {
			if m.Chat && strings.Contains(m.Text, "from Go node") {
				heard++
			}
		}
		if heard >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 1 heard %d chatter lines in 60 s", heard)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBadConfig(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"no listen":   func(c *Config) { c.Listen = "" },
		"no network":  func(c *Config) { c.Network = "" },
		"neg nodes":   func(c *Config) { c.Nodes = -1 },
		"no history":  func(c *Config) { c.History = 0 },
		"public turn": func(c *Config) { c.TURNListen = "0.0.0.0:0" },
		"no ice nets": func(c *Config) { c.ICENetworks = nil },
	} {
		cfg := DefaultConfig()
		cfg.Listen, cfg.Nodes = "127.0.0.1:0", 0
		mut(&cfg)
		if d, err := Start(cfg); err == nil {
			d.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestGoNodesDirect: a Go node's direct message reaches another with its proven ID; Go nodes
// answer direct messages from other peers only (Config.Answer), never each other's.
func TestGoNodesDirect(t *testing.T) {
	d := startDemoWith(t, demoConfig(4, 3))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := d.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	nodes := d.Nodes()
	from, to := nodes[0], nodes[3]
	text := "for node 4 alone"
	// Until node 1 links to node 4 or learns a route to it, Tell says there is none.
	for {
		err := from.Tell(to.ID(), text)
		if err == nil {
			break
		}
		if !errors.Is(err, node.ErrNoRoute) || ctx.Err() != nil {
			t.Fatalf("Tell: %v (%v)", err, ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
	dm, err := to.WaitDirect(ctx, text)
	if err != nil {
		t.Fatal(err)
	}
	if dm.From != from.ID() || !dm.Chat || dm.Latency < 0 || dm.SentAt.IsZero() {
		t.Errorf("node 4 received %+v, want a chat message from node 1 %s", dm, from.ID())
	}
	for _, n := range nodes {
		if d.answers(n.ID()) {
			t.Errorf("a Go node would answer Go node %d", n.index+1)
		}
	}
	stranger, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if !d.answers(stranger.ID()) {
		t.Errorf("the Go nodes would not answer a peer of their own")
	}
	if quiet := (&Demo{goIDs: map[string]bool{}}); quiet.answers(stranger.ID()) {
		t.Errorf("with Answer off, the Go nodes would still answer")
	}
	long := AnswerText(2, strings.Repeat("é", 300))
	if !utf8.ValidString(long) || !strings.HasPrefix(long, "Go node 3 got your direct message “é") || !strings.HasSuffix(long, "…”") {
		t.Errorf("the answer to a long message is %q", long)
	}
	if _, err := chat.Encode(chat.Message{Text: AnswerText(7, strings.Repeat("x", chat.MaxTextBytes))}); err != nil {
		t.Errorf("the answer to the longest message is not a chat message: %v", err)
	}
}
