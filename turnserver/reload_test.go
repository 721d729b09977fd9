package turnserver

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"github.com/rs/zerolog"
)

const newTestSecret = "the-next-shared-secret-987654"

// newRawTURNOverTCP is a rawTURN speaking over a TCP connection: pion/turn's STUNConn frames
// the stream, so the server's stream framer and its request inspection are exercised.
func newRawTURNOverTCP(t testing.TB, srv *Server, username, password string) *rawTURN {
	t.Helper()
	conn, err := net.Dial("tcp", srv.TCPAddr().String())
	if err != nil {
		t.Fatalf("dial TCP: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawTURN{t: t, conn: turn.NewSTUNConn(conn), server: srv.TCPAddr(), username: username, password: password}
}

func lifetime(d time.Duration) stun.Setter {
	s := uint32(d / time.Second)
	return stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}}
}

func wantSuccess(t *testing.T, what string, resp *stun.Message) {
	t.Helper()
	if resp.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("%s answered %v code %v, want success", what, resp.Type, errorCode(resp))
	}
}

// TestSecretRotation rotates the shared secret on a running relay in the usual three steps
// (accept the new one, mint with it, drop the old one) and checks that allocations made under
// the old secret, over UDP and over TCP, keep refreshing and creating permissions after it is
// removed, while a new allocation under it is refused with 401.
func TestSecretRotation(t *testing.T) {
	cfg := loopbackConfig(t, newTestClock())
	cfg.AllowedPeers = loopbackOnly
	srv := startServer(t, cfg)
	peer := newLoopbackPeer(t)

	oldUser, oldPass := srv.Credentials("node-old")
	oldUDP := newRawTURN(t, srv, oldUser, oldPass)
	wantSuccess(t, "Allocate under the old secret over UDP", oldUDP.allocate())
	oldTCP := newRawTURNOverTCP(t, srv, oldUser, oldPass)
	wantSuccess(t, "Allocate under the old secret over TCP", oldTCP.allocate())

	// Step 1: accept the new secret as well; credentials under either allocate.
	if _, err := srv.Reload(Reloadable{Secret: testSecret, AcceptedSecrets: []string{newTestSecret}, AllowedPeers: loopbackOnly}); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	newUser, newPass := Credentials(newTestSecret, "node-new", time.Hour, cfg.Now())
	wantSuccess(t, "Allocate under an accepted secret", newRawTURN(t, srv, newUser, newPass).allocate())
	if u, p := srv.Credentials("node-x"); p != restPassword(testSecret, u) {
		t.Fatal("Credentials no longer mint with Secret while the new secret is only accepted")
	}

	// Steps 2 and 3 at once: mint with the new secret and drop the old one.
	change, err := srv.Reload(Reloadable{Secret: newTestSecret, AllowedPeers: loopbackOnly})
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if !change.MintChanged || change.SecretsRemoved != 1 || change.SecretsAdded != 0 {
		t.Errorf("change %+v, want the minting secret changed and one secret removed", change)
	}
	if u, p := srv.Credentials("node-x"); p != restPassword(newTestSecret, u) {
		t.Fatal("Credentials do not mint with the new Secret")
	}

	failuresBefore := srv.Stats().AuthFailures
	for name, r := range map[string]*rawTURN{"UDP": oldUDP, "TCP": oldTCP} {
		wantSuccess(t, "Refresh of an old-secret allocation over "+name, r.authed(stun.MethodRefresh, lifetime(10*time.Minute)))
		wantSuccess(t, "CreatePermission of an old-secret allocation over "+name,
			r.authed(stun.MethodCreatePermission, peerAttr(peer.LocalAddr().String())))
	}
	if got := srv.Stats().RetiredSecretAuths; got != 4 {
		t.Errorf("RetiredSecretAuths = %d, want 4", got)
	}

	for name, fresh := range map[string]*rawTURN{
		"UDP": newRawTURN(t, srv, oldUser, oldPass), "TCP": newRawTURNOverTCP(t, srv, oldUser, oldPass),
	} {
		resp := fresh.allocate()
		if code := errorCode(resp); code != stun.CodeUnauthorized {
			t.Errorf("new Allocate under the removed secret over %s answered %v code %v, want 401", name, resp.Type, code)
		}
	}
	if got := srv.Stats().AuthFailures - failuresBefore; got != 2 {
		t.Errorf("AuthFailures grew by %d, want 2", got)
	}
	// The old secret is not accepted on an allocation of someone else's either: a fresh
	// credential pair under the removed secret, on the 5-tuple of an allocation made under it.
	otherUser, otherPass := Credentials(testSecret, "node-other", time.Hour, cfg.Now())
	oldUDP.username, oldUDP.password = otherUser, otherPass
	if code := errorCode(oldUDP.authed(stun.MethodRefresh, lifetime(time.Minute))); code != stun.CodeUnauthorized {
		t.Errorf("Refresh signed with other credentials under the removed secret answered %v, want 401", code)
	}
	wantSuccess(t, "Allocate under the new secret", newRawTURN(t, srv, newUser, newPass).allocate())
	if st := srv.Stats(); st.Reloads != 2 || st.AllocationsActive != 4 {
		t.Errorf("stats %+v, want 2 reloads and 4 allocations", st)
	}
}

// TestReloadRefusesBadConfig checks that an invalid reload changes nothing.
func TestReloadRefusesBadConfig(t *testing.T) {
	cfg := loopbackConfig(t, newTestClock())
	srv := startServer(t, cfg)
	for name, r := range map[string]Reloadable{
		"short secret":          {Secret: "short"},
		"short accepted secret": {Secret: newTestSecret, AcceptedSecrets: []string{"x"}},
		"invalid prefix":        {Secret: newTestSecret, DeniedPeers: []netip.Prefix{{}}},
		"too many secrets":      {Secret: newTestSecret, AcceptedSecrets: slices.Repeat([]string{newTestSecret}, cfg.MaxAcceptedSecrets+1)},
	} {
		if _, err := srv.Reload(r); err == nil || !strings.Contains(err.Error(), "previous secrets and peer lists stay") {
			t.Errorf("%s: Reload returned %v, want a refusal", name, err)
		}
	}
	if st := srv.Stats(); st.ReloadFailures != 4 || st.Reloads != 0 {
		t.Errorf("stats %+v, want 4 reload failures and no reload", st)
	}
	user, pass := srv.Credentials("node-a")
	if p := restPassword(testSecret, user); p != pass {
		t.Fatal("a refused reload changed the minting secret")
	}
	wantSuccess(t, "Allocate after refused reloads", newRawTURN(t, srv, user, pass).allocate())
}

// TestReloadPeerLists checks that reloaded peer lists apply at once, to existing permissions
// too: a peer allowed at start and no longer allowed after the reload gets nothing more, and
// a range added to the deny-list is refused.
func TestReloadPeerLists(t *testing.T) {
	cfg := loopbackConfig(t, newTestClock())
	cfg.AllowedPeers = loopbackOnly
	srv := startServer(t, cfg)
	peer := newLoopbackPeer(t)
	user, pass := srv.Credentials("node-a")
	client := newUDPClient(t, srv, user, pass)
	relay, err := client.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	if _, err := relay.WriteTo([]byte("before"), peer.LocalAddr()); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	buf := make([]byte, 64)
	if n, _ := readWithin(t, peer, buf); string(buf[:n]) != "before" {
		t.Fatalf("peer read %q", buf[:n])
	}

	change, err := srv.Reload(Reloadable{Secret: testSecret, DeniedPeers: append(DefaultDeniedPeers(), netip.MustParsePrefix("9.9.9.0/24"))})
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if !slices.Equal(change.AllowedRemoved, loopbackOnly) || !slices.Equal(change.DeniedAdded, []netip.Prefix{netip.MustParsePrefix("9.9.9.0/24")}) {
		t.Errorf("change %+v", change)
	}
	refusals := srv.Stats().PermissionRefusals
	// The permission exists, so pion/turn's client sends at once; the relay socket refuses.
	if _, err := relay.WriteTo([]byte("after"), peer.LocalAddr()); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	waitFor(t, "the relay socket to refuse the no longer allowed peer", func() bool {
		return srv.Stats().PermissionRefusals > refusals
	})
	_ = peer.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _, err := peer.ReadFrom(buf); err == nil {
		t.Fatalf("peer received %q after it was removed from the allowed peers", buf[:n])
	}
	for _, p := range []string{"9.9.9.9:9", "127.0.0.1:9"} {
		if err := client.CreatePermission(net.UDPAddrFromAddrPort(netip.MustParseAddrPort(p))); turnCode(err) != int(stun.CodeForbidden) {
			t.Errorf("CreatePermission(%s) after the reload: %v, want 403", p, err)
		}
	}
}

func TestStreamFramer(t *testing.T) {
	stunMsg, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewSoftware("framer"))
	if err != nil {
		t.Fatal(err)
	}
	channelData := []byte{0x40, 0x00, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0} // padded to 4
	// Channel 0x5f4a: RFC 8656 narrowed channels to 0x4000-0x4fff, but RFC 5766 clients
	// (coturn's turnutils_uclient) still use up to 0x7fff, and pion/turn accepts them.
	highChannel := []byte{0x5f, 0x4a, 0x00, 0x03, 'h', 'i', '!', 0}
	stream := slices.Concat(stunMsg.Raw, channelData, highChannel, stunMsg.Raw)
	for _, chunk := range []int{1, 3, 7, len(stream)} {
		src := stream
		read := func(p []byte) (int, error) {
			if len(src) == 0 {
				return 0, net.ErrClosed
			}
			n := copy(p, src[:min(chunk, len(src))])
			src = src[n:]
			return n, nil
		}
		f := streamFramer{size: DefaultConfig().StreamReadBuffer}
		var inspected int
		p := make([]byte, 1600)
		var frames [][]byte
		for {
			n, err := f.read(read, p, func([]byte) bool { inspected++; return false })
			if err != nil {
				break
			}
			frames = append(frames, slices.Clone(p[:n]))
		}
		want := [][]byte{stunMsg.Raw, channelData, highChannel, stunMsg.Raw}
		if len(frames) != len(want) || inspected != 4 {
			t.Fatalf("chunks of %d: %d frames, %d inspected, want 4 and 4", chunk, len(frames), inspected)
		}
		for i := range want {
			if !slices.Equal(frames[i], want[i]) {
				t.Errorf("chunks of %d: frame %d is % x, want % x", chunk, i, frames[i], want[i])
			}
		}
	}
	f := streamFramer{size: DefaultConfig().StreamReadBuffer}
	big := []byte{0x00, 0x01, 0x10, 0x00} // a STUN header claiming 4,096 bytes
	if _, err := f.read(func(p []byte) (int, error) { return copy(p, big), nil }, make([]byte, 1600), func([]byte) bool { return false }); err == nil {
		t.Error("a frame larger than the caller's buffer was not refused")
	}
	// The read buffer is Config.StreamReadBuffer: a frame that fits the caller's buffer but not
	// the read buffer is refused too.
	f = streamFramer{size: 16}
	if _, err := f.read(func(p []byte) (int, error) { return copy(p, stunMsg.Raw), nil }, make([]byte, 1600), func([]byte) bool { return false }); !errors.Is(err, errFrameTooLarge) {
		t.Errorf("a %d-byte frame through a 16-byte read buffer: %v, want errFrameTooLarge", len(stunMsg.Raw), err)
	}
}

// TestStrangerDatagramsDoNotFloodTheLog sprays a relay port with datagrams from a peer that has
// no permission: pion/turn logs each at info level, and the server's sampling keeps that to a
// burst.
func TestStrangerDatagramsDoNotFloodTheLog(t *testing.T) {
	cfg := loopbackConfig(t, newTestClock())
	var lines lineCounter
	cfg.Logger = zerolog.New(&lines).Level(zerolog.InfoLevel)
	srv := startServer(t, cfg)
	user, pass := srv.Credentials("node-a")
	relay, err := newUDPClient(t, srv, user, pass).Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	stranger := newLoopbackPeer(t)
	const sprayed = 500
	for range sprayed {
		if _, err := stranger.WriteTo([]byte("x"), relay.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	// The relay reads them in order; a last datagram from a permitted source is not needed:
	// wait until the log stops growing for a moment.
	var last int
	waitFor(t, "the relay to read the sprayed datagrams", func() bool {
		n := lines.count("No Permission or Channel exists")
		settled := n == last && n > 0
		last = n
		time.Sleep(50 * time.Millisecond)
		return settled
	})
	if last > 3*refusalLogBurst {
		t.Errorf("%d datagrams from a stranger logged %d lines, want at most %d", sprayed, last, 3*refusalLogBurst)
	}
}

// lineCounter is a log writer that counts lines containing a text.
type lineCounter struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *lineCounter) count(text string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, text) {
			n++
		}
	}
	return n
}

// TestVerdictsBounded feeds the request inspection correctly signed requests from more client
// addresses than the verdict table holds, none of which pion/turn goes on to authenticate (as
// with a stale nonce): the table stays within Config.MaxVerdicts.
func TestVerdictsBounded(t *testing.T) {
	cfg := loopbackConfig(t, newTestClock())
	cfg.MaxVerdicts = 100
	maxVerdicts := cfg.MaxVerdicts
	srv := startServer(t, cfg)
	user, pass := srv.Credentials("node-a")
	msg, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest),
		stun.NewUsername(user), stun.NewRealm(cfg.Realm), stun.NewNonce("stale"),
		stun.NewLongTermIntegrity(user, cfg.Realm, pass), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	local := srv.UDPAddr()
	for port := 1; port <= maxVerdicts+1000; port++ {
		srv.inspectRequest(msg.Raw, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: port}, local)
	}
	srv.allocMu.RLock()
	n := len(srv.verdicts)
	srv.allocMu.RUnlock()
	if n != maxVerdicts {
		t.Errorf("%d verdicts recorded, want the bound %d", n, maxVerdicts)
	}
	// A wrongly signed request records nothing, and clears its client's verdict.
	bad, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest),
		stun.NewUsername(user), stun.NewRealm(cfg.Realm), stun.NewNonce("stale"),
		stun.NewLongTermIntegrity(user, cfg.Realm, "wrong"), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	last := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: maxVerdicts + 1000}
	srv.inspectRequest(bad.Raw, last, local)
	if _, ok := srv.verdictFor(last, user); ok {
		t.Error("a wrongly signed request left a verdict")
	}
}
