package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/identity"
)

// TestParseNodeFlagsCreatesNothing: parsing only parses; the identity file is created by
// running the node (serveNode), not by reading its flags.
func TestParseNodeFlagsCreatesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "identity.pem")
	cfg, err := parseNodeFlags([]string{"--identity", path}, io.Discard, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("parsing the flags touched %s: %v", path, err)
	}
	if cfg.IdentityPath != path || cfg.Ephemeral || cfg.WebRTC.Key != nil {
		t.Errorf("identity path %q, ephemeral %v, identity %v: want the path only", cfg.IdentityPath, cfg.Ephemeral, cfg.WebRTC.Key)
	}
	id, err := loadIdentity(path, false)
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadIdentity(path, false)
	if err != nil || again.ID() != id.ID() {
		t.Errorf("second load: %v, ID %v, want %s", err, again, id.ID())
	}
}

// TestCatchUpFlag: --catch-up sets the catch-up window (5m by default, 0 turns it off) with the
// seen-set age it needs, and a window no digest would cover is a usage error naming the flag.
func TestCatchUpFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 5 * time.Minute},
		{[]string{"--catch-up", "0"}, 0},
		{[]string{"--catch-up", "30m"}, 30 * time.Minute},
		{[]string{"--catch-up", "10s", "--profile", "lan"}, 10 * time.Second},
	} {
		cfg, err := parseNodeFlags(tc.args, io.Discard, noEnv)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		g := cfg.WebRTC.Node.Gossip
		if g.CatchUpWindow != tc.want {
			t.Errorf("%q: window %v, want %v", tc.args, g.CatchUpWindow, tc.want)
		}
		if g.SeenMaxAge <= max(g.CatchUpWindow, g.MaxClockSkew)+g.MaxClockSkew {
			t.Errorf("%q: seen max age %v too short for the window %v", tc.args, g.SeenMaxAge, g.CatchUpWindow)
		}
	}
	cfg, err := parseNodeFlags(nil, io.Discard, func(k string) string {
		if k == "RTCMESH_CATCH_UP" {
			return "90s"
		}
		return ""
	})
	if err != nil || cfg.WebRTC.Node.Gossip.CatchUpWindow != 90*time.Second {
		t.Errorf("RTCMESH_CATCH_UP=90s: %v, window %v", err, cfg.WebRTC.Node.Gossip.CatchUpWindow)
	}
	for _, bad := range [][]string{{"--catch-up", "-1s"}, {"--catch-up", "10s"}, {"--catch-up", "2s", "--profile", "lan"}} {
		_, err := parseNodeFlags(bad, io.Discard, noEnv)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), "--catch-up") {
			t.Errorf("%q: error %v, want a usage error naming --catch-up", bad, err)
		}
	}
}

// TestPowBitsFlag: --pow-bits sets the difficulty the node's links require (0, off, by
// default), and the node does its own work before it starts, stored in its identity file.
func TestPowBitsFlag(t *testing.T) {
	cfg, err := parseNodeFlags(nil, io.Discard, noEnv)
	if err != nil || cfg.WebRTC.Link.PowBits != 0 {
		t.Fatalf("default: %v, PowBits %d", err, cfg.WebRTC.Link.PowBits)
	}
	path := filepath.Join(t.TempDir(), "identity.pem")
	cfg, err = parseNodeFlags([]string{"--pow-bits", "12", "--identity", path, "--signal", "ws://127.0.0.1:1/ws", "--log-level", "error"}, io.Discard, noEnv)
	if err != nil || cfg.WebRTC.Link.PowBits != 12 {
		t.Fatalf("--pow-bits 12: %v, PowBits %d", err, cfg.WebRTC.Link.PowBits)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveNode(ctx, cfg, strings.NewReader(""), io.Discard, zerolog.Nop()) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		id, err := identity.LoadOrCreateKey(path)
		if err == nil && identity.CheckWork(id.PublicKey(), id.Work(), 12) == nil {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the identity file has no work after a start with --pow-bits 12: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDeliverEvent: a delivery's JSON line carries the origin's send time and, for one that
// came by catch-up, "history":true; a live one has no history field.
func TestDeliverEvent(t *testing.T) {
	sent := time.Date(2025, 3, 4, 5, 6, 7, 890_000_000, time.FixedZone("X", 3600))
	hops := 2
	var out strings.Builder
	write := eventWriter(&out, zerolog.Nop())
	for _, history := range []bool{false, true} {
		write(nodeEvent{Event: "deliver", ID: "ab", Origin: "o", Hops: &hops, SentAt: sent.UTC().Format(sentAtFormat), History: history, Data: "x"})
	}
	want := `{"event":"deliver","id":"ab","origin":"o","hops":2,"sent_at":"2025-03-04T04:06:07.890Z","data":"x"}
{"event":"deliver","id":"ab","origin":"o","hops":2,"sent_at":"2025-03-04T04:06:07.890Z","history":true,"data":"x"}
`
	if out.String() != want {
		t.Errorf("deliver lines:\n%s\nwant:\n%s", out.String(), want)
	}
}
