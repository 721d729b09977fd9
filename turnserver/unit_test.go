package turnserver

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

func TestPeerPolicy(t *testing.T) {
	def := &peerPolicy{denied: DefaultDeniedPeers()}
	cases := []struct {
		ip      string
		allowed bool
	}{
		{"8.8.8.8", true}, {"2606:4700::1111", true},
		// IANA special-purpose ranges: documentation, benchmarking, protocol assignments.
		{"203.0.113.7", false}, {"192.0.2.1", false}, {"198.51.100.1", false}, {"198.18.0.1", false},
		{"198.19.255.255", false}, {"198.20.0.1", true}, {"192.0.0.8", false}, {"192.88.99.1", false},
		{"2001:db8::1", false}, {"3fff::1", false}, {"100::1", false}, {"2001:2::1", false}, {"fec0::1", false},
		{"64:ff9b:1::1", false}, {"5f00::1", false},
		{"127.0.0.1", false}, {"127.255.0.9", false}, {"10.1.2.3", false}, {"172.16.0.1", false},
		{"172.31.255.255", false}, {"172.32.0.1", true}, {"192.168.7.7", false}, {"100.64.0.1", false},
		{"100.127.255.255", false}, {"100.128.0.1", true}, {"169.254.169.254", false}, {"0.0.0.0", false},
		{"0.1.2.3", false}, {"224.0.0.251", false}, {"239.255.255.250", false}, {"255.255.255.255", false},
		{"::", false}, {"::1", false}, {"fc00::1", false}, {"fd12:3456::1", false}, {"fe80::1", false},
		{"ff02::1", false},
		{"::ffff:127.0.0.1", false}, {"::ffff:10.0.0.1", false}, {"::ffff:169.254.169.254", false},
		{"::ffff:8.8.8.8", true}, {"::ffff:198.18.0.1", false},
		{"64:ff9b::a9fe:a9fe", false}, {"64:ff9b::7f00:1", false}, {"64:ff9b::808:808", true},
		{"2002:c0a8:0101::1", false}, {"2002:808:808::1", true},
		{"fe80::1%eth0", false},
	}
	for _, tc := range cases {
		if got := def.allows(netip.MustParseAddr(tc.ip)); got != tc.allowed {
			t.Errorf("default policy allows(%s) = %v, want %v", tc.ip, got, tc.allowed)
		}
	}
	if def.allows(netip.Addr{}) {
		t.Error("the zero address must be denied")
	}

	private := &peerPolicy{
		allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")},
		denied:  DefaultDeniedPeers(),
	}
	for ip, want := range map[string]bool{
		"127.0.0.1": true, "::ffff:127.0.0.1": true, "127.0.0.2": false, "10.9.9.9": true,
		"192.168.0.1": false, "169.254.169.254": false, "8.8.8.8": true,
	} {
		if got := private.allows(netip.MustParseAddr(ip)); got != want {
			t.Errorf("allow-list policy allows(%s) = %v, want %v", ip, got, want)
		}
	}
	if open := (&peerPolicy{denied: []netip.Prefix{}}); !open.allows(netip.MustParseAddr("127.0.0.1")) {
		t.Error("an empty deny-list must deny nothing")
	}
}

func TestSendAllowedGuardsRelayHost(t *testing.T) {
	cfg, err := Config{
		ListenUDP: "x", PublicIP: netip.MustParseAddr("9.9.9.10"), RelayPortMin: 50000, RelayPortMax: 50100,
		RelayPortAttempts: 1, Realm: "r", Secret: testSecret, CredentialTTL: time.Hour,
		MaxAllocationsPerUser: 1, MaxAllocations: 1,
	}.validate()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: cfg}
	s.policy.Store(&peerPolicy{denied: cfg.DeniedPeers})
	for addr, want := range map[string]bool{
		"9.9.9.10:50000":       true,  // another allocation on this relay
		"9.9.9.10:50100":       true,  // last relay port
		"9.9.9.10:22":          false, // the relay host's SSH
		"9.9.9.10:8080":        false, // the signaling server next to it
		"9.9.9.11:22":          true,  // some other public host
		"10.0.0.1:50000":       false, // denied range
		"[::ffff:9.9.9.10]:22": false,
	} {
		if got := s.sendAllowed(netip.MustParseAddrPort(addr)); got != want {
			t.Errorf("sendAllowed(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestTokenBucket(t *testing.T) {
	start := time.Unix(1000, 0)
	b := newTokenBucket(1000, 1500, start)
	if !b.allow(1500, start) || b.allow(1, start) {
		t.Fatal("a full bucket must pass exactly its depth")
	}
	if b.allow(600, start.Add(500*time.Millisecond)) {
		t.Fatal("half a second at 1000 B/s refills 500 bytes, not 600")
	}
	if !b.allow(500, start.Add(500*time.Millisecond)) {
		t.Fatal("half a second at 1000 B/s must refill 500 bytes")
	}
	// Many tiny steps add up (no refill lost to rounding).
	now := start.Add(500 * time.Millisecond)
	for range 1000 {
		now = now.Add(time.Millisecond / 2)
		b.allow(0, now)
	}
	if !b.allow(500, now) || b.allow(1, now) {
		t.Fatal("1000 half-millisecond steps must refill exactly 500 bytes")
	}
	// A long pause refills to the depth and no further, without overflow.
	later := now.Add(100 * 365 * 24 * time.Hour)
	if !b.allow(1500, later) || b.allow(1, later) {
		t.Fatal("a long pause must refill to exactly the depth")
	}
	// Time going backwards adds nothing.
	if b.allow(1, later.Add(-time.Hour)) {
		t.Fatal("a clock step backwards must not refill")
	}
}

func TestCredentialsFormat(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	user, pass := Credentials(testSecret, "node:with:colons", 90*time.Second, now)
	if user != "1700000090:node:with:colons" {
		t.Fatalf("username %q", user)
	}
	nodeID, err := checkUsername(user, now)
	if err != nil || nodeID != "node:with:colons" {
		t.Fatalf("checkUsername = %q, %v", nodeID, err)
	}
	if _, err := checkUsername(user, now.Add(91*time.Second)); err == nil {
		t.Fatal("expired username accepted")
	}
	for _, bad := range []string{"", "node", ":node", "12:", "x1:node", strings.Repeat("1", 600) + ":n"} {
		if _, err := checkUsername(bad, now); err == nil {
			t.Errorf("checkUsername(%q) accepted", bad)
		}
	}
	// pion/turn's own TURN REST handler (what coturn's use-auth-secret does
	// too) derives the same key from the same secret and username.
	fresh, freshPass := Credentials(testSecret, "node-a", time.Hour, time.Now())
	pionHandler := turn.LongTermTURNRESTAuthHandler(testSecret, nil)
	userID, pionKey, ok := pionHandler(&turn.RequestAttributes{Username: fresh, Realm: "rtcmesh"})
	if !ok || userID != "node-a" {
		t.Fatalf("pion handler rejected our credentials: %q %v", userID, ok)
	}
	if ourKey := longTermKey(fresh, "rtcmesh", freshPass); !bytes.Equal(ourKey, pionKey) {
		t.Fatal("our long-term key differs from pion/turn's")
	}
	if pass == freshPass {
		t.Fatal("different usernames produced the same password")
	}
}

func TestConfigValidation(t *testing.T) {
	valid := func() Config {
		cfg := DefaultConfig()
		cfg.PublicIP = netip.MustParseAddr("198.51.100.10")
		cfg.Secret = testSecret
		return cfg
	}
	if _, err := valid().validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	zero := valid()
	zero.StreamReadBuffer, zero.MaxAcceptedSecrets, zero.MaxVerdicts, zero.MaxListFile = 0, 0, 0, 0
	def := DefaultConfig()
	if got, err := zero.validate(); err != nil || got.StreamReadBuffer != def.StreamReadBuffer ||
		got.MaxAcceptedSecrets != def.MaxAcceptedSecrets || got.MaxVerdicts != def.MaxVerdicts || got.MaxListFile != def.MaxListFile {
		t.Errorf("zero bounds: %v, stream %d, secrets %d, verdicts %d, list file %d; want the defaults %d, %d, %d, %d", err,
			got.StreamReadBuffer, got.MaxAcceptedSecrets, got.MaxVerdicts, got.MaxListFile,
			def.StreamReadBuffer, def.MaxAcceptedSecrets, def.MaxVerdicts, def.MaxListFile)
	}
	cases := map[string]func(*Config){
		"no listener":        func(c *Config) { c.ListenUDP, c.ListenTCP = "", "" },
		"TLS without cert":   func(c *Config) { c.ListenTLS = "127.0.0.1:0" },
		"no public IP":       func(c *Config) { c.PublicIP = netip.Addr{} },
		"unspecified public": func(c *Config) { c.PublicIP = netip.IPv4Unspecified() },
		"mixed families":     func(c *Config) { c.RelayBindIP = netip.MustParseAddr("::1") },
		"IPv4 as PublicIPv6": func(c *Config) { c.PublicIPv6 = netip.MustParseAddr("198.51.100.11") },
		"unspecified IPv6":   func(c *Config) { c.PublicIPv6 = netip.IPv6Unspecified() },
		"IPv6 twice": func(c *Config) {
			c.PublicIP, c.PublicIPv6 = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
		},
		"IPv6 bind alone": func(c *Config) { c.RelayBindIPv6 = netip.MustParseAddr("2001:db8::2") },
		"IPv4 IPv6 bind": func(c *Config) {
			c.PublicIPv6, c.RelayBindIPv6 = netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("10.0.0.1")
		},
		"inverted port range":  func(c *Config) { c.RelayPortMin, c.RelayPortMax = 60000, 50000 },
		"half port range":      func(c *Config) { c.RelayPortMin = 0 },
		"no port attempts":     func(c *Config) { c.RelayPortAttempts = 0 },
		"empty realm":          func(c *Config) { c.Realm = "" },
		"short secret":         func(c *Config) { c.Secret = "short" },
		"no TTL":               func(c *Config) { c.CredentialTTL = 0 },
		"bad allowed prefix":   func(c *Config) { c.AllowedPeers = []netip.Prefix{{}} },
		"bad denied prefix":    func(c *Config) { c.DeniedPeers = []netip.Prefix{{}} },
		"no per-user quota":    func(c *Config) { c.MaxAllocationsPerUser = 0 },
		"no total quota":       func(c *Config) { c.MaxAllocations = -1 },
		"negative bandwidth":   func(c *Config) { c.BandwidthPerAllocation = -1 },
		"tiny burst":           func(c *Config) { c.BandwidthBurst = 100 },
		"huge bandwidth":       func(c *Config) { c.BandwidthPerAllocation = 1 << 40 },
		"tiny stream buffer":   func(c *Config) { c.StreamReadBuffer = MaxDatagramSize - 1 },
		"negative accepted":    func(c *Config) { c.MaxAcceptedSecrets = -1 },
		"too many accepted":    func(c *Config) { c.AcceptedSecrets = slices.Repeat([]string{testSecret}, c.MaxAcceptedSecrets+1) },
		"huge accepted bound":  func(c *Config) { c.MaxAcceptedSecrets = MaxAcceptedSecretsLimit + 1 },
		"negative verdicts":    func(c *Config) { c.MaxVerdicts = -1 },
		"huge verdicts":        func(c *Config) { c.MaxVerdicts = maxTableSize + 1 },
		"negative list file":   func(c *Config) { c.MaxListFile = -1 },
		"huge list file":       func(c *Config) { c.MaxListFile = maxListFileLimit + 1 },
		"no handshake timeout": func(c *Config) { c.ListenTLS, c.TLSCertFile, c.TLSKeyFile, c.TLSHandshakeTimeout = "x", "c", "k", 0 },
	}
	for name, mutate := range cases {
		cfg := valid()
		mutate(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
	cfg := valid()
	cfg.ListenUDP, cfg.ListenTCP = "127.0.0.1:0", ""
	cfg.ListenTLS, cfg.TLSCertFile, cfg.TLSKeyFile = "127.0.0.1:0", "/nonexistent/cert.pem", "/nonexistent/key.pem"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "TLS key pair") {
		t.Errorf("missing TLS files: %v", err)
	}
	cfg = valid()
	cfg.ListenUDP, cfg.ListenTCP = "256.0.0.1:0", ""
	if _, err := New(cfg); err == nil {
		t.Error("bad listen address accepted")
	}
}

func TestRelayPortRange(t *testing.T) {
	cfg := loopbackConfig(t, newTestClock())
	cfg.RelayPortMin, cfg.RelayPortMax = 40000, 40063
	srv := startServer(t, cfg)
	user, pass := srv.Credentials("node-a")
	relay, err := newUDPClient(t, srv, user, pass).Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	if port := relay.LocalAddr().(*net.UDPAddr).Port; port < 40000 || port > 40063 {
		t.Fatalf("relay port %d outside 40000-40063", port)
	}
}

// TestRelayConnRefusesDeniedPeers drives a relay socket directly, as if some
// pion/turn path had let a datagram for a denied peer through. The denied
// target is a loopback socket, so nothing could leave the machine even if the
// guard failed.
func TestRelayConnRefusesDeniedPeers(t *testing.T) {
	cfg := loopbackConfig(t, newTestClock())
	srv := startServer(t, cfg) // default deny-list: loopback peers are denied
	conn, _, err := relayGenerator{s: srv}.AllocatePacketConn(turn.AllocateListenerConfig{Network: "udp4", UserID: "node-a"})
	if err != nil {
		t.Fatalf("AllocatePacketConn: %v", err)
	}
	peer := newLoopbackPeer(t)
	if _, err := conn.WriteTo([]byte("x"), peer.LocalAddr()); err == nil {
		t.Fatal("relay socket sent to a denied peer")
	}
	if st := srv.Stats(); st.PermissionRefusals != 1 || st.PacketsToPeers != 0 {
		t.Fatalf("stats: %+v", st)
	}
	if got := slotsInUse(srv); got != 1 {
		t.Fatalf("relay socket holds %d quota slots, want 1", got)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close() // a second close must not give the slot back twice
	if got := slotsInUse(srv); got != 0 {
		t.Fatalf("quota slots after close: %d, want 0", got)
	}
}

func slotsInUse(srv *Server) int {
	srv.quota.mu.Lock()
	defer srv.quota.mu.Unlock()
	return srv.quota.total
}
