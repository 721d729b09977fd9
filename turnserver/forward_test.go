package turnserver

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/pion/turn/v5"
)

// boundChannels counts the channel bindings the relay sockets forward themselves (forward.go).
func (s *Server) boundChannels() (relays, channels int) {
	s.relaysMu.Lock()
	defer s.relaysMu.Unlock()
	for _, rc := range s.relays {
		rc.channels.mu.RLock()
		if rc.channels.sink != nil {
			channels += len(rc.channels.byPeer)
		}
		rc.channels.mu.RUnlock()
	}
	return len(s.relays), channels
}

// streamRelays counts the TCP and TLS connections whose ChannelData the server relays itself.
func (s *Server) streamRelays() int {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	n := 0
	for _, c := range s.streams {
		if c.relay.Load() != nil {
			n++
		}
	}
	return n
}

// udpAllocCount counts the UDP allocations whose clients' ChannelData the server relays itself.
func (s *Server) udpAllocCount() int {
	s.udpAllocsMu.RLock()
	defer s.udpAllocsMu.RUnlock()
	return len(s.udpAllocs)
}

// TestChannelDataForwardedByRelaySocket checks the relay socket's own ChannelData path over UDP
// and TCP, and the server's own path for a UDP client's ChannelData: once pion's client has
// bound a channel, datagrams of every length modulo 4 reach the client and the peer intact and
// are accounted, and the allocation's end forgets the socket.
func TestChannelDataForwardedByRelaySocket(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			cfg := loopbackConfig(t, newTestClock())
			cfg.AllowedPeers = loopbackOnly
			srv := startServer(t, cfg)
			user, pass := srv.Credentials("node-a")
			var client *turn.Client
			if transport == "udp" {
				client = newUDPClient(t, srv, user, pass)
			} else {
				conn, err := net.Dial("tcp", srv.TCPAddr().String())
				if err != nil {
					t.Fatalf("dial TCP: %v", err)
				}
				t.Cleanup(func() { _ = conn.Close() })
				client = startClient(t, turn.NewSTUNConn(conn), conn.RemoteAddr().String(), user, pass)
			}
			relay, err := client.Allocate()
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			peer := newLoopbackPeer(t)
			// pion's client binds a channel in the background after the first sends.
			relayRoundTrips(t, relay, peer, 3)
			waitFor(t, "a channel bound on the relay socket", func() bool {
				_, channels := srv.boundChannels()
				return channels == 1
			})
			wantAllocs, wantStreams := 0, 1
			if transport == "udp" {
				wantAllocs, wantStreams = 1, 0
			}
			if got := srv.udpAllocCount(); got != wantAllocs {
				t.Fatalf("%d UDP allocations relayed by the server, want %d", got, wantAllocs)
			}
			if got := srv.streamRelays(); got != wantStreams {
				t.Fatalf("%d TCP connections relayed by the server, want %d", got, wantStreams)
			}
			waitFor(t, "the first round trips accounted", func() bool {
				st := srv.Stats()
				return st.PacketsToPeers == 3 && st.PacketsFromPeers == 3
			})
			before := srv.Stats()
			buf := make([]byte, 2048)
			sizes := []int{1, 2, 3, 4, 5, 1199, 1200, 1201, 1202, 1203}
			if transport == "tcp" {
				// pion's client (proto.STUNConn) waits for 9 bytes before it parses a frame, so
				// an 8-byte ChannelData message (1 to 4 bytes of data) with nothing after it
				// would stay in its buffer, whoever sent it.
				sizes = sizes[4:]
			}
			sent := 0
			for _, size := range sizes {
				payload := bytes.Repeat([]byte{byte(size)}, size)
				if _, err := relay.WriteTo(payload, peer.LocalAddr()); err != nil {
					t.Fatalf("relay write: %v", err)
				}
				if n, _ := readWithin(t, peer, buf); !bytes.Equal(buf[:n], payload) {
					t.Fatalf("peer got %d bytes, want %d bytes of %d", n, size, size)
				}
				if _, err := peer.WriteTo(payload, relay.LocalAddr()); err != nil {
					t.Fatalf("peer write: %v", err)
				}
				n, from := readWithin(t, relay, buf)
				if !bytes.Equal(buf[:n], payload) || from.String() != peer.LocalAddr().String() {
					t.Fatalf("client got %d bytes from %v, want %d bytes of %d from %v", n, from, size, size, peer.LocalAddr())
				}
				sent += size
			}
			waitFor(t, "the last datagram to the peer accounted", func() bool {
				return srv.Stats().PacketsToPeers-before.PacketsToPeers >= uint64(len(sizes))
			})
			st := srv.Stats()
			if got := st.PacketsFromPeers - before.PacketsFromPeers; got != uint64(len(sizes)) {
				t.Errorf("packets from peers: %d, want %d", got, len(sizes))
			}
			if got := st.BytesFromPeers - before.BytesFromPeers; got != uint64(sent) {
				t.Errorf("bytes from peers: %d, want %d", got, sent)
			}
			if got := st.PacketsToPeers - before.PacketsToPeers; got != uint64(len(sizes)) {
				t.Errorf("packets to peers: %d, want %d", got, len(sizes))
			}
			if got := st.BytesToPeers - before.BytesToPeers; got != uint64(sent) {
				t.Errorf("bytes to peers: %d, want %d", got, sent)
			}
			// A burst: the relay socket reads several datagrams per call and sends them on
			// together (RelayReadBatch), in order.
			const burst = 40
			for i := range burst {
				if _, err := peer.WriteTo([]byte(fmt.Sprintf("burst %d", i)), relay.LocalAddr()); err != nil {
					t.Fatalf("peer write: %v", err)
				}
			}
			for i := range burst {
				n, _ := readWithin(t, relay, buf)
				if want := fmt.Sprintf("burst %d", i); string(buf[:n]) != want {
					t.Fatalf("client got %q, want %q", buf[:n], want)
				}
			}
			if err := relay.Close(); err != nil {
				t.Fatalf("closing the allocation: %v", err)
			}
			waitFor(t, "the relay socket forgotten", func() bool {
				relays, channels := srv.boundChannels()
				return relays == 0 && channels == 0 && srv.udpAllocCount() == 0 && srv.streamRelays() == 0
			})
		})
	}
}

type capturingSink struct{ got [][]byte }

func (c *capturingSink) sendToClient(p []byte, _ net.Addr) error {
	c.got = append(c.got, bytes.Clone(p))
	return nil
}

// TestForwardEncodesChannelData checks the ChannelData bytes against RFC 8656 12.4 and pion's
// encoding: channel number, data length, data, zeros to a multiple of 4; the padding is zeroed
// even where the reused buffer held an earlier, longer datagram. Peers match by IP and port,
// IPv4-mapped or not, and strangers are left to pion/turn.
func TestForwardEncodesChannelData(t *testing.T) {
	sink := &capturingSink{}
	c := &relayConn{s: &Server{}}
	c.channels.sink, c.channels.client = sink, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 6000}
	key, ok := peerKey(&net.UDPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 5000})
	if !ok {
		t.Fatal("peerKey refused an IPv4-mapped address")
	}
	c.channels.byPeer = map[netip.AddrPort]uint16{key: 0x4001}
	peer := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1).To4(), Port: 5000}
	stranger := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5001}

	for _, size := range []int{7, 1, 0} {
		buf := c.channels.outBuffer(1600)
		for i := range buf[channelDataHeaderSize:] {
			buf[channelDataHeaderSize+i] = 0xee // an earlier datagram's bytes
		}
		for i := range size {
			buf[channelDataHeaderSize+i] = byte(i + 1)
		}
		if c.forward(buf, size, stranger) {
			t.Fatal("a datagram from a peer without a channel was forwarded")
		}
		if !c.forward(buf, size, peer) {
			t.Fatalf("%d bytes from the channel's peer were not forwarded", size)
		}
		got := sink.got[len(sink.got)-1]
		want := []byte{0x40, 0x01, 0, byte(size)}
		for i := range size {
			want = append(want, byte(i+1))
		}
		for len(want)%4 != 0 {
			want = append(want, 0)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%d bytes: sent % x, want % x", size, got, want)
		}
	}
	if c.forward(c.channels.outBuffer(1600), 3, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}) {
		t.Error("a non-UDP source address was forwarded")
	}
}
