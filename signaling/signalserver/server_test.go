package signalserver_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

func TestRelayStampsSender(t *testing.T) {
	_, url := startServer(t, signalserver.Config{})
	a := dialRaw(t, url, nil)
	b := dialRaw(t, url, nil)
	a.hello("alice", "lobby")
	b.hello("bob", "lobby")

	// A spoofed "from" is overwritten with the sender's proven ID.
	a.send(&signaling.Offer{To: idOf("bob"), From: "mallory", SDP: "offer-sdp"})
	if got, want := b.read(), (&signaling.Offer{From: idOf("alice"), SDP: "offer-sdp"}); !equal(got, want) {
		t.Fatalf("bob got %#v, want %#v", got, want)
	}
	b.send(&signaling.Answer{To: idOf("alice"), SDP: "answer-sdp"})
	if got, want := a.read(), (&signaling.Answer{From: idOf("bob"), SDP: "answer-sdp"}); !equal(got, want) {
		t.Fatalf("alice got %#v, want %#v", got, want)
	}
	a.send(&signaling.Candidate{To: idOf("bob"), Candidate: `{"candidate":"c1"}`})
	if got, want := b.read(), (&signaling.Candidate{From: idOf("alice"), Candidate: `{"candidate":"c1"}`}); !equal(got, want) {
		t.Fatalf("bob got %#v, want %#v", got, want)
	}
}

func equal(a, b signaling.Message) bool { return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b) }

func TestNetworksIsolateAndUnknownTarget(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{})
	a := dialRaw(t, url, nil)
	c := dialRaw(t, url, nil)
	a.hello("alice", "one")
	c.hello("carol", "two")

	a.send(&signaling.Offer{To: idOf("carol"), SDP: "s"})
	e := a.expectError(signaling.CodeUnknownTarget)
	if e.To != idOf("carol") {
		t.Errorf("unknown_target names %q, want carol", e.To)
	}
	a.send(&signaling.Offer{To: idOf("alice"), SDP: "s"})
	a.expectError(signaling.CodeUnknownTarget)
	// Not fatal: the connection still works.
	a.send(&signaling.PeersRequest{})
	if m, ok := a.read().(*signaling.PeerList); !ok || len(m.Peers) != 0 {
		t.Fatalf("peer list in a network of one = %#v, want empty", m)
	}
	if st := srv.Stats(); st.Networks != 2 || st.Peers != 2 || st.Rejections[signaling.CodeUnknownTarget] != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestWelcomeContactsAndICEServers(t *testing.T) {
	var asked []string
	cfg := signalserver.Config{
		ContactCount:  3,
		MaxPeersReply: 4,
		Rand:          rand.New(rand.NewPCG(1, 2)),
		ICEServers: func(id string) []signaling.ICEServer {
			asked = append(asked, id) // hellos are sequential in this test
			return []signaling.ICEServer{{URLs: []string{"turn:127.0.0.1:3478"}, Username: "u-" + id, Credential: "c"}}
		},
	}
	_, url := startServer(t, cfg)
	live := []string{}
	for i := range 6 {
		name := fmt.Sprintf("n%d", i)
		id := idOf(name)
		w := dialRaw(t, url, nil).hello(name, "lobby")
		if want := min(i, 3); len(w.Contacts) != want {
			t.Fatalf("%s got %d contacts %v, want %d", id, len(w.Contacts), w.Contacts, want)
		}
		seen := map[string]bool{}
		for _, c := range w.Contacts {
			if c == id || seen[c] || !slices.Contains(live, c) {
				t.Fatalf("%s got bad contacts %v (live %v)", id, w.Contacts, live)
			}
			seen[c] = true
		}
		if len(w.ICEServers) != 1 || w.ICEServers[0].Username != "u-"+id {
			t.Fatalf("%s got ICE servers %+v", id, w.ICEServers)
		}
		if w.Limits.MaxFrameSize != signaling.DefaultMaxFrameSize || w.Limits.Burst == 0 {
			t.Fatalf("limits = %+v", w.Limits)
		}
		live = append(live, id)
	}
	if len(asked) != 6 {
		t.Errorf("ICEServers hook called %d times, want 6", len(asked))
	}

	// A peers request is capped by MaxPeersReply and never names the asker.
	c := dialRaw(t, url, nil)
	c.hello("asker", "lobby")
	c.send(&signaling.PeersRequest{Max: 100})
	pl, ok := c.read().(*signaling.PeerList)
	if !ok || len(pl.Peers) != 4 || slices.Contains(pl.Peers, idOf("asker")) {
		t.Fatalf("peer list = %#v, want 4 peers other than asker", pl)
	}
}

func TestFrameTooLarge(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{MaxFrameSize: 1024})
	a := dialRaw(t, url, nil)
	a.hello("alice", "lobby")
	a.sendRaw(`{"type":"offer","to":"bob","sdp":"` + strings.Repeat("x", 2000) + `"}`)
	a.expectFatal(signaling.CodeFrameTooLarge)
	if got := srv.Stats().Rejections[signaling.CodeFrameTooLarge]; got != 1 {
		t.Errorf("frame_too_large rejections = %d, want 1", got)
	}
}

func TestRateLimit(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	_, url := startServer(t, signalserver.Config{RateLimit: 1, RateBurst: 3, Now: clock.Now})
	a := dialRaw(t, url, nil)
	w := a.hello("alice", "lobby") // token 1
	if w.Limits.Rate != 1 || w.Limits.Burst != 3 {
		t.Fatalf("welcome limits = %+v", w.Limits)
	}
	a.send(&signaling.PeersRequest{}) // token 2
	a.read()
	a.send(&signaling.PeersRequest{}) // token 3
	a.read()
	// The clock has not moved, so the bucket is empty.
	a.send(&signaling.PeersRequest{})
	a.expectFatal(signaling.CodeRateLimited)
}

func TestRateLimitRefills(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	_, url := startServer(t, signalserver.Config{RateLimit: 1, RateBurst: 1, Now: clock.Now})
	a := dialRaw(t, url, nil)
	a.hello("alice", "lobby")
	for range 3 {
		clock.mu.Lock()
		clock.now = clock.now.Add(time.Second)
		clock.mu.Unlock()
		a.send(&signaling.PeersRequest{})
		if _, ok := a.read().(*signaling.PeerList); !ok {
			t.Fatal("request within the rate was refused")
		}
	}
}

func TestHandshakeTimeout(t *testing.T) {
	_, url := startServer(t, signalserver.Config{HandshakeTimeout: 50 * time.Millisecond})
	a := dialRaw(t, url, nil)
	a.expectFatal(signaling.CodeHandshakeTimeout)
}

func TestNetworkFull(t *testing.T) {
	_, url := startServer(t, signalserver.Config{MaxPeersPerNetwork: 2})
	dialRaw(t, url, nil).hello("a", "lobby")
	dialRaw(t, url, nil).hello("b", "lobby")
	c := dialRaw(t, url, nil)
	c.send(c.helloFor("c", "lobby", ""))
	c.expectFatal(signaling.CodeNetworkFull)
	// Other networks are unaffected, and a reconnecting member still gets in.
	dialRaw(t, url, nil).hello("c", "elsewhere")
	dialRaw(t, url, nil).hello("a", "lobby")
}

func TestServerFull(t *testing.T) {
	_, url := startServer(t, signalserver.Config{MaxConnections: 1})
	dialRaw(t, url, nil).hello("a", "lobby")
	dialRaw(t, url, nil).expectFatal(signaling.CodeServerFull)
}

func TestMalformedAndUnknownType(t *testing.T) {
	_, url := startServer(t, signalserver.Config{})
	// Before hello every problem is fatal.
	dialRaw(t, url, nil).sendAndExpectFatal(`{"type":`, signaling.CodeMalformed)
	dialRaw(t, url, nil).sendAndExpectFatal(`{"type":"subscribe"}`, signaling.CodeUnknownType)
	// After hello they only drop the message.
	a := dialRaw(t, url, nil)
	a.hello("alice", "lobby")
	a.sendRaw(`not json`)
	a.expectError(signaling.CodeMalformed)
	a.sendRaw(`{"type":"subscribe","topic":"x"}`)
	a.expectError(signaling.CodeUnknownType)
	a.sendRaw(`{"type":"offer","to":"bob","sdp":"s","extra":1}`)
	a.expectError(signaling.CodeMalformed)
	a.sendRaw(`{"type":"offer","from":"bob","sdp":"s"}`)
	a.expectError(signaling.CodeMalformed)
	if err := a.ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	a.expectError(signaling.CodeMalformed)
	a.send(&signaling.PeersRequest{})
	if _, ok := a.read().(*signaling.PeerList); !ok {
		t.Fatal("connection unusable after non-fatal errors")
	}
}

func (c *rawClient) sendAndExpectFatal(frame string, code signaling.ErrorCode) {
	c.t.Helper()
	c.sendRaw(frame)
	c.expectFatal(code)
}

func TestBadHello(t *testing.T) {
	_, url := startServer(t, signalserver.Config{})
	key := strings.Repeat("k", 42) + "w"
	sig := strings.Repeat("s", 85) + "w"
	v2 := func(fields string) string {
		return `{"type":"hello","version":2,"public_key":"` + key + `","signature":"` + sig + `",` + fields + `}`
	}
	for _, frame := range []string{
		v2(`"id":"has space","network":"lobby"`),
		v2(`"network":"` + strings.Repeat("n", 65) + `"`),
		v2(`"network":"lobby","colour":"blue"`),
		v2(`"id":7,"network":"lobby"`),
		`{"type":"hello","version":2,"network":"lobby"}`,
		`{"type":"hello","version":2,"network":"lobby","public_key":"` + key + `","signature":"short"}`,
		`{"type":"hello","version":2,"network":"lobby","public_key":"` + key + `=","signature":"` + sig + `"}`,
	} {
		dialRaw(t, url, nil).sendAndExpectFatal(frame, signaling.CodeBadHello)
	}
}

func TestHelloRequired(t *testing.T) {
	_, url := startServer(t, signalserver.Config{})
	dialRaw(t, url, nil).sendAndExpectFatal(`{"type":"offer","to":"b","sdp":"s"}`, signaling.CodeHelloRequired)
	// Even an invalid non-hello message is answered with what the client must do first.
	dialRaw(t, url, nil).sendAndExpectFatal(`{"type":"peers","max":-1}`, signaling.CodeHelloRequired)
}

func TestUnexpectedMessage(t *testing.T) {
	_, url := startServer(t, signalserver.Config{})
	a := dialRaw(t, url, nil)
	a.hello("alice", "lobby")
	a.send(a.helloFor("alice", "lobby", ""))
	a.expectError(signaling.CodeUnexpectedMessage)
	a.send(&signaling.Challenge{Version: signaling.ProtocolVersion, Nonce: signaling.EncodeBinary(make([]byte, signaling.NonceSize))})
	a.expectError(signaling.CodeUnexpectedMessage)
	a.send(&signaling.Welcome{ID: "alice"})
	a.expectError(signaling.CodeUnexpectedMessage)
}

func TestUnauthorized(t *testing.T) {
	secret := []byte("team-secret")
	_, url := startServer(t, signalserver.Config{
		NetworkSecret: signalserver.StaticSecrets(map[string][]byte{"team": secret}),
	})
	missing := dialRaw(t, url, nil)
	missing.send(missing.helloFor("a", "team", ""))
	missing.expectFatal(signaling.CodeUnauthorized)
	wrong := dialRaw(t, url, nil)
	wrong.send(wrong.helloFor("a", "team", signaling.NetworkToken(secret, "other")))
	wrong.expectFatal(signaling.CodeUnauthorized)

	ok := dialRaw(t, url, nil)
	ok.send(ok.helloFor("a", "team", signaling.NetworkToken(secret, "team")))
	if _, isWelcome := ok.read().(*signaling.Welcome); !isWelcome {
		t.Fatal("correct token refused")
	}
	dialRaw(t, url, nil).hello("b", "open-network")
}

func TestOrigin(t *testing.T) {
	_, url := startServer(t, signalserver.Config{AllowedOrigins: []string{"https://app.example"}})
	origin := func(o string) http.Header { return http.Header{"Origin": {o}} }
	dialRaw(t, url, origin("https://evil.example")).expectFatal(signaling.CodeOriginNotAllowed)
	dialRaw(t, url, nil).hello("no-origin", "lobby")
	dialRaw(t, url, origin("https://APP.example")).hello("listed", "lobby")
	host := strings.TrimPrefix(url, "ws://")
	dialRaw(t, url, origin("http://"+host)).hello("same-host", "lobby")
}

func TestDuplicateIDReplacesOlder(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{})
	old := dialRaw(t, url, nil)
	old.hello("alice", "lobby")
	b := dialRaw(t, url, nil)
	b.hello("bob", "lobby")
	b.send(&signaling.Offer{To: idOf("alice"), SDP: "for-old"})
	old.read()

	fresh := dialRaw(t, url, nil)
	w := fresh.hello("alice", "lobby")
	if slices.Contains(w.Contacts, idOf("alice")) {
		t.Errorf("contacts %v name the client itself", w.Contacts)
	}
	old.expectFatal(signaling.CodeReplaced)
	b.send(&signaling.Offer{To: idOf("alice"), SDP: "for-new"})
	if got := fresh.read(); !equal(got, &signaling.Offer{From: idOf("bob"), SDP: "for-new"}) {
		t.Fatalf("new alice got %#v", got)
	}
	// The replaced connection leaving must not remove the new one, nor announce peer-left.
	waitFor(t, "old connection gone", func() bool { return srv.Stats().Connections == 2 })
	if st := srv.Stats(); st.Peers != 2 {
		t.Fatalf("peers = %d, want 2", st.Peers)
	}
	b.send(&signaling.PeersRequest{})
	if pl, ok := b.read().(*signaling.PeerList); !ok || !slices.Equal(pl.Peers, []string{idOf("alice")}) {
		t.Fatalf("bob's next message is %#v, want a peer-list of alice", pl)
	}
}

func TestPeerLeftGoesToCorrespondentsOnly(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{})
	a := dialRaw(t, url, nil)
	a.hello("alice", "lobby")
	b := dialRaw(t, url, nil)
	b.hello("bob", "lobby")
	c := dialRaw(t, url, nil)
	c.hello("carol", "lobby")
	a.send(&signaling.Offer{To: idOf("bob"), SDP: "s"})
	b.read()
	b.ws.Close()
	if got := a.read(); !equal(got, &signaling.PeerLeft{ID: idOf("bob")}) {
		t.Fatalf("alice got %#v, want peer-left bob", got)
	}
	c.send(&signaling.PeersRequest{})
	if _, ok := c.read().(*signaling.PeerList); !ok {
		t.Fatal("carol, who never talked to bob, was told about him")
	}
	waitFor(t, "bob removed", func() bool { return srv.Stats().Peers == 2 })
}

func TestSlowConsumerIsDisconnected(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{
		SendQueueBytes:   128 << 10,
		RateLimit:        1e6,
		RateBurst:        1e6,
		WriteTimeout:     200 * time.Millisecond,
		CloseGracePeriod: 100 * time.Millisecond,
	})
	fast := dialRaw(t, url, nil)
	fast.hello("fast", "lobby")
	slow := dialRaw(t, url, nil)
	slow.hello("slow", "lobby")
	// slow never reads again: the socket buffers fill, then its queue, then a write stalls
	// for WriteTimeout and slow is dropped. fast's replies (target_busy, once slow's queue is
	// full) are read as they come so that fast stays a good reader.
	replies := make(chan signaling.Message, 1<<16)
	go func() {
		for {
			m, err := fast.tryRead()
			if err != nil {
				close(replies)
				return
			}
			replies <- m
		}
	}()
	sdp := strings.Repeat("x", 60<<10)
	deadline := time.Now().Add(wait)
	for srv.Stats().Rejections[signaling.CodeSlowConsumer] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the slow reader is still connected: %+v", srv.Stats())
		}
		if st := srv.Stats(); st.QueuedBytes > 128<<10+2*(60<<10+200) {
			t.Fatalf("queued %d bytes for one slow reader, beyond SendQueueBytes", st.QueuedBytes)
		}
		if err := fast.ws.WriteMessage(websocket.TextMessage, mustMarshal(t, &signaling.Offer{To: idOf("slow"), SDP: sdp})); err != nil {
			t.Fatalf("write: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "slow consumer removed", func() bool { return srv.Stats().Peers == 1 })
	waitFor(t, "queue released", func() bool { return srv.Stats().QueuedBytes == 0 })
	if srv.Stats().Rejections[signaling.CodeTargetBusy] == 0 {
		t.Error("no relay to the full queue was refused with target_busy")
	}
	// The fast client is unaffected.
	fast.send(&signaling.PeersRequest{})
	for m := range replies {
		switch m := m.(type) {
		case *signaling.PeerList:
			return
		case *signaling.PeerLeft: // fast corresponded with slow, so it hears that slow left
		case *signaling.Error:
			if m.Fatal || (m.Code != signaling.CodeUnknownTarget && m.Code != signaling.CodeTargetBusy) {
				t.Fatalf("fast client got %+v", m)
			}
		default:
			t.Fatalf("fast client got %#v", m)
		}
	}
	t.Fatal("fast client lost its connection")
}

func mustMarshal(t testing.TB, m signaling.Message) []byte {
	t.Helper()
	b, err := signaling.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInternalErrorOnBadICEServers(t *testing.T) {
	_, url := startServer(t, signalserver.Config{
		ICEServers: func(string) []signaling.ICEServer { return []signaling.ICEServer{{URLs: nil}} },
	})
	a := dialRaw(t, url, nil)
	a.send(a.helloFor("a", "lobby", ""))
	a.expectFatal(signaling.CodeInternal)
}

func TestKeepalive(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{PingInterval: 10 * time.Millisecond, PongTimeout: 100 * time.Millisecond})
	// A client that reads answers pings (gorilla does so inside ReadMessage) and stays.
	live := dialRaw(t, url, nil)
	pings := make(chan struct{}, 100)
	live.ws.SetPingHandler(func(data string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return live.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	live.hello("live", "lobby")
	go live.ws.ReadMessage() // keep reading so pings are answered
	for range 20 {           // 20 pings ≈ 2× PongTimeout
		select {
		case <-pings:
		case <-time.After(wait):
			t.Fatal("no pings from the server")
		}
	}
	// A silent client (never reads, so never answers pings) is dropped.
	silent := dialRaw(t, url, nil)
	silent.send(silent.helloFor("silent", "lobby", ""))
	waitFor(t, "silent client dropped", func() bool {
		st := srv.Stats()
		return st.Peers == 1 && st.Connections == 1
	})
}

func TestShutdownSaysByeAndRefusesNewConnections(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{})
	a := dialRaw(t, url, nil)
	a.hello("alice", "lobby")
	b := dialRaw(t, url, nil) // still in handshake
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	for _, c := range []*rawClient{a, b} {
		if m, ok := c.read().(*signaling.Bye); !ok {
			t.Fatalf("got %#v, want bye", m)
		}
		if ce := c.expectClose("shutting down"); ce.Code != websocket.CloseGoingAway {
			t.Fatalf("close code %d, want going away", ce.Code)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if st := srv.Stats(); st.Connections != 0 || st.Networks != 0 {
		t.Fatalf("after shutdown stats = %+v", st)
	}
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after shutdown: %v %v, want HTTP 503", resp, err)
	}
	if err := srv.Shutdown(context.Background()); err != signalserver.ErrServerClosed {
		t.Fatalf("second Shutdown = %v", err)
	}
}

func TestNetworkRemovedWhenEmpty(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{})
	a := dialRaw(t, url, nil)
	a.hello("alice", "lobby")
	if srv.Stats().Networks != 1 {
		t.Fatal("network not created")
	}
	a.ws.Close()
	waitFor(t, "network removed", func() bool { return srv.Stats().Networks == 0 })
}

func TestConfigValidation(t *testing.T) {
	bad := []signalserver.Config{
		{MaxFrameSize: -1},
		{MaxFrameSize: 100},
		{RateLimit: -1},
		{HandshakeTimeout: -time.Second},
		{PingInterval: time.Minute, PongTimeout: time.Second},
		{AllowedOrigins: []string{"example.com"}},
		{AllowedOrigins: []string{"https://example.com/path"}},
		{ContactCount: 5000},
		{MaxCorrespondents: -2},
	}
	for _, cfg := range bad {
		if _, err := signalserver.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", cfg)
		}
	}
	if _, err := signalserver.New(signalserver.DefaultConfig()); err != nil {
		t.Errorf("DefaultConfig rejected: %v", err)
	}
}
