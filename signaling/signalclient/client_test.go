package signalclient_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalclient"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

const wait = 5 * time.Second

// testServer is a signaling server on a loopback address that can be stopped and started
// again on the same address.
type testServer struct {
	t    *testing.T
	addr string
	srv  *signalserver.Server
	hs   *httptest.Server
}

func startServer(t *testing.T, cfg signalserver.Config) *testServer {
	t.Helper()
	ts := &testServer{t: t}
	ts.start(cfg, "127.0.0.1:0")
	t.Cleanup(ts.stop)
	return ts
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

func (ts *testServer) start(cfg signalserver.Config, addr string) {
	ts.t.Helper()
	srv, err := signalserver.New(overDefaults(cfg))
	if err != nil {
		ts.t.Fatalf("signalserver.New: %v", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		ts.t.Fatalf("listen %s: %v", addr, err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener.Close()
	hs.Listener = l
	hs.Start()
	ts.srv, ts.hs, ts.addr = srv, hs, l.Addr().String()
}

func (ts *testServer) stop() {
	if ts.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ts.srv.Shutdown(ctx)
	ts.hs.Close()
	ts.srv = nil
}

func (ts *testServer) url() string { return "ws://" + ts.addr + "/ws" }

// runClient starts a client and stops it with the test; the returned channel yields Run's
// result.
func runClient(t *testing.T, cfg signalclient.Config) (*signalclient.Client, <-chan error) {
	t.Helper()
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(7, 7))
	}
	c, err := signalclient.New(cfg)
	if err != nil {
		t.Fatalf("signalclient.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		done <- c.Run(ctx)
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(wait):
			t.Error("Run did not return after cancel")
		}
	})
	return c, done
}

func next(t *testing.T, c *signalclient.Client) signalclient.Event {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatal("events channel closed")
		}
		return ev
	case <-time.After(wait):
		t.Fatal("timed out waiting for an event")
	}
	panic("unreachable")
}

func expectWelcome(t *testing.T, c *signalclient.Client) *signaling.Welcome {
	t.Helper()
	ev := next(t, c)
	w, ok := ev.Message.(*signaling.Welcome)
	if !ok {
		t.Fatalf("got %+v, want welcome", ev)
	}
	return w
}

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

// keyFor returns the identity key of the test node called name: the same key for the same
// name, so tests can name nodes and reconnect them.
func keyFor(name string) *identity.Key {
	seed := sha256.Sum256([]byte("signalclient test key " + name))
	k, err := identity.KeyFromSeed(seed[:])
	if err != nil {
		panic(err)
	}
	return k
}

// idOf is the node ID of the test node called name.
func idOf(name string) string { return keyFor(name).ID() }

// cfgFor configures the test node called name.
func cfgFor(ts *testServer, name, network string) signalclient.Config {
	return signalclient.DefaultConfig(ts.url(), keyFor(name), network)
}

func TestExchangeOfferAnswerCandidate(t *testing.T) {
	ts := startServer(t, signalserver.Config{
		ICEServers: func(id string) []signaling.ICEServer {
			return []signaling.ICEServer{{URLs: []string{"stun:127.0.0.1:3478"}}}
		},
	})
	alice, _ := runClient(t, cfgFor(ts, "alice", "lobby"))
	if w := expectWelcome(t, alice); len(w.Contacts) != 0 || len(w.ICEServers) != 1 {
		t.Fatalf("alice's welcome = %+v", w)
	}
	bob, _ := runClient(t, cfgFor(ts, "bob", "lobby"))
	if w := expectWelcome(t, bob); len(w.Contacts) != 1 || w.Contacts[0] != idOf("alice") {
		t.Fatalf("bob's contacts = %v, want [alice]", w.Contacts)
	}

	if err := bob.SendOffer(idOf("alice"), "offer-sdp"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, alice); !sameMessage(ev.Message, &signaling.Offer{From: idOf("bob"), SDP: "offer-sdp"}) {
		t.Fatalf("alice got %+v", ev)
	}
	if err := alice.SendAnswer(idOf("bob"), "answer-sdp"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, bob); !sameMessage(ev.Message, &signaling.Answer{From: idOf("alice"), SDP: "answer-sdp"}) {
		t.Fatalf("bob got %+v", ev)
	}
	for i := range 3 {
		if err := alice.SendCandidate(idOf("bob"), fmt.Sprintf(`{"candidate":"c%d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		want := &signaling.Candidate{From: idOf("alice"), Candidate: fmt.Sprintf(`{"candidate":"c%d"}`, i)}
		if ev := next(t, bob); !sameMessage(ev.Message, want) {
			t.Fatalf("bob got %+v, want %+v", ev, want)
		}
	}
	// Errors about unknown targets arrive as events; the session stays up.
	if err := bob.SendOffer("nobody", "s"); err != nil {
		t.Fatal(err)
	}
	if e, ok := next(t, bob).Message.(*signaling.Error); !ok || e.Code != signaling.CodeUnknownTarget || e.To != "nobody" {
		t.Fatalf("got %+v, want unknown_target", e)
	}
	if err := bob.RequestPeers(0); err != nil {
		t.Fatal(err)
	}
	if pl, ok := next(t, bob).Message.(*signaling.PeerList); !ok || len(pl.Peers) != 1 || pl.Peers[0] != idOf("alice") {
		t.Fatalf("peer list = %+v", pl)
	}
	// Invalid input is refused locally with a clear error.
	if err := bob.SendOffer("not an id", "s"); err == nil || !strings.Contains(err.Error(), "character") {
		t.Fatalf("SendOffer to an invalid ID: %v", err)
	}
}

func sameMessage(a, b signaling.Message) bool { return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b) }

func TestNotConnectedWhileServerAway(t *testing.T) {
	// Reserve an address with nothing listening yet.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	c, _ := runClient(t, signalclient.DefaultConfig("ws://"+addr+"/ws", keyFor("alice"), "lobby"))
	if err := c.SendOffer("bob", "s"); !errors.Is(err, signalclient.ErrNotConnected) {
		t.Fatalf("SendOffer with no server = %v, want ErrNotConnected", err)
	}
	waitFor(t, "a few failed dials", func() bool { return c.Stats().DialFailures >= 3 })

	ts := &testServer{t: t}
	ts.start(signalserver.Config{}, addr)
	t.Cleanup(ts.stop)
	expectWelcome(t, c)
	if !c.Connected() {
		t.Fatal("Connected() false after welcome")
	}
}

func TestReconnectAfterShutdown(t *testing.T) {
	ts := startServer(t, signalserver.Config{})
	c, _ := runClient(t, cfgFor(ts, "alice", "lobby"))
	expectWelcome(t, c)

	addr := ts.addr
	ts.stop()
	ev := next(t, c)
	if !errors.Is(ev.Disconnected, signalclient.ErrServerGoingAway) {
		t.Fatalf("got %+v, want Disconnected with ErrServerGoingAway", ev)
	}
	if err := c.SendCandidate("bob", "x"); !errors.Is(err, signalclient.ErrNotConnected) {
		t.Fatalf("SendCandidate while away = %v, want ErrNotConnected", err)
	}

	ts.start(signalserver.Config{}, addr)
	expectWelcome(t, c)
	if got := c.Stats().Sessions; got != 2 {
		t.Fatalf("sessions = %d, want 2", got)
	}
}

func TestReplacedClientStops(t *testing.T) {
	ts := startServer(t, signalserver.Config{})
	first, firstDone := runClient(t, cfgFor(ts, "alice", "lobby"))
	expectWelcome(t, first)
	second, _ := runClient(t, cfgFor(ts, "alice", "lobby"))
	expectWelcome(t, second)

	var se *signaling.Error
	select {
	case err := <-firstDone:
		if !errors.As(err, &se) || se.Code != signaling.CodeReplaced {
			t.Fatalf("replaced client's Run = %v, want code replaced", err)
		}
		if !strings.Contains(err.Error(), "key is in use elsewhere") {
			t.Errorf("replaced client's Run = %v, want it to say the key is in use elsewhere", err)
		}
	case <-time.After(wait):
		t.Fatal("replaced client kept running")
	}
	if ev := next(t, first); !errors.As(ev.Disconnected, &se) {
		t.Fatalf("replaced client's last event = %+v", ev)
	}
	if _, open := <-first.Events(); open {
		t.Fatal("events channel not closed after Run returned")
	}
	if !second.Connected() {
		t.Fatal("the newer client lost its session")
	}
}

func TestUnauthorizedClientStops(t *testing.T) {
	secret := []byte("k")
	ts := startServer(t, signalserver.Config{NetworkSecret: func(string) []byte { return secret }})
	_, done := runClient(t, cfgFor(ts, "alice", "team"))
	var se *signaling.Error
	select {
	case err := <-done:
		if !errors.As(err, &se) || se.Code != signaling.CodeUnauthorized {
			t.Fatalf("Run = %v, want unauthorized", err)
		}
	case <-time.After(wait):
		t.Fatal("client without a token kept retrying")
	}
	cfg := cfgFor(ts, "bob", "team")
	cfg.Token = signaling.NetworkToken(secret, "team")
	c, _ := runClient(t, cfg)
	expectWelcome(t, c)
}

func TestSlowConsumerEventsBounded(t *testing.T) {
	ts := startServer(t, signalserver.Config{})
	cfg := cfgFor(ts, "slow", "lobby")
	cfg.EventQueueLength = 4
	slow, _ := runClient(t, cfg)
	expectWelcome(t, slow)
	fast, _ := runClient(t, cfgFor(ts, "fast", "lobby"))
	expectWelcome(t, fast)

	const n = 50
	for i := range n {
		if err := fast.SendCandidate(idOf("slow"), fmt.Sprint(i)); err != nil {
			t.Fatalf("candidate %d: %v", i, err)
		}
	}
	waitFor(t, "all candidates received", func() bool { return slow.Stats().Received == n+2 }) // + challenge and welcome
	if got := len(slow.Events()); got != 4 {
		t.Fatalf("queued events = %d, want the bound 4", got)
	}
	if got := slow.Stats().EventsDropped; got != n-4 {
		t.Fatalf("dropped = %d, want %d", got, n-4)
	}
	for i := n - 4; i < n; i++ { // the newest survive
		if ev := next(t, slow); !sameMessage(ev.Message, &signaling.Candidate{From: idOf("fast"), Candidate: fmt.Sprint(i)}) {
			t.Fatalf("kept event %+v, want candidate %d", ev, i)
		}
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

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestClientPacesUnderServerLimit(t *testing.T) {
	serverClock := &fakeClock{now: time.Unix(1e9, 0)}
	ts := startServer(t, signalserver.Config{RateLimit: 1, RateBurst: 10, Now: serverClock.Now, MaxFrameSize: 1024})
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	cfg := cfgFor(ts, "alice", "lobby")
	cfg.Now = clock.Now
	c, _ := runClient(t, cfg)
	expectWelcome(t, c)

	// Client burst is 90% of 10, minus the hello: 8 sends, then a local refusal.
	for i := range 8 {
		if err := c.RequestPeers(0); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if _, ok := next(t, c).Message.(*signaling.PeerList); !ok {
			t.Fatalf("request %d not answered", i)
		}
	}
	if err := c.RequestPeers(0); !errors.Is(err, signalclient.ErrRateLimited) {
		t.Fatalf("9th request = %v, want ErrRateLimited", err)
	}
	clock.Advance(2 * time.Second)
	serverClock.Advance(2 * time.Second)
	if err := c.RequestPeers(0); err != nil {
		t.Fatalf("request after refill: %v", err)
	}
	if _, ok := next(t, c).Message.(*signaling.PeerList); !ok {
		t.Fatal("request after refill not answered; the server cut the client off?")
	}
	if err := c.SendOffer("bob", strings.Repeat("x", 2000)); !errors.Is(err, signalclient.ErrFrameTooLarge) {
		t.Fatalf("oversized offer = %v, want ErrFrameTooLarge", err)
	}
	if !c.Connected() {
		t.Fatal("client lost its session")
	}
}

func TestConfigValidation(t *testing.T) {
	good := signalclient.DefaultConfig("ws://127.0.0.1:1/ws", keyFor("a"), "n")
	if _, err := signalclient.New(good); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	for name, mutate := range map[string]func(*signalclient.Config){
		"http url":         func(c *signalclient.Config) { c.URL = "http://127.0.0.1/ws" },
		"no key":           func(c *signalclient.Config) { c.Key = nil },
		"broken key":       func(c *signalclient.Config) { c.Key = brokenKey{keyFor("a")} },
		"bad token":        func(c *signalclient.Config) { c.Token = "a b" },
		"no network":       func(c *signalclient.Config) { c.Network = "" },
		"negative queue":   func(c *signalclient.Config) { c.EventQueueLength = -1 },
		"backoff inverted": func(c *signalclient.Config) { c.MinBackoff, c.MaxBackoff = time.Second, time.Millisecond },
	} {
		cfg := good
		mutate(&cfg)
		if _, err := signalclient.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRunTwice(t *testing.T) {
	ts := startServer(t, signalserver.Config{})
	c, _ := runClient(t, cfgFor(ts, "alice", "lobby"))
	expectWelcome(t, c)
	if err := c.Run(context.Background()); !errors.Is(err, signalclient.ErrAlreadyRunning) {
		t.Fatalf("second Run = %v", err)
	}
}

// With several URLs, a client whose server goes away moves to the next one, and after the
// last back to the first; a dead URL in the list costs one quick attempt, not a backoff.
func TestFailoverToNextURL(t *testing.T) {
	one, two := startServer(t, signalserver.Config{}), startServer(t, signalserver.Config{})
	dead := startServer(t, signalserver.Config{})
	dead.stop() // its address refuses connections
	cfg := cfgFor(one, "alice", "lobby")
	cfg.FallbackURLs = []string{dead.url(), two.url()}
	cfg.MinBackoff, cfg.MaxBackoff = 5*time.Millisecond, time.Minute // a grown backoff would time the test out
	c, _ := runClient(t, cfg)
	expectWelcome(t, c)
	if n := one.srv.Stats().Peers; n != 1 {
		t.Fatalf("first server has %d peers, want alice", n)
	}
	one.stop()
	// The server counts alice at her hello, a moment before she counts its welcome.
	waitFor(t, "alice on the third URL", func() bool { return two.srv.Stats().Peers == 1 && c.Stats().Sessions == 2 })
	if st := c.Stats(); st.Failovers != 2 || st.Sessions != 2 {
		t.Errorf("stats %+v: want 2 failovers (past the dead URL) and 2 sessions", st)
	}
	for ev := next(t, c); ev.Message == nil; ev = next(t, c) { // the disconnect, then the welcome
	}
	// Back to the first URL, once it is up again, when the third goes away.
	one.start(signalserver.Config{}, one.addr)
	two.stop()
	waitFor(t, "alice back on the first URL", func() bool { return one.srv != nil && one.srv.Stats().Peers == 1 })
}

func TestFallbackURLsValidated(t *testing.T) {
	cfg := signalclient.DefaultConfig("ws://127.0.0.1:1/ws", keyFor("a"), "lobby")
	cfg.FallbackURLs = []string{"http://127.0.0.1:2/ws"}
	if _, err := signalclient.New(cfg); err == nil || !strings.Contains(err.Error(), "FallbackURLs[0]") {
		t.Fatalf("New with an http fallback: %v, want an error naming FallbackURLs[0]", err)
	}
}
