package turnserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"github.com/rs/zerolog"
)

const testSecret = "test-shared-secret-0123456789"

// waitDeadline is generous: the test machines are shared and slow.
const waitDeadline = 15 * time.Second

// testClock is an injected clock that only moves when the test says so.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Unix(1_800_000_000, 0)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// loopbackConfig is a server on 127.0.0.1 with ephemeral ports and the
// default deny-list (which denies loopback peers).
func loopbackConfig(t testing.TB, clock *testClock) Config {
	cfg := DefaultConfig()
	cfg.ListenUDP = "127.0.0.1:0"
	cfg.ListenTCP = "127.0.0.1:0"
	cfg.PublicIP = netip.MustParseAddr("127.0.0.1")
	cfg.RelayBindIP = netip.MustParseAddr("127.0.0.1")
	cfg.RelayPortMin, cfg.RelayPortMax = 0, 0
	cfg.Secret = testSecret
	cfg.BandwidthPerAllocation = 0
	cfg.Now = clock.Now
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	return cfg
}

func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

var loopbackOnly = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// newUDPClient is a pion/turn client talking to srv over UDP from 127.0.0.1.
func newUDPClient(t testing.TB, srv *Server, username, password string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return startClient(t, conn, srv.UDPAddr().String(), username, password)
}

func startClient(t testing.TB, conn net.PacketConn, serverAddr, username, password string) *turn.Client {
	t.Helper()
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: serverAddr,
		TURNServerAddr: serverAddr,
		Conn:           conn,
		Username:       username,
		Password:       password,
		LoggerFactory:  pionLoggerFactory{log: zerolog.Nop()},
	})
	if err != nil {
		t.Fatalf("turn.NewClient: %v", err)
	}
	if err := client.Listen(); err != nil {
		t.Fatalf("client.Listen: %v", err)
	}
	t.Cleanup(client.Close)
	return client
}

// turnCode extracts the STUN error code from a pion/turn client error, 0 if
// there is none.
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

// waitFor polls cond until it holds or the generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newLoopbackPeer is a plain UDP socket on 127.0.0.1 standing for a remote peer.
func newLoopbackPeer(t testing.TB) net.PacketConn {
	t.Helper()
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen peer: %v", err)
	}
	t.Cleanup(func() { _ = peer.Close() })
	return peer
}

// readWithin reads one datagram or fails the test after the deadline.
func readWithin(t testing.TB, conn net.PacketConn, buf []byte) (int, net.Addr) {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(waitDeadline)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	n, from, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("read on %v: %v", conn.LocalAddr(), err)
	}
	return n, from
}

// rawTURN speaks TURN with hand-built messages, to see exact responses
// (pion's client hides some) and to send requests pion's client never would.
type rawTURN struct {
	t                         testing.TB
	conn                      net.PacketConn
	server                    net.Addr
	username, password, realm string
	nonce                     stun.Nonce
}

func newRawTURN(t testing.TB, srv *Server, username, password string) *rawTURN {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawTURN{t: t, conn: conn, server: srv.UDPAddr(), username: username, password: password}
}

// roundTrip sends a request and returns the response with its transaction
// ID, retransmitting as STUN over UDP does.
func (r *rawTURN) roundTrip(setters ...stun.Setter) *stun.Message {
	r.t.Helper()
	req, err := stun.Build(append([]stun.Setter{stun.TransactionID}, setters...)...)
	if err != nil {
		r.t.Fatalf("build request: %v", err)
	}
	buf := make([]byte, 2048)
	for attempt := 0; attempt < 10; attempt++ {
		if _, err := r.conn.WriteTo(req.Raw, r.server); err != nil {
			r.t.Fatalf("send: %v", err)
		}
		_ = r.conn.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, _, err := r.conn.ReadFrom(buf)
			if err != nil {
				break // retransmit
			}
			resp := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if err := resp.Decode(); err != nil || resp.TransactionID != req.TransactionID {
				continue
			}
			return resp
		}
	}
	r.t.Fatalf("no response to %v", req.Type)
	return nil
}

func (r *rawTURN) integrity() stun.MessageIntegrity {
	return stun.NewLongTermIntegrity(r.username, r.realm, r.password)
}

// authed sends an authenticated request of method with attrs.
func (r *rawTURN) authed(method stun.Method, attrs ...stun.Setter) *stun.Message {
	r.t.Helper()
	setters := append([]stun.Setter{stun.NewType(method, stun.ClassRequest)}, attrs...)
	setters = append(setters, stun.NewUsername(r.username), stun.NewRealm(r.realm), r.nonce, r.integrity(), stun.Fingerprint)
	return r.roundTrip(setters...)
}

var requestUDPTransport = stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}

// allocate gets a nonce from the server's challenge, then allocates.
func (r *rawTURN) allocate() *stun.Message {
	r.t.Helper()
	challenge := r.roundTrip(stun.NewType(stun.MethodAllocate, stun.ClassRequest), requestUDPTransport)
	if code := errorCode(challenge); code != stun.CodeUnauthorized {
		r.t.Fatalf("unauthenticated Allocate answered %v, want 401 challenge", code)
	}
	var realm stun.Realm
	if err := r.nonce.GetFrom(challenge); err != nil {
		r.t.Fatalf("challenge without nonce: %v", err)
	}
	if err := realm.GetFrom(challenge); err != nil {
		r.t.Fatalf("challenge without realm: %v", err)
	}
	r.realm = realm.String()
	return r.authed(stun.MethodAllocate, requestUDPTransport)
}

func errorCode(m *stun.Message) stun.ErrorCode {
	var code stun.ErrorCodeAttribute
	if m.Type.Class != stun.ClassErrorResponse || code.GetFrom(m) != nil {
		return 0
	}
	return code.Code
}

func peerAttr(addr string) stun.Setter {
	ap := netip.MustParseAddrPort(addr)
	return addrSetter{stun.XORMappedAddress{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}, stun.AttrXORPeerAddress}
}

type addrSetter struct {
	addr stun.XORMappedAddress
	typ  stun.AttrType
}

func (a addrSetter) AddTo(m *stun.Message) error { return a.addr.AddToAs(m, a.typ) }

func channelNumber(n uint16) stun.Setter {
	return stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{byte(n >> 8), byte(n), 0, 0}}
}

// selfSignedTLS returns a server config and a client config trusting it,
// for 127.0.0.1.
func selfSignedTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "turnserver test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
