package node_test

import (
	"errors"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/link/memlink"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
)

// BenchmarkDeliveredOverOneLink measures broadcasts of 1 KiB delivered per second from one
// node to its one neighbour over an in-memory link, with and without broadcast signatures, side
// by side: the origin signs each message and the receiver verifies it before delivering, so
// the difference is what Ed25519 costs the runtime. (Over WebRTC the link's own cost comes on
// top of both.)
func BenchmarkDeliveredOverOneLink(b *testing.B) {
	for _, v := range []struct {
		name  string
		start func(node.Config) (*node.Node, error)
	}{
		{"unsigned", node.NewUnsigned},
		{"signed", node.New},
	} {
		b.Run(v.name, func(b *testing.B) { benchOneLink(b, v.start) })
	}
}

// benchWindow is how many broadcasts may be in flight: well below memlink's queue length.
const benchWindow = 32

func benchOneLink(b *testing.B, newNode func(node.Config) (*node.Node, error)) {
	net, err := memlink.NewNetwork(memlink.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer net.Close()
	mk := func(name string, contacts ...string) *node.Node {
		key := nodetest.Key(b, name)
		tr, err := net.Transport(key.ID())
		if err != nil {
			b.Fatal(err)
		}
		cfg := nodetest.Config()
		cfg.Key, cfg.Transport, cfg.Contacts = key, tr, contacts
		cfg.DeliveryQueueLength = 1 << 16 // the origin's own deliveries pile up unread
		// One origin at thousands of broadcasts a second is a flood by the defaults' measure
		// (Gossip.OriginRate): this measures the runtime's throughput, not the defences.
		cfg.Gossip.DisableDefences()
		n, err := newNode(cfg)
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for range n.Events() {
			}
		}()
		return n
	}
	receiver := mk("receiver")
	defer receiver.Close()
	origin := mk("origin", receiver.ID())
	defer origin.Close()
	nodetest.WaitFor(b, 30*time.Second, "the two nodes to link", func() error {
		if len(origin.Neighbors()) == 0 {
			return errors.New("no neighbour yet")
		}
		return nil
	})
	payload := make([]byte, 1024)
	b.SetBytes(int64(len(payload)))
	receive := func() {
		select {
		case <-receiver.Deliveries():
		case <-time.After(10 * time.Second):
			b.Fatalf("a broadcast was not delivered within 10 s (receiver stats %+v)", receiver.Stats())
		}
	}
	b.ResetTimer()
	start := time.Now()
	got := 0
	for i := 0; i < b.N; i++ {
		if _, err := origin.Broadcast(payload); err != nil {
			b.Fatal(err)
		}
		// Keep a bounded window in flight: the link's queues are bounded, and a node closes a
		// link whose queue is full (it would drop messages, not measure throughput).
		for ; got < i-benchWindow; got++ {
			receive()
		}
	}
	for ; got < b.N; got++ {
		receive()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
