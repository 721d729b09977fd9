package node_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/link/memlink"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
)

// aloneNode starts a node with no contact over a network of its own, with cfg's queue and
// catch-up settings.
func aloneNode(t *testing.T, mutate func(*node.Config)) *node.Node {
	t.Helper()
	net, err := memlink.NewNetwork(memlink.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	key := nodetest.Key(t, "alone")
	tr, err := net.Transport(key.ID())
	if err != nil {
		t.Fatal(err)
	}
	cfg := nodetest.Config()
	cfg.Key, cfg.Transport = key, tr
	mutate(&cfg)
	nd, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nd.Close()
		net.Close()
	})
	return nd
}

// TestDeliveryBacklog: with catch-up on, Gossip.CatchUpMaxMessages deliveries wait in the node
// beyond a full channel, so a burst of history is not dropped by a reader that is behind;
// order is kept, and beyond both the oldest are dropped and counted. Without catch-up only the
// channel holds them, as before.
func TestDeliveryBacklog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window time.Duration
		kept   int
	}{
		{"catch-up on", 5 * time.Minute, 4 + 8},
		{"catch-up off", 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nd := aloneNode(t, func(c *node.Config) {
				c.DeliveryQueueLength = 4
				c.Gossip.CatchUpMaxMessages = 8
				if err := c.SetCatchUp(tc.window); err != nil {
					t.Fatal(err)
				}
			})
			const sent = 20
			for i := range sent {
				// Alone, the node delivers its own broadcasts (and keeps them for its first
				// neighbour); nobody reads them yet.
				if _, err := nd.Broadcast(fmt.Appendf(nil, "m%02d", i)); err != nil {
					t.Fatal(err)
				}
			}
			if s := nd.Stats(); s.DeliveriesDropped != uint64(sent-tc.kept) {
				t.Errorf("DeliveriesDropped %d, want %d", s.DeliveriesDropped, sent-tc.kept)
			}
			var got []string
			for len(got) < tc.kept {
				select {
				case d := <-nd.Deliveries():
					got = append(got, string(d.Data))
				case <-time.After(5 * time.Second):
					t.Fatalf("read %d deliveries (%s), want %d", len(got), strings.Join(got, " "), tc.kept)
				}
			}
			for k, g := range got {
				if want := fmt.Sprintf("m%02d", sent-tc.kept+k); g != want {
					t.Fatalf("deliveries %s: want the last %d in order", strings.Join(got, " "), tc.kept)
				}
			}
			select {
			case d := <-nd.Deliveries():
				t.Errorf("one more delivery %q", d.Data)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

// TestSetCatchUp: the window is set with the seen-set age it needs, and a window no digest
// covers is refused.
func TestSetCatchUp(t *testing.T) {
	c := node.DefaultConfig()
	if c.Gossip.CatchUpWindow != 5*time.Minute {
		t.Errorf("default window %v, want 5m", c.Gossip.CatchUpWindow)
	}
	if err := c.SetCatchUp(30 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if c.Gossip.CatchUpWindow != 30*time.Minute || c.Gossip.SeenMaxAge <= 30*time.Minute+c.Gossip.MaxClockSkew {
		t.Errorf("window %v, seen max age %v", c.Gossip.CatchUpWindow, c.Gossip.SeenMaxAge)
	}
	if err := c.SetCatchUp(0); err != nil || c.Gossip.CatchUpWindow != 0 {
		t.Errorf("SetCatchUp(0): %v, window %v", err, c.Gossip.CatchUpWindow)
	}
	for _, bad := range []time.Duration{-time.Second, c.Gossip.CatchUpInterval} {
		if err := c.SetCatchUp(bad); err == nil {
			t.Errorf("SetCatchUp(%v) accepted", bad)
		}
	}
	// The profiles validate, with a long window too.
	net, err := memlink.NewNetwork(memlink.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	for name, c := range map[string]node.Config{"wan": node.DefaultConfig(), "lan": node.DefaultLANConfig(), "test": nodetest.Config()} {
		for _, w := range []time.Duration{0, time.Minute, time.Hour} {
			key := nodetest.Key(t, name+w.String())
			tr, err := net.Transport(key.ID())
			if err != nil {
				t.Fatal(err)
			}
			c.Key, c.Transport = key, tr
			if err := c.SetCatchUp(w); err != nil {
				t.Fatalf("%s: SetCatchUp(%v): %v", name, w, err)
			}
			nd, err := node.New(c)
			if err != nil {
				t.Fatalf("%s profile with a %v window: %v", name, w, err)
			}
			nd.Close()
		}
	}
}
