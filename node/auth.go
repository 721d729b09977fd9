package node

import (
	"encoding/binary"
	"fmt"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/identity"
)

// broadcastProofSize is the size of a broadcast's proof: the origin's public key, then its
// signature. The key travels with the message because a receiver may never have linked to the
// origin; the ID it claims is checked against the key's hash.
const broadcastProofSize = identity.PublicKeySize + identity.SignatureSize

// broadcastAuth is the gossip core's Authenticator on a real node: the origin signs each
// broadcast with its identity key and every receiver verifies before the core delivers or
// forwards it. The simulator runs the cores without one.
type broadcastAuth struct {
	key identity.Signer
	pub []byte
}

var _ gossip.Authenticator = broadcastAuth{}

func newBroadcastAuth(key identity.Signer) broadcastAuth {
	return broadcastAuth{key: key, pub: key.PublicKey()}
}

// BroadcastTranscript is what an origin signs: the message ID, the origin, the sequence
// number, the time and the payload, under identity.LabelBroadcast. The hop count is left out:
// relays change it. A broadcast's proof is the origin's public key followed by its signature
// of this transcript.
func BroadcastTranscript(m *gossip.Message) []byte {
	var seq, at [8]byte
	binary.BigEndian.PutUint64(seq[:], m.Seq)
	binary.BigEndian.PutUint64(at[:], uint64(m.Time))
	return identity.Transcript(identity.LabelBroadcast, m.ID[:], []byte(m.Origin), seq[:], at[:], m.Payload)
}

// Sign implements gossip.Authenticator.
func (a broadcastAuth) Sign(m *gossip.Message) ([]byte, error) {
	sig, err := a.key.Sign(BroadcastTranscript(m))
	if err != nil {
		return nil, fmt.Errorf("node: sign broadcast: %w", err)
	}
	proof := make([]byte, 0, broadcastProofSize)
	return append(append(proof, a.pub...), sig...), nil
}

// Verify implements gossip.Authenticator.
func (a broadcastAuth) Verify(m *gossip.Message) error {
	if len(m.Proof) != broadcastProofSize {
		return fmt.Errorf("node: broadcast proof is %d bytes, want %d", len(m.Proof), broadcastProofSize)
	}
	pub, sig := m.Proof[:identity.PublicKeySize], m.Proof[identity.PublicKeySize:]
	return identity.Verify(m.Origin, pub, BroadcastTranscript(m), sig)
}
