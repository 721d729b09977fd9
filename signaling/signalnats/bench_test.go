package signalnats_test

import (
	"context"
	"net"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalclient"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

// benchServerConfig lets one loopback source open as many connections and send as many
// messages as a benchmark needs.
func benchServerConfig() signalserver.Config {
	cfg := signalserver.DefaultConfig()
	cfg.MaxConnectionsPerSource = 100000
	cfg.ConnectionsPerSourcePerMinute = 10000000
	cfg.HellosPerSourcePerMinute = 10000000
	cfg.RateLimit, cfg.RateBurst = 1000000, 1000000
	return cfg
}

// startPlain runs a signaling server without a cluster: the single-instance baseline.
func startPlain(b testing.TB) string {
	srv, err := signalserver.New(benchServerConfig())
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener.Close()
	hs.Listener = l
	hs.Start()
	b.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	return "ws://" + l.Addr().String() + "/ws"
}

// BenchmarkRelayLatency measures one offer from a sender to a receiver, sent and received in
// turn: both on one instance without a cluster, both on one instance of a cluster, and on two
// instances sharing a nats-server (embedded, on loopback). It reports p50 and p99 in
// microseconds.
func BenchmarkRelayLatency(b *testing.B) {
	for _, mode := range []string{"single", "same-instance", "across-instances"} {
		b.Run(mode, func(b *testing.B) {
			var from, to string
			switch mode {
			case "single":
				from = startPlain(b)
				to = from
			default:
				url := startNATS(b)
				a := startInstance(b, testClusterConfig(url))
				from, to = a.url(), a.url()
				if mode == "across-instances" {
					to = startInstance(b, testClusterConfig(url)).url()
				}
			}
			sender, receiver := connect(b, newKey(b), from), connect(b, newKey(b), to)
			sender.welcome()
			receiver.welcome()
			sender.waitPeers(receiver.c.ID())
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				for sender.c.SendOffer(receiver.c.ID(), "v=0") != nil { // paced: retry
					time.Sleep(time.Microsecond)
				}
				receiver.next("offer", func(m signaling.Message) bool { _, ok := m.(*signaling.Offer); return ok })
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkHellos measures connections that each complete the challenge, a signed hello and
// the welcome on one instance, eight clients at a time, without a cluster and with one (a
// second instance listens on the same nats-server). Each connection stays open, so the network
// grows by b.N members. Reported as hellos per second per instance.
func BenchmarkHellos(b *testing.B) {
	for _, mode := range []string{"single", "cluster"} {
		b.Run(mode, func(b *testing.B) {
			var url string
			if mode == "single" {
				url = startPlain(b)
			} else {
				nats := startNATS(b)
				url = startInstanceWith(b, testClusterConfig(nats), benchServerConfig()).url()
				startInstanceWith(b, testClusterConfig(nats), benchServerConfig())
			}
			keys := make([]*identity.Key, b.N)
			for i := range keys {
				keys[i] = newKey(b)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var running sync.WaitGroup
			defer func() {
				cancel()
				running.Wait()
			}()
			work := make(chan *identity.Key)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range work {
						cfg := signalclient.DefaultConfig(url, k, "bench")
						c, err := signalclient.New(cfg)
						if err != nil {
							b.Error(err)
							return
						}
						running.Add(1)
						go func() {
							defer running.Done()
							c.Run(ctx)
						}()
						for ev := range c.Events() {
							if _, ok := ev.Message.(*signaling.Welcome); ok {
								break
							}
						}
					}
				}()
			}
			for _, k := range keys {
				work <- k
			}
			close(work)
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "hellos/s")
		})
	}
}
