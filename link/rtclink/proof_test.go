//go:build !js

package rtclink

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
)

// TestLinkProofSignatureChecks covers the proof check itself: what a peer can send instead
// of an honest proof.
func TestLinkProofSignatureChecks(t *testing.T) {
	alice, _ := identity.GenerateKey()
	mallory, _ := identity.GenerateKey()
	fpAlice := sha256.Sum256([]byte("alice's certificate"))
	fpBob := sha256.Sum256([]byte("bob's certificate"))
	fpOther := sha256.Sum256([]byte("a certificate of another session"))
	arg := func(key identity.Signer, local, remote []byte) string {
		msg, err := proofMessage(key, local, remote)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(msg, proofVerb+" ")
	}
	// Bob checks alice's proof: his fingerprints are local, alice's remote.
	honest := arg(alice, fpAlice[:], fpBob[:])
	if err := checkProof(alice.ID(), honest, fpBob[:], fpAlice[:], 0); err != nil {
		t.Fatalf("honest proof refused: %v", err)
	}
	// "proof", a key of 43 and a signature of 86 characters (unpadded base64url).
	if want := len(proofVerb) + 2 + 43 + 86; len(proofVerb)+1+len(honest) != want {
		t.Errorf("proof message is %d bytes, want %d", len(proofVerb)+1+len(honest), want)
	}
	pub, sig, _ := strings.Cut(honest, " ")
	for _, c := range []struct {
		name, claimed, arg string
		want               error
	}{
		{"mallory's key for alice's ID", alice.ID(), arg(mallory, fpAlice[:], fpBob[:]), identity.ErrKeyMismatch},
		{"alice's proof for mallory's ID", mallory.ID(), honest, identity.ErrKeyMismatch},
		{"fingerprints swapped", alice.ID(), arg(alice, fpBob[:], fpAlice[:]), identity.ErrBadSignature},
		{"proof of another session (relayed)", alice.ID(), arg(alice, fpOther[:], fpBob[:]), identity.ErrBadSignature},
		{"proof for another peer", alice.ID(), arg(alice, fpAlice[:], fpOther[:]), identity.ErrBadSignature},
		{"signature cut", alice.ID(), pub + " " + sig[:len(sig)-4], nil},
		{"no signature", alice.ID(), pub, nil},
		{"padded base64", alice.ID(), pub + "= " + sig, nil},
		{"empty", alice.ID(), "", nil},
	} {
		err := checkProof(c.claimed, c.arg, fpBob[:], fpAlice[:], 0)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: %v, want a refusal (%v)", c.name, err, c.want)
		}
	}
}

// linkPair links a to b and waits for both ends to be up.
func linkPair(t *testing.T, a, b *node) {
	t.Helper()
	a.Dial(b.ID())
	a.rec.waitEvent(t, link.LinkUp, b.ID())
	b.rec.waitEvent(t, link.LinkUp, a.ID())
}

// exchange sends one frame each way and waits for both.
func exchange(t *testing.T, a, b *node, tag byte) {
	t.Helper()
	want := []byte{tag, 1, 2, 3}
	if err := a.Send(b.ID(), want); err != nil {
		t.Fatalf("send a->b: %v", err)
	}
	if err := b.Send(a.ID(), want); err != nil {
		t.Fatalf("send b->a: %v", err)
	}
	for _, n := range []*node{a, b} {
		n.rec.waitUntil(t, "the exchanged frame", func(evs []link.Event) bool {
			for _, ev := range evs {
				if ev.Type == link.Frame && bytes.Equal(ev.Data, want) {
					return true
				}
			}
			return false
		})
	}
}

// TestSpoofedOffersNeverTearDownALiveLink: once a and b are linked, signals naming b — garbage
// offers, garbage candidates, and a real offer from an impostor whose signals arrive stamped
// as b — never take the link down.
func TestSpoofedOffersNeverTearDownALiveLink(t *testing.T) {
	h := newHub(t)
	a, b, mallory := newNode(t, h, nil), newNode(t, h, nil), newNode(t, h, nil)
	linkPair(t, a, b)
	exchange(t, a, b, 1)

	for range 50 {
		a.HandleSignal(b.ID(), Signal{Type: SignalOffer, SDP: "v=0 garbage"})
		a.HandleSignal(b.ID(), Signal{Type: SignalCandidate, Candidate: `{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}`})
		a.HandleSignal(b.ID(), Signal{Type: SignalAnswer, SDP: "v=0 garbage"})
	}
	// Mallory makes real offers to a that arrive as b's, and gets a's answers (she holds b's
	// place at the signaling server, as a hijacked server would give it): DTLS works, her
	// proof cannot.
	h.mu.Lock()
	h.stampAs[mallory.ID()] = b.ID()
	h.mu.Unlock()
	h.add(b.ID(), mallory.Transport)
	for k := 1; k <= 3; k++ {
		mallory.Dial(a.ID())
		mallory.rec.waitUntil(t, "the impostor's link to fail", func(evs []link.Event) bool {
			return count(evs, link.LinkDown, a.ID()) >= k
		})
	}
	waitCond(t, "the impostor's proof refused at a", func() bool { return strings.Contains(a.log.String(), "bad link proof") })

	exchange(t, a, b, 2)
	if n := count(a.rec.snapshot(), link.LinkDown, b.ID()); n != 0 {
		t.Fatalf("a reported %d LinkDown for b", n)
	}
	if n := count(b.rec.snapshot(), link.LinkDown, a.ID()); n != 0 {
		t.Fatalf("b reported %d LinkDown for a", n)
	}
	if l := a.Links(); len(l) != 1 || l[0].Peer != b.ID() {
		t.Fatalf("a's links %+v, want the one to b", l)
	}
}

// TestRestartedPeerReplacesLiveLinkAfterProof: a peer that comes back with the same key (a
// restart) offers a new link while the old one still looks up; the new one replaces it once
// it has proven the same identity: LinkDown for the old link, then LinkUp.
func TestRestartedPeerReplacesLiveLinkAfterProof(t *testing.T) {
	h := newHub(t)
	a := newNode(t, h, nil)
	seed := sha256.Sum256([]byte("the restarting peer"))
	key, _ := identity.KeyFromSeed(seed[:])
	withKey := func(c *Config) { c.Key, c.Signaler = key, hubSignaler{h: h, self: key.ID()} }
	b := newNode(t, h, withKey)
	linkPair(t, a, b)
	b.Freeze() // the old process hangs without a goodbye

	b2 := newNode(t, h, withKey) // routes b's ID to the new process
	b2.Dial(a.ID())
	b2.rec.waitEvent(t, link.LinkUp, a.ID())
	a.rec.waitUntil(t, "LinkDown (replaced) then LinkUp for b", func(evs []link.Event) bool {
		down := -1
		for i, ev := range evs {
			if ev.Peer != key.ID() {
				continue
			}
			if ev.Type == link.LinkDown && ev.Reason == link.ReasonReplaced {
				down = i
			}
			if ev.Type == link.LinkUp && down >= 0 && i > down {
				return true
			}
		}
		return false
	})
	exchange(t, a, b2, 3)
	time.Sleep(100 * time.Millisecond)
	if l := a.Links(); len(l) != 1 {
		t.Fatalf("a has %d links, want 1", len(l))
	}
}

// stallingKey is an identity key whose signatures never come: a peer that completes DTLS and
// then holds the link open without proving anything.
type stallingKey struct {
	*identity.Key
	release chan struct{}
}

func (k stallingKey) Sign(msg []byte) ([]byte, error) {
	<-k.release
	return nil, errors.New("stalled")
}

// TestPeerWithoutProofIsDroppedAtDialTimeout: a peer that never sends its link proof gets no
// link: the dialer reports LinkDown after DialTimeout, and no frame of the peer is accepted.
func TestPeerWithoutProofIsDroppedAtDialTimeout(t *testing.T) {
	h := newHub(t)
	a := newNode(t, h, func(c *Config) { c.DialTimeout = 2 * time.Second })
	key, _ := identity.GenerateKey()
	stall := stallingKey{Key: key, release: make(chan struct{})}
	t.Cleanup(func() { close(stall.release) })
	b := newNode(t, h, func(c *Config) { c.Key, c.Signaler = stall, hubSignaler{h: h, self: key.ID()} })
	start := time.Now()
	a.Dial(b.ID())
	down := a.rec.waitEvent(t, link.LinkDown, b.ID())
	if down.Reason != link.ReasonDialTimeout {
		t.Fatalf("LinkDown reason %q, want %q", down.Reason, link.ReasonDialTimeout)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("link dropped after %v, before the dial timeout", took)
	}
	if n := count(a.rec.snapshot(), link.LinkUp, b.ID()); n != 0 {
		t.Fatalf("a reported the unproven link up")
	}
}
