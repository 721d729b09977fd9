package signalclient_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalclient"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

// brokenKey is a Signer whose ID is not the ID of its public key.
type brokenKey struct{ identity.Signer }

func (brokenKey) ID() string { return "not-the-id" }

// lyingKey presents the victim's ID and public key (both public) but can only sign with the
// attacker's key: what an impersonator holds.
type lyingKey struct{ victim, attacker identity.Signer }

func (k lyingKey) ID() string                      { return k.victim.ID() }
func (k lyingKey) PublicKey() []byte               { return k.victim.PublicKey() }
func (k lyingKey) Sign(msg []byte) ([]byte, error) { return k.attacker.Sign(msg) }

// failingKey cannot sign (a browser key whose WebCrypto call failed).
type failingKey struct{ identity.Signer }

func (failingKey) Sign([]byte) ([]byte, error) { return nil, errors.New("webcrypto said no") }

func TestChallengeMissingKeyIsAConfigError(t *testing.T) {
	_, err := signalclient.New(signalclient.DefaultConfig("ws://127.0.0.1:1/ws", nil, "n"))
	if err == nil || !strings.Contains(err.Error(), "Key is missing") {
		t.Fatalf("New without Key = %v, want a clear missing-key error", err)
	}
}

func TestImpersonatingClientIsRefusedAndVictimStays(t *testing.T) {
	ts := startServer(t, signalserver.Config{})
	victim, _ := runClient(t, cfgFor(ts, "alice", "lobby"))
	expectWelcome(t, victim)
	bob, _ := runClient(t, cfgFor(ts, "bob", "lobby"))
	expectWelcome(t, bob)

	cfg := cfgFor(ts, "mallory", "lobby")
	cfg.Key = lyingKey{victim: keyFor("alice"), attacker: keyFor("mallory")}
	impostor, done := runClient(t, cfg)
	select {
	case err := <-done:
		var se *signaling.Error
		if !errors.As(err, &se) || se.Code != signaling.CodeBadProof {
			t.Fatalf("impostor's Run = %v, want bad_proof", err)
		}
	case <-time.After(wait):
		t.Fatal("impostor kept running")
	}
	if impostor.Stats().Sessions != 0 {
		t.Fatal("impostor was welcomed")
	}
	// The victim was not replaced and still receives signals addressed to its ID.
	if err := bob.SendOffer(idOf("alice"), "for-alice"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, victim); !sameMessage(ev.Message, &signaling.Offer{From: idOf("bob"), SDP: "for-alice"}) {
		t.Fatalf("victim got %+v, want bob's offer", ev)
	}
	if st := ts.srv.Stats(); st.Rejections[signaling.CodeReplaced] != 0 || st.Rejections[signaling.CodeBadProof] != 1 {
		t.Fatalf("server stats = %+v", st)
	}
}

func TestChallengeSigningFailureRetries(t *testing.T) {
	ts := startServer(t, signalserver.Config{})
	cfg := cfgFor(ts, "alice", "lobby")
	cfg.Key = failingKey{keyFor("alice")}
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	c, done := runClient(t, cfg)
	waitFor(t, "a few failed sessions", func() bool { return c.Stats().DialFailures >= 3 })
	select {
	case err := <-done:
		t.Fatalf("Run gave up on a local signing failure: %v", err)
	default:
	}
}

// fakeServer sends first the given frame and then reads until the client hangs up.
func fakeServer(t *testing.T, first string) string {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		if first != "" {
			ws.WriteMessage(websocket.TextMessage, []byte(first))
		}
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}))
	t.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

func TestChallengeOfAnotherVersionStopsTheClient(t *testing.T) {
	nonce := signaling.EncodeBinary(make([]byte, signaling.NonceSize))
	url := fakeServer(t, `{"type":"challenge","version":3,"nonce":"`+nonce+`","puzzle":"x"}`)
	_, done := runClient(t, signalclient.DefaultConfig(url, keyFor("alice"), "lobby"))
	select {
	case err := <-done:
		if !errors.Is(err, signalclient.ErrUnsupportedVersion) || !strings.Contains(err.Error(), "challenge had version 3") {
			t.Fatalf("Run = %v, want ErrUnsupportedVersion naming version 3", err)
		}
	case <-time.After(wait):
		t.Fatal("client kept retrying a server of another protocol version")
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestChallengeMissingFromAnOldServerIsExplained(t *testing.T) {
	url := fakeServer(t, "") // a version 1 server waits for the hello and sends nothing
	logs := &syncBuffer{}
	cfg := signalclient.DefaultConfig(url, keyFor("alice"), "lobby")
	cfg.Logger = zerolog.New(logs)
	cfg.HandshakeTimeout, cfg.MinBackoff, cfg.MaxBackoff = 50*time.Millisecond, time.Millisecond, 5*time.Millisecond
	c, _ := runClient(t, cfg)
	waitFor(t, "a failed session", func() bool { return c.Stats().DialFailures >= 1 })
	waitFor(t, "the log to explain", func() bool { return strings.Contains(logs.String(), "signaling protocol 1") })
}
