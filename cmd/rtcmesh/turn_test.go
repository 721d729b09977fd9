package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v4"
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
		return serveTurnHTTP(ctx, c, nil, log, ready)
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
		return serveTurnHTTP(ctx, c, nil, log, ready)
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

// TestTurnSIGHUPReloads runs `rtcmesh turn` as a process with its secrets and allowed peers in
// files and runs the SIGHUP rotation script against it (checkSIGHUPRotation).
func TestTurnSIGHUPReloads(t *testing.T) {
	if testing.Short() {
		t.Skip("separate processes skipped in -short mode")
	}
	secrets, allow := rotationFiles(t, "# the secret signaling servers mint with\n")
	p := startProcess(t, "stderr", "turn", "--listen", "127.0.0.1:0", "--listen-tcp", "off", "--relay-ports", "0",
		"--secrets-file", secrets, "--allow-peers-file", allow)
	server := p.await("relay listening", func(m map[string]any) bool { return m["message"] == "TURN relay listening" })["udp"].(string)
	checkSIGHUPRotation(t, p, server, secrets, allow)
}

// The secrets the SIGHUP rotation script rotates from and to.
const rotationOldSecret, rotationNewSecret = "sighup-old-secret-0123456789", "sighup-new-secret-9876543210"

// rotationFiles writes a secrets file (rotationOldSecret after header) and an allowed-peers
// file (the loopback peer the script relays to) for a relay under checkSIGHUPRotation.
func rotationFiles(t *testing.T, header string) (secrets, allow string) {
	t.Helper()
	dir := t.TempDir()
	secrets, allow = filepath.Join(dir, "secrets"), filepath.Join(dir, "allow")
	writeRotationFile(t, secrets, header+rotationOldSecret+"\n")
	writeRotationFile(t, allow, "127.0.0.1 # the test's peer\n")
	return secrets, allow
}

func writeRotationFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkSIGHUPRotation drives a process whose TURN relay (UDP address server) reads the files
// of rotationFiles: it rotates the secret and shrinks the allowed peers with SIGHUP, and checks
// that the allocation made under the old secret keeps working while a new one under it is
// refused, that a bad file keeps the previous configuration, and that the process then still
// stops cleanly.
func checkSIGHUPRotation(t *testing.T, p *process, server, secrets, allow string) {
	t.Helper()
	peer := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	hup := func() {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	reloaded := func(m map[string]any) bool { return m["message"] == "turnserver: secrets and peer lists reloaded" }

	oldUser, oldPass := turnserver.Credentials(rotationOldSecret, "node-old", time.Hour, time.Now())
	oldClient := newTURNClient(t, server, oldUser, oldPass)
	if _, err := oldClient.Allocate(); err != nil {
		t.Fatalf("Allocate under the old secret: %v", err)
	}

	writeRotationFile(t, secrets, rotationNewSecret+"\n")
	hup()
	if m := p.await("reload", reloaded); m["secrets_added"] != 1.0 || m["secrets_removed"] != 1.0 || m["minting_secret_changed"] != true {
		t.Errorf("reload logged %v, want one secret added and one removed", m)
	}
	if err := oldClient.CreatePermission(peer); err != nil {
		t.Errorf("CreatePermission on the allocation made under the removed secret: %v", err)
	}
	if _, err := newTURNClient(t, server, oldUser, oldPass).Allocate(); turnCode(err) != 401 {
		t.Errorf("new Allocate under the removed secret: %v, want 401", err)
	}
	newUser, newPass := turnserver.Credentials(rotationNewSecret, "node-new", time.Hour, time.Now())
	newClient := newTURNClient(t, server, newUser, newPass)
	if _, err := newClient.Allocate(); err != nil {
		t.Fatalf("Allocate under the new secret: %v", err)
	}

	writeRotationFile(t, secrets, "too short\n")
	hup()
	p.await("refused reload", func(m map[string]any) bool {
		return m["message"] == "turnserver: reload failed, the previous secrets and peer lists stay" &&
			strings.Contains(fmt.Sprint(m["error"]), "line 1")
	})
	if _, err := newTURNClient(t, server, newUser, newPass).Allocate(); err != nil {
		t.Fatalf("Allocate under the new secret after a refused reload: %v", err)
	}

	writeRotationFile(t, secrets, rotationNewSecret+"\n")
	writeRotationFile(t, allow, "# nobody\n")
	hup()
	if m := p.await("reload", reloaded); fmt.Sprint(m["allowed_removed"]) != "[127.0.0.1/32]" {
		t.Errorf("reload logged %v, want 127.0.0.1/32 removed from the allowed peers", m)
	}
	if err := newClient.CreatePermission(peer); turnCode(err) != 403 {
		t.Errorf("CreatePermission to a peer no longer allowed: %v, want 403", err)
	}
	p.stop() // exit code 0: SIGHUP did not end it
}

// turnCode extracts the STUN error code from a pion/turn client error, 0 if there is none.
func turnCode(err error) int {
	var ptr *stun.TurnError
	if errors.As(err, &ptr) {
		return int(ptr.ErrorCodeAttr.Code)
	}
	var val stun.TurnError
	if errors.As(err, &val) {
		return int(val.ErrorCodeAttr.Code)
	}
	return 0
}

// TestTurnSecretsAndIPv6Flags checks how the flags reach the relay's configuration: --secret
// repeated (the first mints) plus the secrets file, --public-ipv6, and the embedded relay's
// --turn-public-ipv6; and that mistakes name the flag.
func TestTurnSecretsAndIPv6Flags(t *testing.T) {
	const second, fromFile = "second-secret-0123456789", "file-secret-0123456789"
	file := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(file, []byte(fromFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deny := filepath.Join(t.TempDir(), "deny")
	if err := os.WriteFile(deny, []byte("9.9.9.0/24 # a range of ours\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseTurnCommand([]string{"--listen", "127.0.0.1:0", "--secret", testTURNSecret, "--secret", second,
		"--secrets-file", file, "--public-ipv6", "::1", "--deny-peers", "1.2.3.4", "--deny-peers-file", deny}, io.Discard, noEnv)
	if err != nil {
		t.Fatalf("parseTurnCommand: %v", err)
	}
	if c.Relay.Secret != testTURNSecret || !slices.Equal(c.Relay.AcceptedSecrets, []string{second, fromFile}) ||
		c.Relay.PublicIPv6 != netip.MustParseAddr("::1") {
		t.Errorf("relay config: Secret, AcceptedSecrets %q, PublicIPv6 %v", c.Relay.AcceptedSecrets, c.Relay.PublicIPv6)
	}
	for _, p := range []string{"9.9.9.0/24", "1.2.3.4/32", "127.0.0.0/8", "198.18.0.0/15"} {
		if !slices.Contains(c.Relay.DeniedPeers, netip.MustParsePrefix(p)) {
			t.Errorf("DeniedPeers %v lacks %s (the file and the flag add to the built-in list)", c.Relay.DeniedPeers, p)
		}
	}
	for args, want := range map[string]string{
		"--secret " + testTURNSecret + " --public-ipv6 127.0.0.2":     "--public-ipv6",
		"--secret " + testTURNSecret + " --secret short":              "--secret",
		"--secret " + testTURNSecret + " --secrets-file /nonexistent": "/nonexistent",
	} {
		_, err := parseTurnCommand(append([]string{"--listen", "127.0.0.1:0"}, strings.Fields(args)...), io.Discard, noEnv)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", args, err, want)
		}
	}
	cfg, _, err := parseSignalFlags([]string{"--turn-listen", "127.0.0.1:0", "--turn-secret", testTURNSecret, "--turn-public-ipv6", "::1"}, io.Discard, noEnv)
	if err != nil {
		t.Fatalf("parseSignalFlags: %v", err)
	}
	if cfg.TURN == nil || cfg.TURN.PublicIPv6 != netip.MustParseAddr("::1") {
		t.Errorf("embedded relay config %+v, want PublicIPv6 ::1", cfg.TURN)
	}
}

// TestSignalSIGHUPReloadsTURN runs the SIGHUP rotation script (checkSIGHUPRotation) against
// the relay embedded in `rtcmesh signal`, its secrets and allowed peers in files.
func TestSignalSIGHUPReloadsTURN(t *testing.T) {
	if testing.Short() {
		t.Skip("separate processes skipped in -short mode")
	}
	secrets, allow := rotationFiles(t, "")
	p := startProcess(t, "stderr", "signal", "--listen", "127.0.0.1:0", "--web=false",
		"--turn-listen", "127.0.0.1:0", "--turn-relay-ports", "0",
		"--turn-secrets-file", secrets, "--turn-allow-peers-file", allow)
	server := p.await("signaling server listening", func(m map[string]any) bool {
		return m["message"] == "signaling server listening"
	})["turn_udp"].(string)
	checkSIGHUPRotation(t, p, server, secrets, allow)
}
