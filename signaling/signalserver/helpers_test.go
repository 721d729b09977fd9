package signalserver_test

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

// wait is the generous deadline for conditions on loopback sockets.
const wait = 5 * time.Second

// startServer runs a server on loopback and tears it down with the test.
func startServer(t *testing.T, cfg signalserver.Config) (*signalserver.Server, string) {
	t.Helper()
	srv, err := signalserver.New(overDefaults(cfg))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	return srv, "ws" + strings.TrimPrefix(hs.URL, "http")
}

// overDefaults returns signalserver.DefaultConfig() with every non-zero field of partial set
// over it, so that a test names only the fields it is about.
func overDefaults(partial signalserver.Config) signalserver.Config {
	cfg := signalserver.DefaultConfig()
	src, dst := reflect.ValueOf(partial), reflect.ValueOf(&cfg).Elem()
	for i := range src.NumField() {
		if !src.Field(i).IsZero() {
			dst.Field(i).Set(src.Field(i))
		}
	}
	return cfg
}

// keyFor returns the identity key of the test node called name: the same key for the same
// name, so tests can name nodes and reconnect them.
func keyFor(name string) *identity.Key {
	seed := sha256.Sum256([]byte("signalserver test key " + name))
	k, err := identity.KeyFromSeed(seed[:])
	if err != nil {
		panic(err)
	}
	return k
}

// idOf is the node ID of the test node called name.
func idOf(name string) string { return keyFor(name).ID() }

// signHello returns a protocol-2 hello from key for network, signed over nonce.
func signHello(t testing.TB, key identity.Signer, nonce []byte, network, token string) *signaling.Hello {
	t.Helper()
	sig, err := key.Sign(identity.Transcript(identity.LabelSignalingHello, nonce, []byte(network)))
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return &signaling.Hello{
		Version:   signaling.ProtocolVersion,
		ID:        key.ID(),
		Network:   network,
		Token:     token,
		PublicKey: signaling.EncodeBinary(key.PublicKey()),
		Signature: signaling.EncodeBinary(sig),
	}
}

// rawClient speaks the protocol by hand, so tests see exactly what the server sends.
type rawClient struct {
	t  *testing.T
	ws *websocket.Conn
	// nonce is the server's challenge once read (by awaitChallenge, or skipped over by read).
	nonce []byte
}

func dialRaw(t *testing.T, url string, header http.Header) *rawClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, header)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { ws.Close() })
	return &rawClient{t: t, ws: ws}
}

func (c *rawClient) sendRaw(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *rawClient) send(m signaling.Message) {
	c.t.Helper()
	b, err := signaling.Marshal(m)
	if err != nil {
		c.t.Fatalf("marshal: %v", err)
	}
	c.sendRaw(string(b))
}

// read returns the next message, failing the test on a read error.
func (c *rawClient) read() signaling.Message {
	c.t.Helper()
	m, err := c.tryRead()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

// tryRead returns the next message other than the challenge, which it records.
func (c *rawClient) tryRead() (signaling.Message, error) {
	for {
		m, err := c.readAny()
		if err != nil {
			return nil, err
		}
		if ch, ok := m.(*signaling.Challenge); ok {
			c.recordChallenge(ch)
			continue
		}
		return m, nil
	}
}

// readAny returns the next message, whatever it is.
func (c *rawClient) readAny() (signaling.Message, error) {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(wait))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	m, err := signaling.ParseMessage(data, 1<<20)
	if err != nil {
		c.t.Fatalf("server sent an invalid frame %q: %v", data, err)
	}
	return m, nil
}

func (c *rawClient) recordChallenge(ch *signaling.Challenge) {
	c.t.Helper()
	if c.nonce != nil {
		c.t.Fatalf("second challenge %+v", ch)
	}
	nonce, err := ch.NonceBytes()
	if err != nil {
		c.t.Fatalf("challenge nonce: %v", err)
	}
	c.nonce = nonce
}

// awaitChallenge reads the challenge, which must be the first message, unless already read.
func (c *rawClient) awaitChallenge() *signaling.Challenge {
	c.t.Helper()
	if c.nonce != nil {
		return &signaling.Challenge{Version: signaling.ProtocolVersion, Nonce: signaling.EncodeBinary(c.nonce)}
	}
	m, err := c.readAny()
	if err != nil {
		c.t.Fatalf("waiting for the challenge: %v", err)
	}
	ch, ok := m.(*signaling.Challenge)
	if !ok {
		c.t.Fatalf("first message %#v, want a challenge", m)
	}
	c.recordChallenge(ch)
	return ch
}

// helloFor returns the hello of the test node name, answering this connection's challenge.
func (c *rawClient) helloFor(name, network, token string) *signaling.Hello {
	c.t.Helper()
	c.awaitChallenge()
	return signHello(c.t, keyFor(name), c.nonce, network, token)
}

// hello says hello as the test node name and returns the welcome.
func (c *rawClient) hello(name, network string) *signaling.Welcome {
	c.t.Helper()
	c.send(c.helloFor(name, network, ""))
	m := c.read()
	w, ok := m.(*signaling.Welcome)
	if !ok {
		c.t.Fatalf("after hello got %#v, want welcome", m)
	}
	if w.ID != idOf(name) {
		c.t.Fatalf("welcome id %q, want %q", w.ID, idOf(name))
	}
	return w
}

// expectFatal checks the next message is a fatal error with code, followed by a close frame
// whose reason is the same code.
func (c *rawClient) expectFatal(code signaling.ErrorCode) *signaling.Error {
	c.t.Helper()
	m := c.read()
	e, ok := m.(*signaling.Error)
	if !ok {
		c.t.Fatalf("got %#v, want fatal error %q", m, code)
	}
	if e.Code != code || !e.Fatal {
		c.t.Fatalf("got error %+v, want fatal %q", e, code)
	}
	c.expectClose(string(code))
	return e
}

// expectClose checks the connection ends with a close frame carrying reason.
func (c *rawClient) expectClose(reason string) *websocket.CloseError {
	c.t.Helper()
	m, err := c.tryRead()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		c.t.Fatalf("after the error got %#v, %v; want a close frame", m, err)
	}
	if ce.Text != reason {
		c.t.Fatalf("close reason %q, want %q", ce.Text, reason)
	}
	return ce
}

// expectError checks the next message is a non-fatal error with code.
func (c *rawClient) expectError(code signaling.ErrorCode) *signaling.Error {
	c.t.Helper()
	m := c.read()
	e, ok := m.(*signaling.Error)
	if !ok || e.Code != code || e.Fatal {
		c.t.Fatalf("got %#v, want non-fatal error %q", m, code)
	}
	return e
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fakeClock is a clock tests advance by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func serveForBench(b *testing.B, srv *signalserver.Server) (string, func()) {
	hs := httptest.NewServer(srv)
	return "ws" + strings.TrimPrefix(hs.URL, "http"), func() {
		srv.Close()
		hs.Close()
	}
}

func dialBench(b *testing.B, url, name string) *websocket.Conn {
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	_, data, err := ws.ReadMessage()
	if err != nil {
		b.Fatal(err)
	}
	m, err := signaling.ParseMessage(data, 0)
	if err != nil {
		b.Fatal(err)
	}
	ch, ok := m.(*signaling.Challenge)
	if !ok {
		b.Fatalf("first message %#v, want a challenge", m)
	}
	nonce, err := ch.NonceBytes()
	if err != nil {
		b.Fatal(err)
	}
	hello, _ := signaling.Marshal(signHello(b, keyFor(name), nonce, "bench", ""))
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		b.Fatal(err)
	}
	if _, _, err := ws.ReadMessage(); err != nil { // welcome
		b.Fatal(err)
	}
	return ws
}
