package signalserver_test

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

// testPowBits is the difficulty of these tests: enough that a key without work fails (by
// chance 1 in 4,096), small enough to search in milliseconds.
const testPowBits = 12

// workOf returns a work nonce of testPowBits for the test node name.
func workOf(t *testing.T, name string) []byte {
	t.Helper()
	w, err := identity.SolveWork(context.Background(), keyFor(name).PublicKey(), testPowBits, 0)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// A Sybil attack on a server that requires work: identities without work (none, too little,
// or another key's) are refused with insufficient_work before anything else, and the one
// that did the work is welcomed.
func TestSybilWithoutWorkIsRefused(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{PowBits: testPowBits})

	c := dialRaw(t, url, nil)
	if ch := c.awaitChallenge(); ch.PowBits != testPowBits {
		t.Fatalf("challenge pow_bits = %d, want %d", ch.PowBits, testPowBits)
	}
	honest := c.helloFor("alice", "lobby", "")
	honest.Work = signaling.EncodeBinary(workOf(t, "alice"))
	c.send(honest)
	w, ok := c.read().(*signaling.Welcome)
	if !ok || w.ID != idOf("alice") || w.PowBits != testPowBits {
		t.Fatalf("alice with work got %#v, want a welcome with pow_bits %d", w, testPowBits)
	}

	// Each Sybil proves its key (a fresh identity is free to make) but skimps on the work.
	weak := func(name string) []byte {
		// The first nonce of fewer bits than asked: the search for testPowBits-4 bits.
		n, err := identity.SolveWork(context.Background(), keyFor(name).PublicKey(), testPowBits-4, 0)
		if err != nil {
			t.Fatal(err)
		}
		if identity.WorkBits(keyFor(name).PublicKey(), n) >= testPowBits {
			t.Fatalf("the weak nonce of %s happens to reach %d bits; pick another name", name, testPowBits)
		}
		return n
	}
	sybils := map[string]func(h *signaling.Hello){
		"no work":       func(h *signaling.Hello) {},
		"too little":    func(h *signaling.Hello) { h.Work = signaling.EncodeBinary(weak("sybil-too-little")) },
		"another's":     func(h *signaling.Hello) { h.Work = signaling.EncodeBinary(workOf(t, "alice")) },
		"zero nonce":    func(h *signaling.Hello) { h.Work = signaling.EncodeBinary(make([]byte, signaling.WorkNonceSize)) },
		"bad signature": func(h *signaling.Hello) { h.Signature = signaling.EncodeBinary(make([]byte, signaling.SignatureSize)) },
	}
	names := map[string]string{"too little": "sybil-too-little"}
	for what, spoil := range sybils {
		name := names[what]
		if name == "" {
			name = "sybil-" + strings.ReplaceAll(what, " ", "-")
		}
		if what == "zero nonce" && identity.WorkBits(keyFor(name).PublicKey(), make([]byte, 8)) >= testPowBits {
			t.Fatalf("the zero nonce of %s reaches the difficulty; pick another name", name)
		}
		s := dialRaw(t, url, nil)
		h := s.helloFor(name, "lobby", "")
		spoil(h)
		s.send(h)
		e := s.expectFatal(signaling.CodeInsufficientWork)
		if !strings.Contains(e.Message, "bits") {
			t.Errorf("%s: message %q does not say how much work is missing", what, e.Message)
		}
	}
	st := srv.Stats()
	if st.Peers != 1 || st.Welcomed != 1 || st.Rejections[signaling.CodeInsufficientWork] != uint64(len(sybils)) {
		t.Fatalf("stats = %+v, want alice alone and %d insufficient_work rejections", st, len(sybils))
	}
	if st.Rejections[signaling.CodeBadProof] != 0 {
		t.Fatal("a hello without work cost the server a signature check")
	}
}

// With work checked, the signature and the token still are: work is no substitute for them.
func TestWorkDoesNotReplaceProofOrToken(t *testing.T) {
	secret := []byte("team secret")
	_, url := startServer(t, signalserver.Config{PowBits: testPowBits,
		NetworkSecret: signalserver.StaticSecrets(map[string][]byte{"team": secret})})
	c := dialRaw(t, url, nil)
	h := c.helloFor("alice", "lobby", "")
	h.Work = signaling.EncodeBinary(workOf(t, "alice"))
	h.Signature = signaling.EncodeBinary(make([]byte, signaling.SignatureSize))
	c.send(h)
	c.expectFatal(signaling.CodeBadProof)

	c = dialRaw(t, url, nil)
	h = c.helloFor("alice", "team", "")
	h.Work = signaling.EncodeBinary(workOf(t, "alice"))
	c.send(h)
	c.expectFatal(signaling.CodeUnauthorized)

	c = dialRaw(t, url, nil)
	h = c.helloFor("alice", "team", signaling.NetworkToken(secret, "team"))
	h.Work = signaling.EncodeBinary(workOf(t, "alice"))
	c.send(h)
	if _, ok := c.read().(*signaling.Welcome); !ok {
		t.Fatal("alice with work and token was not welcomed")
	}
}

// Without PowBits the protocol is what it was: no pow_bits in the challenge or welcome, and a
// hello's work, if any, is ignored.
func TestNoWorkRequiredByDefault(t *testing.T) {
	_, url := startServer(t, signalserver.Config{})
	c := dialRaw(t, url, nil)
	if ch := c.awaitChallenge(); ch.PowBits != 0 {
		t.Fatalf("challenge pow_bits = %d by default", ch.PowBits)
	}
	frame, _ := signaling.Marshal(&signaling.Challenge{Version: signaling.ProtocolVersion, Nonce: signaling.EncodeBinary(make([]byte, 32))})
	if strings.Contains(string(frame), "pow_bits") {
		t.Fatalf("a challenge without work names pow_bits: %s", frame)
	}
	if w := c.hello("alice", "lobby"); w.PowBits != 0 {
		t.Fatalf("welcome pow_bits = %d by default", w.PowBits)
	}
}

func TestPowBitsIsValidated(t *testing.T) {
	for _, bits := range []int{-1, identity.MaxWorkBits + 1} {
		cfg := signalserver.DefaultConfig()
		cfg.PowBits = bits
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "PowBits") {
			t.Errorf("PowBits %d: Validate = %v", bits, err)
		}
	}
}

// BenchmarkHelloWorkCheck is what a hello without work costs the server before it is refused:
// one hash (compare BenchmarkVerify in identity, the signature check it is spared).
func BenchmarkHelloWorkCheck(b *testing.B) {
	pub := keyFor("bench").PublicKey()
	nonce := sha256.Sum256([]byte("n"))
	for b.Loop() {
		identity.CheckWork(pub, nonce[:8], identity.RecommendedWorkBits)
	}
}
