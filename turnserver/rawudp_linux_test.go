//go:build linux

package turnserver

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestRawUDPSends checks raw sendto on the socket families the relay opens: an IPv4 socket, an
// IPv6 one, and a dual-stack wildcard socket (what "udp" on 0.0.0.0 gives), which must send to
// IPv4 destinations as IPv4-mapped addresses.
func TestRawUDPSends(t *testing.T) {
	peer4 := newLoopbackPeer(t)
	peer6 := ipv6Loopback(t)
	to4 := peer4.LocalAddr().(*net.UDPAddr).AddrPort()
	to6 := peer6.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, c := range []struct {
		network, addr string
		dests         []netip.AddrPort
		refused       []netip.AddrPort // not sendable raw: left to WriteTo
	}{
		{"udp4", "127.0.0.1:0", []netip.AddrPort{to4}, []netip.AddrPort{to6}},
		{"udp6", "[::1]:0", []netip.AddrPort{to6}, nil},
		{"udp", ":0", []netip.AddrPort{to4, to6}, nil},
	} {
		conn, err := net.ListenPacket(c.network, c.addr)
		if err != nil {
			t.Fatalf("listen %s %s: %v", c.network, c.addr, err)
		}
		defer conn.Close()
		raw := newRawUDP(conn, 1)
		if raw == nil {
			t.Fatalf("%s %s: no raw sender", c.network, c.addr)
		}
		for _, dest := range c.dests {
			n, ok, err := raw.writeTo([]byte("raw"), dest)
			if !ok || err != nil || n != 3 {
				t.Fatalf("%s %s: writeTo %v = %d, %v, %v", c.network, c.addr, dest, n, ok, err)
			}
			peer := peer4
			if dest.Addr().Is6() {
				peer = peer6
			}
			buf := make([]byte, 16)
			n, from := readWithin(t, peer, buf)
			if string(buf[:n]) != "raw" {
				t.Fatalf("%s %s: peer %v read %q", c.network, c.addr, dest, buf[:n])
			}
			// And back: the raw read names the peer as ReadFrom would.
			if _, err := peer.WriteTo([]byte("back"), from); err != nil {
				t.Fatal(err)
			}
			n, got, ok, err := raw.readFrom(buf)
			if !ok || err != nil || string(buf[:n]) != "back" || netip.AddrPortFrom(got.AddrPort().Addr().Unmap(), got.AddrPort().Port()) != dest {
				t.Fatalf("%s %s: readFrom = %q from %v (%v, %v), want \"back\" from %v", c.network, c.addr, buf[:n], got, ok, err, dest)
			}
		}
		for _, dest := range c.refused {
			if _, ok, _ := raw.writeTo([]byte("raw"), dest); ok {
				t.Errorf("%s %s: raw send to %v claimed, want it left to WriteTo", c.network, c.addr, dest)
			}
		}
		if _, ok, _ := raw.writeTo(nil, to4); ok {
			t.Errorf("%s %s: an empty datagram was sent raw", c.network, c.addr)
		}
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raw := newRawUDP(conn, 1)
	conn.Close()
	if _, ok, err := raw.writeTo([]byte("x"), to4); !ok || err == nil {
		t.Errorf("raw send on a closed socket: ok %v, err %v; want an error", ok, err)
	}
	if _, _, ok, err := raw.readFrom(make([]byte, 8)); !ok || err == nil {
		t.Errorf("raw read on a closed socket: ok %v, err %v; want an error", ok, err)
	}
}

// TestRawUDPBatchedReads queues datagrams from two peers and reads them through batches smaller
// than the queue: each comes out once, in order, from the right peer; a peer heard again is
// named by the same address (the cache), and neither reading nor sending allocates.
func TestRawUDPBatchedReads(t *testing.T) {
	conn := newLoopbackPeer(t)
	raw := newRawUDP(conn, 4)
	a, b := newLoopbackPeer(t), newLoopbackPeer(t)
	for addrSlot(b.LocalAddr().(*net.UDPAddr).AddrPort()) == addrSlot(a.LocalAddr().(*net.UDPAddr).AddrPort()) {
		b = newLoopbackPeer(t) // the cache is direct-mapped: peers in one slot evict each other
	}
	order := []net.PacketConn{a, b, a, a, b, a, b}
	for i, from := range order {
		if _, err := from.WriteTo([]byte{byte(i)}, conn.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, MaxDatagramSize)
	seen := map[net.PacketConn]*net.UDPAddr{}
	for i, from := range order {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, addr, ok, err := raw.readFrom(buf)
		if !ok || err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("read %d: %d bytes % x (%v, %v), want datagram %d", i, n, buf[:n], ok, err, i)
		}
		if want, got := from.LocalAddr().(*net.UDPAddr).AddrPort(), addr.AddrPort(); netip.AddrPortFrom(got.Addr().Unmap(), got.Port()) != want {
			t.Errorf("read %d: from %v, want %v", i, addr, want)
		}
		if prev := seen[from]; prev != nil && prev != addr {
			t.Errorf("read %d: peer %v named by a new address, want the cached one", i, addr)
		}
		seen[from] = addr
	}
	// Both ends raw: a's socket sends to conn's, which reads it.
	rawA := newRawUDP(a, 1)
	to, payload := conn.LocalAddr().(*net.UDPAddr).AddrPort(), []byte("x")
	if allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := rawA.writeTo(payload, to); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := raw.readFrom(buf); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("%.1f allocations per raw send and read, want none", allocs)
	}
}
