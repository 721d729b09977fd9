package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/demo"
)

// TestSignalServesPage checks that `rtcmesh signal` serves the demo page next to /ws, with
// the page's network from --web-network, and serves none with --web=false.
func TestSignalServesPage(t *testing.T) {
	cfg, _, err := parseSignalFlags([]string{"--listen", "127.0.0.1:0", "--web-network", "lobby"}, io.Discard, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	cmd := startCommand(t, func(ctx context.Context, log zerolog.Logger, ready func(signalAddrs)) error {
		return serveSignal(ctx, cfg, log, ready)
	})
	base := "http://" + cmd.addrs.HTTP.String()
	resp, err := http.Get(base + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Network string }
	err = json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	if err != nil || c.Network != "lobby" {
		t.Errorf("/config.json network %q (%v), want lobby", c.Network, err)
	}
	for _, p := range []string{"/", "/app.js", "/healthz"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %s", p, resp.Status)
		}
	}

	off, _, err := parseSignalFlags([]string{"--listen", "127.0.0.1:0", "--web=false"}, io.Discard, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if off.Web != nil {
		t.Errorf("--web=false still configures a page")
	}
	if _, _, err := parseSignalFlags([]string{"--web-network", strings.Repeat("n", 100)}, io.Discard, noEnv); err == nil {
		t.Error("a 100-byte --web-network was accepted")
	}
}

func TestDemoFlags(t *testing.T) {
	cfg, level, err := parseDemoFlags([]string{"--nodes", "3", "--listen", ":0", "--chatter", "0"}, io.Discard, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Nodes != 3 || cfg.Listen != "127.0.0.1:0" || cfg.Chatter != 0 || cfg.Network != "demo" || level != zerolog.WarnLevel {
		t.Errorf("parsed %+v level %v", cfg, level)
	}
	withLAN, _, err := parseDemoFlags([]string{"--ice-networks", "192.168.1.0/24"}, io.Discard, noEnv)
	if err != nil || len(withLAN.ICENetworks) != 2 || withLAN.ICENetworks[1].String() != "192.168.1.0/24" {
		t.Errorf("--ice-networks 192.168.1.0/24: %v %v, want loopback and the LAN", withLAN.ICENetworks, err)
	}
	if cfg.Node.Gossip.CatchUpWindow != 5*time.Minute {
		t.Errorf("the demo's nodes keep %v of history, want 5m", cfg.Node.Gossip.CatchUpWindow)
	}
	long, _, err := parseDemoFlags([]string{"--catch-up", "1h"}, io.Discard, noEnv)
	if err != nil || long.Node.Gossip.CatchUpWindow != time.Hour {
		t.Errorf("--catch-up 1h: %v, window %v", err, long.Node.Gossip.CatchUpWindow)
	}
	if pow, _, err := parseDemoFlags([]string{"--pow-bits", "12"}, io.Discard, noEnv); err != nil || pow.Signal.PowBits != 12 {
		t.Errorf("--pow-bits 12: %v, server difficulty %d", err, pow.Signal.PowBits)
	}
	if _, _, err := parseDemoFlags([]string{"--pow-bits", "99"}, io.Discard, noEnv); err == nil || !strings.Contains(err.Error(), "--pow-bits") {
		t.Errorf("--pow-bits 99: %v, want an error naming the flag", err)
	}
	for _, args := range [][]string{
		{"--catch-up", "1s"}, {"--catch-up", "-1m"}, {"--pow-bits", "-1"},
		{"--nodes", "-1"}, {"--listen", "0.0.0.0:8080"}, {"--listen", "192.0.2.1:80"}, {"--listen", "nonsense"},
		{"--network", ""}, {"--chatter", "-1s"}, {"--ice-networks", "nonsense"},
	} {
		if _, _, err := parseDemoFlags(args, io.Discard, noEnv); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

// syncBuffer is a bytes buffer safe to write from the demo's goroutines and read from the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoCommand runs `rtcmesh demo` with 3 nodes: it prints the URL, which serves the page,
// says when the mesh formed, and stops cleanly when its context ends (as on Ctrl-C).
func TestDemoCommand(t *testing.T) {
	cfg, _, err := parseDemoFlags([]string{"--nodes", "3", "--listen", "127.0.0.1:0"}, io.Discard, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *demo.Demo, 1)
	done := make(chan error, 1)
	go func() { done <- serveDemo(ctx, cfg, out, func(d *demo.Demo) { ready <- d }) }()
	var d *demo.Demo
	select {
	case d = <-ready:
	case err := <-done:
		t.Fatalf("demo stopped before it ran: %v", err)
	case <-time.After(testWait):
		t.Fatal("demo did not start")
	}
	if !strings.Contains(out.String(), d.URL()) {
		t.Errorf("output does not name %s:\n%s", d.URL(), out)
	}
	resp, err := http.Get(d.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET %s: %s", d.URL(), resp.Status)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "formed a mesh") {
		if time.Now().After(deadline) {
			t.Fatalf("the 3 nodes did not form a mesh in 60 s:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo returned %v, want nil", err)
		}
	case <-time.After(testWait):
		t.Fatal("demo did not stop after its context ended")
	}
}
