package turnserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

// startEcho runs a UDP echo peer on 127.0.0.1 until the test ends.
func startEcho(b *testing.B) net.PacketConn {
	peer := newLoopbackPeer(b)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := peer.ReadFrom(buf)
			if err != nil {
				return
			}
			if _, err := peer.WriteTo(buf[:n], from); err != nil {
				return
			}
		}
	}()
	return peer
}

// BenchmarkRelayThroughput measures payload relayed client -> relay -> UDP
// echo peer -> relay -> client on loopback, with up to window datagrams in
// flight. One op is one datagram's round trip; MB/s counts both legs.
func BenchmarkRelayThroughput(b *testing.B) {
	for _, transport := range []string{"udp", "tcp"} {
		b.Run(transport, func(b *testing.B) {
			cfg := loopbackConfig(b, newTestClock())
			cfg.AllowedPeers = loopbackOnly
			srv := startServer(b, cfg)
			user, pass := srv.Credentials("bench")
			var client *turn.Client
			if transport == "udp" {
				client = newUDPClient(b, srv, user, pass)
			} else {
				conn, err := net.Dial("tcp", srv.TCPAddr().String())
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = conn.Close() })
				client = startClient(b, turn.NewSTUNConn(conn), conn.RemoteAddr().String(), user, pass)
			}
			relay, err := client.Allocate()
			if err != nil {
				b.Fatalf("Allocate: %v", err)
			}
			echo := startEcho(b)
			const size, window = 1200, 16
			payload := make([]byte, size)
			buf := make([]byte, 2048)
			// Warm up: permission and channel binding.
			relayRoundTripOnce(b, relay, echo.LocalAddr(), payload, buf)

			lost := 0
			b.SetBytes(2 * size)
			b.ResetTimer()
			for sent := 0; sent < b.N; {
				batch := min(window, b.N-sent)
				for range batch {
					if _, err := relay.WriteTo(payload, echo.LocalAddr()); err != nil {
						b.Fatalf("relay write: %v", err)
					}
				}
				sent += batch
				for range batch {
					_ = relay.SetReadDeadline(time.Now().Add(time.Second))
					if _, _, err := relay.ReadFrom(buf); err != nil {
						var netErr net.Error
						if errors.As(err, &netErr) && netErr.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
							lost++
							continue
						}
						b.Fatalf("relay read: %v", err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(lost)/float64(b.N)*100, "%lost")
		})
	}
}

func relayRoundTripOnce(b *testing.B, relay net.PacketConn, to net.Addr, payload, buf []byte) {
	b.Helper()
	for attempt := 0; attempt < 10; attempt++ {
		if _, err := relay.WriteTo(payload, to); err != nil {
			b.Fatalf("relay write: %v", err)
		}
		_ = relay.SetReadDeadline(time.Now().Add(time.Second))
		if _, _, err := relay.ReadFrom(buf); err == nil {
			return
		}
	}
	b.Fatal("no echo through the relay")
}

// BenchmarkAllocate measures complete allocation lifecycles per second: a
// fresh client socket, the 401 challenge, the authenticated Allocate, and
// the deallocation (Refresh with lifetime 0).
func BenchmarkAllocate(b *testing.B) {
	cfg := loopbackConfig(b, newTestClock())
	cfg.MaxAllocations, cfg.MaxAllocationsPerUser = 1<<20, 1<<20
	srv := startServer(b, cfg)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		user, pass := srv.Credentials(fmt.Sprintf("node-%d", i%64))
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		client, err := turn.NewClient(&turn.ClientConfig{
			TURNServerAddr: srv.UDPAddr().String(), Conn: conn, Username: user, Password: pass,
			LoggerFactory: pionLoggerFactory{},
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := client.Listen(); err != nil {
			b.Fatal(err)
		}
		relay, err := client.Allocate()
		if err != nil {
			b.Fatalf("Allocate: %v", err)
		}
		if err := relay.Close(); err != nil {
			b.Fatalf("deallocate: %v", err)
		}
		client.Close()
		_ = conn.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "allocs/s")
}
