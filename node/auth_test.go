package node

import (
	"bytes"
	"errors"
	"testing"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/identity"
)

func signedMessage(t *testing.T, key *identity.Key) (gossip.Message, broadcastAuth) {
	t.Helper()
	auth := newBroadcastAuth(key)
	m := gossip.Message{Type: gossip.Gossip, ID: gossip.MessageID{1, 2, 3}, Origin: key.ID(), Hops: 1, Seq: 7, Time: 1_700_000_000_000, Payload: []byte("hello")}
	proof, err := auth.Sign(&m)
	if err != nil {
		t.Fatal(err)
	}
	m.Proof = proof
	return m, auth
}

func TestBroadcastSignatureVerifies(t *testing.T) {
	key, _ := identity.GenerateKey()
	m, auth := signedMessage(t, key)
	if err := auth.Verify(&m); err != nil {
		t.Fatalf("an honest broadcast is refused: %v", err)
	}
	// Relays change the hop count, which is not signed.
	m.Hops = 9
	if err := auth.Verify(&m); err != nil {
		t.Fatalf("a relayed broadcast is refused: %v", err)
	}
}

func TestBroadcastForgeriesRefused(t *testing.T) {
	key, _ := identity.GenerateKey()
	other, _ := identity.GenerateKey()
	receiver := newBroadcastAuth(other)
	for name, tamper := range map[string]func(m *gossip.Message){
		"forged origin":     func(m *gossip.Message) { m.Origin = other.ID() },
		"changed payload":   func(m *gossip.Message) { m.Payload = []byte("hellO") },
		"changed sequence":  func(m *gossip.Message) { m.Seq++ },
		"changed time":      func(m *gossip.Message) { m.Time++ },
		"changed ID":        func(m *gossip.Message) { m.ID[0] ^= 1 },
		"flipped signature": func(m *gossip.Message) { m.Proof[len(m.Proof)-1] ^= 1 },
		"short proof":       func(m *gossip.Message) { m.Proof = m.Proof[:broadcastProofSize-1] },
		"no proof":          func(m *gossip.Message) { m.Proof = nil },
		"key of another node": func(m *gossip.Message) {
			m.Proof = append(other.PublicKey(), m.Proof[identity.PublicKeySize:]...)
		},
	} {
		m, _ := signedMessage(t, key)
		m.Proof = bytes.Clone(m.Proof)
		tamper(&m)
		if err := receiver.Verify(&m); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The whole proof re-signed by another key for the victim's origin: the key does not hash
	// to the origin.
	m, _ := signedMessage(t, key)
	forged, _ := signedMessage(t, other)
	m.Proof = forged.Proof
	if err := receiver.Verify(&m); !errors.Is(err, identity.ErrKeyMismatch) {
		t.Errorf("proof of another key: %v, want ErrKeyMismatch", err)
	}
}
