package main

import (
	"context"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/turnserver"
)

func TestTurnAllocatesRelaysAndStops(t *testing.T) {
	c, err := parseTurnCommand([]string{
		"--listen", "127.0.0.1:0", "--listen-tcp", "off", "--relay-ports", "0",
		"--secret", testTURNSecret, "--allow-peers", "127.0.0.1/32", "--max-allocations-per-user", "2",
	}, io.Discard, noEnv)
	if err != nil {
		t.Fatalf("parseTurnCommand: %v", err)
	}
	cfg := c.Relay
	if cfg.ListenTCP != "" || cfg.PublicIP != netip.MustParseAddr("127.0.0.1") || cfg.RelayBindIP != cfg.PublicIP {
		t.Fatalf("relay config %+v: want UDP only, relaying from and advertising 127.0.0.1", cfg)
	}
	cmd := startCommand(t, func(ctx context.Context, log zerolog.Logger, ready func(turnAddrs)) error {
		return serveTurnHTTP(ctx, cfg, "", log, ready)
	})
	if cmd.addrs.UDP == nil || cmd.addrs.TCP != nil || cmd.addrs.TLS != nil {
		t.Fatalf("relay addresses %+v, want UDP only", cmd.addrs)
	}
	if want := "turn:" + cmd.addrs.UDP.String() + "?transport=udp"; !slices.Contains(cmd.addrs.URLs, want) {
		t.Errorf("relay URLs %q do not include %q", cmd.addrs.URLs, want)
	}

	user, pass := turnserver.Credentials(testTURNSecret, "node-a", time.Hour, time.Now())
	relayConn, err := newTURNClient(t, cmd.addrs.UDP.String(), user, pass).Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	defer relayConn.Close()
	if a, ok := relayConn.LocalAddr().(*net.UDPAddr); !ok || !a.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("relayed address %v, want 127.0.0.1:<port>", relayConn.LocalAddr())
	}

	// --allow-peers lets the relay reach a loopback peer, which the deny-list refuses by
	// default.
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := relayConn.WriteTo([]byte("through the relay"), peer.LocalAddr()); err != nil {
		t.Fatalf("relay WriteTo the allowed peer: %v", err)
	}
	buf := make([]byte, 64)
	_ = peer.SetReadDeadline(time.Now().Add(testWait))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "through the relay" || from.String() != relayConn.LocalAddr().String() {
		t.Fatalf("peer read %q from %v (%v), want the payload from the relayed address %v", buf[:n], from, err, relayConn.LocalAddr())
	}

	if err := cmd.stop(t); err != nil {
		t.Fatalf("serveTurn returned %v after cancel, want nil", err)
	}
	// The relay is gone: its listener port is free again.
	conn, err := net.ListenPacket("udp4", cmd.addrs.UDP.String())
	if err != nil {
		t.Fatalf("the relay's UDP port is still bound after shutdown: %v", err)
	}
	conn.Close()
}

// TestTurnDenyPeersExtendsDefault checks that --deny-peers adds to the built-in deny-list
// rather than replacing it.
func TestTurnDenyPeersExtendsDefault(t *testing.T) {
	c, err := parseTurnCommand([]string{
		"--listen", "127.0.0.1:0", "--listen-tcp", "off", "--relay-ports", "0",
		"--secret", testTURNSecret, "--deny-peers", "9.9.9.0/24,1.2.3.4",
	}, io.Discard, noEnv)
	if err != nil {
		t.Fatalf("parseTurnCommand: %v", err)
	}
	for _, p := range []string{"9.9.9.0/24", "1.2.3.4/32", "127.0.0.0/8", "198.18.0.0/15"} {
		if !slices.Contains(c.Relay.DeniedPeers, netip.MustParsePrefix(p)) {
			t.Errorf("DeniedPeers %v lacks %s", c.Relay.DeniedPeers, p)
		}
	}
	cmd := startCommand(t, func(ctx context.Context, log zerolog.Logger, ready func(turnAddrs)) error {
		return serveTurnHTTP(ctx, c.Relay, "", log, ready)
	})
	defer cmd.stop(t)
	user, pass := turnserver.Credentials(testTURNSecret, "node-a", time.Hour, time.Now())
	client := newTURNClient(t, cmd.addrs.UDP.String(), user, pass)
	if _, err := client.Allocate(); err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	for peer, allowed := range map[string]bool{"8.8.8.8:9": true, "9.9.9.9:9": false, "1.2.3.4:9": false, "198.18.0.1:9": false} {
		err := client.CreatePermission(net.UDPAddrFromAddrPort(netip.MustParseAddrPort(peer)))
		if (err == nil) != allowed {
			t.Errorf("CreatePermission(%s): %v, want allowed=%v", peer, err, allowed)
		}
	}
}
