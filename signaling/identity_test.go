package signaling

import (
	"crypto/ed25519"
	"testing"

	"github.com/rtcmesh/rtcmesh/identity"
)

// The sizes of hello's binary fields are those of identity keys; this package does not import
// identity, so this test keeps the two in step.
func TestSizesMatchIdentity(t *testing.T) {
	if WorkNonceSize != identity.WorkNonceSize || MaxPowBits != identity.MaxWorkBits {
		t.Fatalf("signaling work sizes (nonce %d, max bits %d) differ from identity's (%d, %d)",
			WorkNonceSize, MaxPowBits, identity.WorkNonceSize, identity.MaxWorkBits)
	}
	if PublicKeySize != identity.PublicKeySize || SignatureSize != identity.SignatureSize {
		t.Fatalf("signaling sizes (key %d, signature %d) differ from identity's (%d, %d)",
			PublicKeySize, SignatureSize, identity.PublicKeySize, identity.SignatureSize)
	}
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(priv, []byte("x"))
	h := &Hello{Version: ProtocolVersion, ID: identity.IDFromPublicKey(pub), Network: "n", PublicKey: EncodeBinary(pub), Signature: EncodeBinary(sig)}
	if err := h.Validate(); err != nil {
		t.Fatalf("a hello with a real key and signature is invalid: %v", err)
	}
}
