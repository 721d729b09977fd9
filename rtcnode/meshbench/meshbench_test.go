//go:build !js

package meshbench

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestLadderInProcess runs a small ladder with the nodes inside the test's process and checks
// the figures are whole: every node formed into the overlay, every broadcast reached everyone,
// and the costs were measured.
func TestLadderInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC nodes skipped in -short mode")
	}
	c := DefaultConfig()
	c.Nodes, c.Procs = 6, 0
	c.Settle, c.Idle = time.Second, 2*time.Second
	c.Broadcasts, c.Warmup = 5, 2
	res, err := Run(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Reliability != 1 {
		t.Errorf("reliability %v, want 1", res.Reliability)
	}
	if res.Broadcasts != 5 || res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
		t.Errorf("broadcasts %d, latency p50 %v p99 %v max %v", res.Broadcasts, res.P50, res.P99, res.Max)
	}
	if res.NeighborsPerNode < 1 || res.LinksPerNode < res.NeighborsPerNode {
		t.Errorf("%.2f neighbours and %.2f links per node", res.NeighborsPerNode, res.LinksPerNode)
	}
	if res.IdleMilliCores <= 0 || res.RSSPerNode <= 0 || res.GoroutinesPerNode <= 0 || res.FDsPerNode <= 0 {
		t.Errorf("idle %.2f milli-cores, %.0f bytes, %.1f goroutines per node", res.IdleMilliCores, res.RSSPerNode, res.GoroutinesPerNode)
	}
	if res.RMR < 0 {
		t.Errorf("RMR %v: fewer payloads than deliveries", res.RMR)
	}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(table.String()), "\n"); len(lines) != 2 {
		t.Errorf("table:\n%s", table.String())
	}
}

func TestConfigRefused(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"one node":          func(c *Config) { c.Nodes = 1 },
		"more procs":        func(c *Config) { c.Procs = c.Nodes + 1 },
		"no worker command": func(c *Config) { c.Procs, c.WorkerCommand = 2, nil },
		"profile":           func(c *Config) { c.Profile = "moon" },
		"udp sockets":       func(c *Config) { c.UDPSockets = "process" },
		"no idle":           func(c *Config) { c.Idle = 0 },
		"no broadcasts":     func(c *Config) { c.Broadcasts = 0 },
		"transient":         func(c *Config) { c.TransientLinkTimeout = -1 },
	} {
		c := DefaultConfig()
		mutate(&c)
		if _, err := Run(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}
