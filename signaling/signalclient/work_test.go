package signalclient_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/signaling/signalclient"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

// plainSigner hides a key's WorkProver methods: a Signer that cannot keep work.
type plainSigner struct{ identity.Signer }

// The client answers a challenge that asks for work: it searches once, keeps the nonce beside
// its key, and is welcomed with the server's difficulty, which it hands on to its links.
func TestClientDoesTheWorkTheServerAsks(t *testing.T) {
	const bits = 12
	ts := startServer(t, signalserver.Config{PowBits: bits})
	cfg := cfgFor(ts, "alice", "lobby")
	key := cfg.Key.(*identity.Key)
	if key.Work() != nil {
		t.Fatal("the test key starts with work")
	}
	c, _ := runClient(t, cfg)
	w := expectWelcome(t, c)
	if w.PowBits != bits {
		t.Fatalf("welcome pow_bits = %d, want %d", w.PowBits, bits)
	}
	if err := identity.CheckWork(key.PublicKey(), key.Work(), bits); err != nil {
		t.Fatalf("the key does not keep the work it did: %v", err)
	}

	// A Signer that cannot keep work still gets in: it searches afresh for each session.
	cfg = cfgFor(ts, "bob", "lobby")
	cfg.Key = plainSigner{cfg.Key}
	bob, _ := runClient(t, cfg)
	expectWelcome(t, bob)
}

// A search that outlasts the handshake (a tab at a high difficulty) costs one failed session,
// not the identity: the work is kept with the key and the next session answers at once.
func TestWorkLongerThanTheHandshakeGetsInNextTime(t *testing.T) {
	const bits = 18
	ts := startServer(t, signalserver.Config{PowBits: bits})
	// This key's first 18-bit nonce is try 1,433,139: over 100 ms even at 70 ns a try.
	cfg := cfgFor(ts, "slow-4", "lobby")
	cfg.HandshakeTimeout = 50 * time.Millisecond
	c, _ := runClient(t, cfg)
	if w := expectWelcome(t, c); w.PowBits != bits {
		t.Fatalf("welcome pow_bits = %d", w.PowBits)
	}
	if st := c.Stats(); st.DialFailures < 1 || st.Sessions != 1 {
		t.Fatalf("stats %+v: want a session lost to the search (a slow dial may add one), then one welcomed", st)
	}
}

// A server that asks for more work than MaxPowBits gets no search and no hello: the client
// stops with ErrTooMuchWork rather than spend the CPU a hostile server asks for.
func TestClientRefusesTooMuchWork(t *testing.T) {
	ts := startServer(t, signalserver.Config{PowBits: 12})
	cfg := cfgFor(ts, "alice", "lobby")
	cfg.MaxPowBits = 8
	_, done := runClient(t, cfg)
	select {
	case err := <-done:
		if !errors.Is(err, signalclient.ErrTooMuchWork) {
			t.Fatalf("Run = %v, want ErrTooMuchWork", err)
		}
	case <-time.After(wait):
		t.Fatal("the client kept trying")
	}
	if w := identity.WorkOf(cfg.Key); w != nil {
		t.Fatalf("the client searched anyway: %x", w)
	}
	for _, bad := range []int{-1, identity.MaxWorkBits + 1} {
		cfg.MaxPowBits = bad
		if _, err := signalclient.New(cfg); err == nil || !strings.Contains(err.Error(), "MaxPowBits") {
			t.Errorf("MaxPowBits %d: New = %v", bad, err)
		}
	}
}
