package turnserver

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

func TestSTUNBindingAnswered(t *testing.T) {
	srv := startServer(t, loopbackConfig(t, newTestClock()))
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := startClient(t, conn, srv.UDPAddr().String(), "", "")
	mapped, err := client.SendBindingRequest()
	if err != nil {
		t.Fatalf("binding request: %v", err)
	}
	if mapped.String() != conn.LocalAddr().String() {
		t.Fatalf("mapped address %v, want the client's %v", mapped, conn.LocalAddr())
	}
}

func TestAllocateWithValidCredentials(t *testing.T) {
	clock := newTestClock()
	srv := startServer(t, loopbackConfig(t, clock))
	user, pass := srv.Credentials("node-a")
	relay, err := newUDPClient(t, srv, user, pass).Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	relayAddr, ok := relay.LocalAddr().(*net.UDPAddr)
	if !ok || !relayAddr.IP.Equal(net.IPv4(127, 0, 0, 1)) || relayAddr.Port == 0 {
		t.Fatalf("relayed address %v, want 127.0.0.1:<port>", relay.LocalAddr())
	}
	if st := srv.Stats(); st.AllocationsActive != 1 || st.AllocationsTotal != 1 || st.AuthFailures != 0 {
		t.Fatalf("stats after one allocation: %+v", st)
	}
	if err := relay.Close(); err != nil { // Refresh with lifetime 0 deletes it
		t.Fatalf("close relay: %v", err)
	}
	waitFor(t, "allocation deleted", func() bool { return srv.Stats().AllocationsActive == 0 })
}

func TestAllocateRefusesBadCredentials(t *testing.T) {
	clock := newTestClock()
	srv := startServer(t, loopbackConfig(t, clock))
	expiredUser, expiredPass := Credentials(testSecret, "node-a", time.Hour, clock.Now().Add(-2*time.Hour))
	validUser, _ := srv.Credentials("node-a")
	_, otherSecretPass := Credentials("another-secret-0123456789", "node-a", time.Hour, clock.Now())
	cases := []struct {
		name, user, pass string
	}{
		{"expired", expiredUser, expiredPass},
		{"wrong HMAC", validUser, "d3JvbmcgcGFzc3dvcmQ="},
		{"other secret", validUser, otherSecretPass},
		{"no expiry", "node-a", "x"},
		{"empty node", fmt.Sprintf("%d:", clock.Now().Add(time.Hour).Unix()), "x"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newUDPClient(t, srv, tc.user, tc.pass).Allocate()
			if code := turnCode(err); code != int(stun.CodeUnauthorized) {
				t.Fatalf("Allocate error %v (code %d), want 401", err, code)
			}
			if got := srv.Stats().AuthFailures; got != uint64(i+1) {
				t.Fatalf("AuthFailures = %d, want %d", got, i+1)
			}
		})
	}
	if st := srv.Stats(); st.AllocationsTotal != 0 {
		t.Fatalf("allocations were made with bad credentials: %+v", st)
	}

	// The same expiry check, seen exactly on the wire.
	raw := newRawTURN(t, srv, expiredUser, expiredPass)
	resp := raw.allocate()
	if code := errorCode(resp); code != stun.CodeUnauthorized || !resp.Contains(stun.AttrNonce) {
		t.Fatalf("expired credentials answered %v with code %v, want a 401 challenge", resp.Type, code)
	}
}

// TestDeniedPeersForbidden checks the default deny-list with the server's
// own addresses (loopback), a private address the TURN host might have and
// the cloud metadata address. Only permissions are requested: nothing is
// ever sent to those addresses, and the test checks that nothing was relayed.
func TestDeniedPeersForbidden(t *testing.T) {
	srv := startServer(t, loopbackConfig(t, newTestClock()))
	user, pass := srv.Credentials("node-a")
	client := newUDPClient(t, srv, user, pass)
	if _, err := client.Allocate(); err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	denied := []string{"127.0.0.1:9", "10.11.12.13:9", "192.168.1.1:9", "169.254.169.254:80", "172.16.0.1:9", "100.64.0.1:9"}
	for i, peer := range denied {
		err := client.CreatePermission(net.UDPAddrFromAddrPort(mustAddrPort(peer)))
		if code := turnCode(err); code != int(stun.CodeForbidden) {
			t.Fatalf("CreatePermission(%s): %v (code %d), want 403", peer, err, code)
		}
		if got := srv.Stats().PermissionRefusals; got != uint64(i+1) {
			t.Fatalf("PermissionRefusals = %d after %s, want %d", got, peer, i+1)
		}
	}
	// A public peer is permitted (TEST-NET-3; nothing is sent to it).
	if err := client.CreatePermission(net.UDPAddrFromAddrPort(mustAddrPort("9.9.9.9:9"))); err != nil {
		t.Fatalf("CreatePermission to a public address: %v", err)
	}
	if st := srv.Stats(); st.PacketsToPeers != 0 || st.PermissionRefusals != uint64(len(denied)) {
		t.Fatalf("stats: %+v", st)
	}
}

// TestChannelBindDeniedIs403 sends ChannelBind without CreatePermission, as a
// hostile client might: pion/turn alone answers 401; the server makes it a
// properly signed 403.
func TestChannelBindDeniedIs403(t *testing.T) {
	srv := startServer(t, loopbackConfig(t, newTestClock()))
	user, pass := srv.Credentials("node-a")
	raw := newRawTURN(t, srv, user, pass)
	if resp := raw.allocate(); resp.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("Allocate answered %v code %v", resp.Type, errorCode(resp))
	}
	for i, peer := range []string{"127.0.0.1:9", "10.0.0.1:9", "169.254.169.254:80"} {
		resp := raw.authed(stun.MethodChannelBind, channelNumber(0x4000+uint16(i)), peerAttr(peer))
		if code := errorCode(resp); code != stun.CodeForbidden {
			t.Fatalf("ChannelBind to %s answered %v code %v, want 403", peer, resp.Type, code)
		}
		if err := raw.integrity().Check(resp); err != nil {
			t.Fatalf("403 to ChannelBind is not signed with the client's key: %v", err)
		}
	}
	resp := raw.authed(stun.MethodChannelBind, channelNumber(0x4010), peerAttr("9.9.9.9:9"))
	if resp.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("ChannelBind to a public address answered %v code %v", resp.Type, errorCode(resp))
	}
	// CreatePermission with several peers fails as a whole if one is denied.
	resp = raw.authed(stun.MethodCreatePermission, peerAttr("9.9.9.8:9"), peerAttr("192.168.0.10:9"))
	if code := errorCode(resp); code != stun.CodeForbidden {
		t.Fatalf("CreatePermission with a denied peer answered code %v, want 403", code)
	}
	if st := srv.Stats(); st.PermissionRefusals != 4 || st.PacketsToPeers != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

// relayRoundTrips exchanges datagrams between a TURN client's relayed
// connection and a plain loopback socket, both ways, and returns the payload
// bytes sent in each direction.
func relayRoundTrips(t *testing.T, relay net.PacketConn, peer net.PacketConn, rounds int) (toPeer, fromPeer int) {
	t.Helper()
	buf := make([]byte, 2048)
	for i := range rounds {
		out := []byte(fmt.Sprintf("client to peer %d", i))
		if _, err := relay.WriteTo(out, peer.LocalAddr()); err != nil {
			t.Fatalf("relay write: %v", err)
		}
		n, from := readWithin(t, peer, buf)
		if !bytes.Equal(buf[:n], out) || from.String() != relay.LocalAddr().String() {
			t.Fatalf("peer got %q from %v, want %q from the relay %v", buf[:n], from, out, relay.LocalAddr())
		}
		back := []byte(fmt.Sprintf("peer to client %d", i))
		if _, err := peer.WriteTo(back, relay.LocalAddr()); err != nil {
			t.Fatalf("peer write: %v", err)
		}
		n, from = readWithin(t, relay, buf)
		if !bytes.Equal(buf[:n], back) || from.String() != peer.LocalAddr().String() {
			t.Fatalf("client got %q from %v, want %q from %v", buf[:n], from, back, peer.LocalAddr())
		}
		toPeer += len(out)
		fromPeer += len(back)
	}
	return toPeer, fromPeer
}

func TestRelayEndToEndOnLoopback(t *testing.T) {
	cfg := loopbackConfig(t, newTestClock())
	cfg.AllowedPeers = loopbackOnly
	srv := startServer(t, cfg)
	user, pass := srv.Credentials("node-a")
	relay, err := newUDPClient(t, srv, user, pass).Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	peer := newLoopbackPeer(t)
	// Early rounds go as Send/Data indications, later ones over the channel
	// pion's client binds in the background.
	toPeer, fromPeer := relayRoundTrips(t, relay, peer, 20)
	waitFor(t, "relay accounting", func() bool {
		st := srv.Stats()
		return st.BytesToPeers == uint64(toPeer) && st.BytesFromPeers == uint64(fromPeer)
	})
	if st := srv.Stats(); st.PacketsToPeers != 20 || st.PacketsFromPeers != 20 || st.BytesRelayed() != uint64(toPeer+fromPeer) {
		t.Fatalf("stats: %+v", st)
	}
}

func TestAllocationQuotaPerUser(t *testing.T) {
	cfg := loopbackConfig(t, newTestClock())
	cfg.MaxAllocationsPerUser = 2
	srv := startServer(t, cfg)
	user, pass := srv.Credentials("node-a")
	var relays []net.PacketConn
	for range 2 {
		relay, err := newUDPClient(t, srv, user, pass).Allocate()
		if err != nil {
			t.Fatalf("Allocate within quota: %v", err)
		}
		relays = append(relays, relay)
	}
	_, err := newUDPClient(t, srv, user, pass).Allocate()
	if code := turnCode(err); code != int(stun.CodeAllocQuotaReached) {
		t.Fatalf("third allocation for one user: %v (code %d), want 486", err, code)
	}
	if got := srv.Stats().QuotaRefusals; got != 1 {
		t.Fatalf("QuotaRefusals = %d, want 1", got)
	}
	otherUser, otherPass := srv.Credentials("node-b")
	if _, err := newUDPClient(t, srv, otherUser, otherPass).Allocate(); err != nil {
		t.Fatalf("another user within quota: %v", err)
	}
	// Fresh credentials for the same node share its quota.
	freshUser, freshPass := Credentials(testSecret, "node-a", 2*time.Hour, cfg.Now())
	if _, err := newUDPClient(t, srv, freshUser, freshPass).Allocate(); turnCode(err) != int(stun.CodeAllocQuotaReached) {
		t.Fatalf("same node with other credentials: %v, want 486", err)
	}
	// Releasing one allocation frees a slot.
	if err := relays[0].Close(); err != nil {
		t.Fatalf("close relay: %v", err)
	}
	waitFor(t, "slot released", func() bool { return srv.quota.admits("node-a") })
	if _, err := newUDPClient(t, srv, user, pass).Allocate(); err != nil {
		t.Fatalf("allocation after release: %v", err)
	}
}

func TestAllocationQuotaTotal(t *testing.T) {
	cfg := loopbackConfig(t, newTestClock())
	cfg.MaxAllocations = 2
	srv := startServer(t, cfg)
	for i := range 2 {
		user, pass := srv.Credentials(fmt.Sprintf("node-%d", i))
		if _, err := newUDPClient(t, srv, user, pass).Allocate(); err != nil {
			t.Fatalf("Allocate within quota: %v", err)
		}
	}
	user, pass := srv.Credentials("node-late")
	_, err := newUDPClient(t, srv, user, pass).Allocate()
	if code := turnCode(err); code != int(stun.CodeAllocQuotaReached) {
		t.Fatalf("allocation over the server total: %v (code %d), want 486", err, code)
	}
	if st := srv.Stats(); st.QuotaRefusals != 1 || st.AllocationsActive != 2 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestBandwidthPerAllocation sends bursts in both directions with the clock
// stopped, so the token bucket holds exactly BandwidthBurst bytes, then
// moves the clock one second and sends again.
func TestBandwidthPerAllocation(t *testing.T) {
	clock := newTestClock()
	cfg := loopbackConfig(t, clock)
	cfg.AllowedPeers = loopbackOnly
	cfg.BandwidthPerAllocation = 1600
	cfg.BandwidthBurst = 1600
	srv := startServer(t, cfg)
	user, pass := srv.Credentials("node-a")
	relay, err := newUDPClient(t, srv, user, pass).Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	peer := newLoopbackPeer(t)
	// Open the permission (and the peer's path back) before the burst.
	if err := relay.(interface{ CreatePermissions(...net.Addr) error }).CreatePermissions(peer.LocalAddr()); err != nil {
		t.Fatalf("CreatePermissions: %v", err)
	}

	payload := make([]byte, 400) // four fit in the 1600-byte bucket
	const burst = 10
	sendBurst := func() {
		for range burst {
			if _, err := relay.WriteTo(payload, peer.LocalAddr()); err != nil {
				t.Fatalf("relay write: %v", err)
			}
		}
	}
	processed := func(want uint64) func() bool {
		return func() bool { st := srv.Stats(); return st.PacketsToPeers+st.BandwidthDrops == want }
	}
	sendBurst()
	waitFor(t, "first burst processed", processed(burst))
	if st := srv.Stats(); st.PacketsToPeers != 4 || st.BytesToPeers != 1600 || st.BandwidthDrops != 6 {
		t.Fatalf("after first burst: %+v", st)
	}
	clock.Advance(time.Second) // refills 1600 bytes
	sendBurst()
	waitFor(t, "second burst processed", processed(2*burst))
	if st := srv.Stats(); st.PacketsToPeers != 8 || st.BandwidthDrops != 12 {
		t.Fatalf("after second burst: %+v", st)
	}
	buf := make([]byte, 2048)
	for range 8 {
		readWithin(t, peer, buf)
	}

	// Peer to client: the other direction has its own bucket.
	for range burst {
		if _, err := peer.WriteTo(payload, relay.LocalAddr()); err != nil {
			t.Fatalf("peer write: %v", err)
		}
	}
	waitFor(t, "peer burst processed", func() bool {
		st := srv.Stats()
		return st.PacketsFromPeers+st.BandwidthDrops-12 == burst
	})
	if st := srv.Stats(); st.PacketsFromPeers != 4 || st.BytesFromPeers != 1600 || st.BandwidthDrops != 18 {
		t.Fatalf("after peer burst: %+v", st)
	}
	for range 4 {
		readWithin(t, relay, buf)
	}
}

func TestAllocateOverTCP(t *testing.T) {
	cfg := loopbackConfig(t, newTestClock())
	cfg.AllowedPeers = loopbackOnly
	srv := startServer(t, cfg)
	conn, err := net.Dial("tcp", srv.TCPAddr().String())
	if err != nil {
		t.Fatalf("dial TCP: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	testStreamAllocation(t, srv, conn)
}

func TestAllocateOverTLS(t *testing.T) {
	serverTLS, clientTLS := selfSignedTLS(t)
	cfg := loopbackConfig(t, newTestClock())
	cfg.ListenTCP = ""
	cfg.ListenTLS = "127.0.0.1:0"
	cfg.TLSConfig = serverTLS
	cfg.AllowedPeers = loopbackOnly
	srv := startServer(t, cfg)
	conn, err := tls.Dial("tcp", srv.TLSAddr().String(), clientTLS)
	if err != nil {
		t.Fatalf("dial TLS: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	testStreamAllocation(t, srv, conn)
	want := "turns:127.0.0.1:" + fmt.Sprint(srv.TLSAddr().(*net.TCPAddr).Port) + "?transport=tcp"
	if urls := srv.URLs(""); len(urls) != 3 || urls[2] != want {
		t.Fatalf("URLs = %v, want stun, turn/udp and %s", urls, want)
	}
}

// testStreamAllocation allocates a UDP relay over a TCP or TLS connection and
// relays a few datagrams to a loopback peer and back.
func testStreamAllocation(t *testing.T, srv *Server, conn net.Conn) {
	t.Helper()
	user, pass := srv.Credentials("node-tcp")
	client := startClient(t, turn.NewSTUNConn(conn), conn.RemoteAddr().String(), user, pass)
	relay, err := client.Allocate()
	if err != nil {
		t.Fatalf("Allocate over %s: %v", conn.RemoteAddr().Network(), err)
	}
	// The server's per-allocation state (bandwidth, ChannelBind 403) must
	// find stream allocations under the same 5-tuple pion/turn reports.
	key, ok := keyOf(conn.LocalAddr(), conn.RemoteAddr())
	srv.allocMu.RLock()
	entry := srv.allocs[key]
	srv.allocMu.RUnlock()
	if !ok || !key.tcp || entry == nil || entry.user != "node-tcp" {
		t.Fatalf("no allocation entry for %v (key %+v)", conn.LocalAddr(), key)
	}
	peer := newLoopbackPeer(t)
	toPeer, fromPeer := relayRoundTrips(t, relay, peer, 5)
	waitFor(t, "relay accounting", func() bool {
		st := srv.Stats()
		return st.BytesToPeers == uint64(toPeer) && st.BytesFromPeers == uint64(fromPeer)
	})
}
