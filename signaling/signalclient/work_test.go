package signalclient_test

import (
	"testing"

	"github.com/rtcmesh/rtcmesh/identity"
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
