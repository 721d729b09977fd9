//go:build !js

package rtclink

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
)

// testPowBits is the difficulty of these tests: a key without work fails it (by chance 1 in
// 4,096), and the search takes milliseconds.
const testPowBits = 12

func workedKey(t *testing.T, bits int) *identity.Key {
	t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.EnsureWork(context.Background(), bits); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestLinkProofWorkChecks covers the work part of the proof check: the third field.
func TestLinkProofWorkChecks(t *testing.T) {
	fpA := sha256.Sum256([]byte("a's certificate"))
	fpB := sha256.Sum256([]byte("b's certificate"))
	arg := func(key identity.Signer) string {
		msg, err := proofMessage(key, fpA[:], fpB[:])
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(msg, proofVerb+" ")
	}
	worked := workedKey(t, testPowBits)
	honest := arg(worked)
	if err := checkProof(worked.ID(), honest, fpB[:], fpA[:], testPowBits); err != nil {
		t.Fatalf("proof with enough work refused: %v", err)
	}
	// A peer that asks for no work accepts the three-field proof too.
	if err := checkProof(worked.ID(), honest, fpB[:], fpA[:], 0); err != nil {
		t.Fatalf("proof with work refused by a peer without a difficulty: %v", err)
	}
	// "proof", a key of 43, a signature of 86 and a nonce of 11 characters.
	if want := len(proofVerb) + 3 + 43 + 86 + 11; len(proofVerb)+1+len(honest) != want {
		t.Errorf("proof message is %d bytes, want %d", len(proofVerb)+1+len(honest), want)
	}
	plain, _ := identity.GenerateKey()
	if strings.Count(arg(plain), " ") != 1 {
		t.Fatalf("a key without work sent a work field: %q", arg(plain))
	}
	pub, rest, _ := strings.Cut(honest, " ")
	sig, _, _ := strings.Cut(rest, " ")
	other := workedKey(t, testPowBits)
	for _, c := range []struct {
		name, claimed, arg string
		bits               int
		want               error
	}{
		{"no work", plain.ID(), arg(plain), testPowBits, identity.ErrInsufficientWork},
		{"not enough work", worked.ID(), honest, identity.WorkBits(worked.PublicKey(), worked.Work()) + 1, identity.ErrInsufficientWork},
		{"another key's work", worked.ID(), pub + " " + sig + " " + base64.RawURLEncoding.EncodeToString(other.Work()), testPowBits, identity.ErrInsufficientWork},
		{"work too short", worked.ID(), pub + " " + sig + " AAAA", testPowBits, nil},
		{"work padded", worked.ID(), pub + " " + sig + " AAAAAAAAAAE=", testPowBits, nil},
		{"work then junk", worked.ID(), honest + " x", testPowBits, nil},
		{"work with a bad signature", worked.ID(), pub + " " + flipFirst(sig) + " " + base64.RawURLEncoding.EncodeToString(worked.Work()), testPowBits, identity.ErrBadSignature},
	} {
		err := checkProof(c.claimed, c.arg, fpB[:], fpA[:], c.bits)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: %v, want a refusal (%v)", c.name, err, c.want)
		}
	}
}

// flipFirst changes the first character of a base64url text (and so its first byte).
func flipFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// TestSybilWithoutWorkGetsNoLink: a node requiring work links with a peer that did the work
// and refuses one that did not, before any frame; the refusal is counted. A node that
// requires none links with both.
func TestSybilWithoutWorkGetsNoLink(t *testing.T) {
	h := newHub(t)
	strict := newNode(t, h, func(c *Config) { c.PowBits = testPowBits })
	honestKey := workedKey(t, testPowBits)
	honest := newNode(t, h, func(c *Config) { c.Key, c.Signaler = honestKey, hubSignaler{h: h, self: honestKey.ID()} })
	sybil := newNode(t, h, nil) // a fresh identity, free to make

	connect(t, strict, honest)
	exchange(t, strict, honest, 2)

	// The Sybil dials: the strict node refuses its proof (an offered link that never came up
	// is no event of the strict node's); the Sybil sees its dial fail.
	sybil.Dial(strict.ID())
	sybil.rec.waitEvent(t, link.LinkDown, strict.ID())
	waitCond(t, "the strict node's refusal", func() bool { return strict.Stats().WorkRefused == 1 })
	// And the other way round: the strict node dials the Sybil and reports why it failed.
	strict.Dial(sybil.ID())
	down := strict.rec.waitEvent(t, link.LinkDown, sybil.ID())
	if down.Reason != reasonInsufficientWork {
		t.Fatalf("LinkDown reason %q, want %q", down.Reason, reasonInsufficientWork)
	}
	if n := count(strict.rec.snapshot(), link.LinkUp, sybil.ID()); n != 0 {
		t.Fatalf("the strict node reported %d links up with the Sybil", n)
	}
	if st := strict.Stats(); st.ProofsRefused != 0 || st.PowBits != testPowBits {
		t.Fatalf("stats %+v", st)
	}

	// Without a difficulty the Sybil links as before.
	lax := newNode(t, h, nil)
	connect(t, lax, sybil)

	// RequireWork raises the bar for new links, never lowers it.
	lax.RequireWork(testPowBits)
	lax.RequireWork(4)
	if got := lax.Stats().PowBits; got != testPowBits {
		t.Fatalf("PowBits after RequireWork(%d) then (4) = %d", testPowBits, got)
	}
	late := newNode(t, h, nil)
	lax.Dial(late.ID())
	if down := lax.rec.waitEvent(t, link.LinkDown, late.ID()); down.Reason != reasonInsufficientWork {
		t.Fatalf("after RequireWork: LinkDown reason %q", down.Reason)
	}
}

func TestPowBitsIsValidated(t *testing.T) {
	k, _ := identity.GenerateKey()
	for _, bits := range []int{-1, identity.MaxWorkBits + 1} {
		cfg := DefaultConfig(k, hubSignaler{})
		cfg.PowBits = bits
		if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "PowBits") {
			t.Errorf("PowBits %d: validate = %v", bits, err)
		}
	}
}

// FuzzCheckProof: whatever a peer sends as its proof, the check never panics, and a proof it
// accepts under a difficulty carries a work nonce that reaches it.
func FuzzCheckProof(f *testing.F) {
	seed := sha256.Sum256([]byte("fuzzed peer"))
	key, _ := identity.KeyFromSeed(seed[:])
	key.EnsureWork(context.Background(), 8)
	fpA := sha256.Sum256([]byte("a"))
	fpB := sha256.Sum256([]byte("b"))
	msg, _ := proofMessage(key, fpA[:], fpB[:])
	honest := strings.TrimPrefix(msg, proofVerb+" ")
	f.Add(honest, 8)
	f.Add(honest, 0)
	f.Add(honest+" x", 8)
	f.Add("", 1)
	f.Add("  ", 3)
	f.Fuzz(func(t *testing.T, arg string, bits int) {
		bits = ((bits % 13) + 13) % 13 // 0..12: what a search in the fuzzer can reach
		if err := checkProof(key.ID(), arg, fpB[:], fpA[:], bits); err != nil || bits == 0 {
			return
		}
		parts := strings.Split(arg, " ")
		if len(parts) != 3 {
			t.Fatalf("accepted a proof of %d fields under %d bits", len(parts), bits)
		}
		work, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
		if err != nil || identity.WorkBits(key.PublicKey(), work) < bits {
			t.Fatalf("accepted work %q under %d bits", parts[2], bits)
		}
	})
}
