package turnserver

import (
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// ipv6Loopback returns a UDP socket on [::1], or skips the test (fails under
// RTCMESH_REQUIRE_ALL=1) on a machine without IPv6 loopback.
func ipv6Loopback(t *testing.T) net.PacketConn {
	t.Helper()
	conn, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		if os.Getenv("RTCMESH_REQUIRE_ALL") == "1" {
			t.Fatalf("no IPv6 loopback (RTCMESH_REQUIRE_ALL=1): %v", err)
		}
		t.Skipf("no IPv6 loopback on this machine: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func relayedAddr(t *testing.T, resp *stun.Message) netip.AddrPort {
	t.Helper()
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(resp, stun.AttrXORRelayedAddress); err != nil {
		t.Fatalf("Allocate response without XOR-RELAYED-ADDRESS: %v", err)
	}
	ip, _ := netip.AddrFromSlice(relayed.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(relayed.Port))
}

// sendIndication relays payload to peer through r's allocation.
func (r *rawTURN) sendIndication(peer string, payload []byte) {
	r.t.Helper()
	msg, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication), peerAttr(peer),
		stun.RawAttribute{Type: stun.AttrData, Value: payload}, stun.Fingerprint)
	if err != nil {
		r.t.Fatalf("build Send indication: %v", err)
	}
	if _, err := r.conn.WriteTo(msg.Raw, r.server); err != nil {
		r.t.Fatalf("send indication: %v", err)
	}
}

// TestDualStackRelay checks that an IPv4 relay with PublicIPv6 set gives IPv4 and IPv6 relay
// addresses by REQUESTED-ADDRESS-FAMILY to clients on its IPv4 listener, relays over both, and
// answers 443 for a peer of the other family.
func TestDualStackRelay(t *testing.T) {
	peer6 := ipv6Loopback(t)
	cfg := loopbackConfig(t, newTestClock())
	cfg.PublicIPv6 = netip.MustParseAddr("::1")
	cfg.AllowedPeers = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
	srv := startServer(t, cfg)
	peer4 := newLoopbackPeer(t)
	user, pass := srv.Credentials("node-a")

	v4 := newRawTURN(t, srv, user, pass)
	resp := v4.allocate()
	wantSuccess(t, "Allocate without REQUESTED-ADDRESS-FAMILY", resp)
	if a := relayedAddr(t, resp); !a.Addr().Is4() {
		t.Errorf("default relay address %v, want IPv4", a)
	}

	v6 := newRawTURN(t, srv, user, pass)
	v6.challenge()
	resp = v6.authed(stun.MethodAllocate, requestUDPTransport, turn.RequestedAddressFamilyIPv6)
	wantSuccess(t, "Allocate of an IPv6 relay", resp)
	relay6 := relayedAddr(t, resp)
	if relay6.Addr() != netip.MustParseAddr("::1") {
		t.Fatalf("IPv6 relay address %v, want [::1]:<port>", relay6)
	}
	wantSuccess(t, "CreatePermission for an IPv6 peer", v6.authed(stun.MethodCreatePermission, peerAttr(peer6.LocalAddr().String())))
	v6.sendIndication(peer6.LocalAddr().String(), []byte("over IPv6"))
	buf := make([]byte, 64)
	n, from := readWithin(t, peer6, buf)
	if string(buf[:n]) != "over IPv6" || from.(*net.UDPAddr).AddrPort() != relay6 {
		t.Fatalf("IPv6 peer read %q from %v, want the payload from %v", buf[:n], from, relay6)
	}

	resp = v6.authed(stun.MethodCreatePermission, peerAttr(peer4.LocalAddr().String()))
	if code := errorCode(resp); code != stun.CodePeerAddrFamilyMismatch || reasonOf(resp) != "Peer Address Family Mismatch" {
		t.Errorf("CreatePermission for an IPv4 peer on an IPv6 relay answered %v %q, want 443 Peer Address Family Mismatch", code, reasonOf(resp))
	}
	if st := srv.Stats(); st.AllocationsActive != 2 || st.PacketsToPeers != 1 {
		t.Errorf("stats %+v, want 2 allocations and 1 datagram relayed", st)
	}
}

// TestIPv6OnlyRelayAnswers440 checks the 440 answer the other way round: a relay serving IPv6
// only (PublicIP ::1) refuses an Allocate asking for IPv4 relaying.
func TestIPv6OnlyRelayAnswers440(t *testing.T) {
	ipv6Loopback(t)
	cfg := loopbackConfig(t, newTestClock())
	cfg.PublicIP, cfg.RelayBindIP = netip.MustParseAddr("::1"), netip.MustParseAddr("::1")
	srv := startServer(t, cfg)
	user, pass := srv.Credentials("node-a")
	r := newRawTURN(t, srv, user, pass)
	r.challenge()
	resp := r.authed(stun.MethodAllocate, requestUDPTransport, turn.RequestedAddressFamilyIPv4)
	if code := errorCode(resp); code != stun.CodeAddrFamilyNotSupported || reasonOf(resp) != "Address Family not Supported" {
		t.Fatalf("IPv4 Allocate on an IPv6-only relay answered %v %q, want 440 Address Family not Supported", code, reasonOf(resp))
	}
	if err := r.integrity().Check(resp); err != nil {
		t.Errorf("440 not signed with the client's key: %v", err)
	}
	resp = r.authed(stun.MethodAllocate, requestUDPTransport, turn.RequestedAddressFamilyIPv6)
	wantSuccess(t, "IPv6 Allocate on an IPv6-only relay", resp)
	if a := relayedAddr(t, resp); a.Addr() != netip.MustParseAddr("::1") {
		t.Errorf("relay address %v, want [::1]", a)
	}
}
