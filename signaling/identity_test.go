package signaling

import (
	"testing"

	"github.com/rtcmesh/rtcmesh/identity"
)

// The sizes of hello's binary fields are those of identity keys; this package does not import
// identity, so this test keeps the two in step.
func TestSizesMatchIdentity(t *testing.T) {
	if PublicKeySize != identity.PublicKeySize || SignatureSize != identity.SignatureSize {
		t.Fatalf("signaling sizes (key %d, signature %d) differ from identity's (%d, %d)",
			PublicKeySize, SignatureSize, identity.PublicKeySize, identity.SignatureSize)
	}
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := k.Sign([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	h := &Hello{Version: ProtocolVersion, ID: k.ID(), Network: "n", PublicKey: EncodeBinary(k.PublicKey()), Signature: EncodeBinary(sig)}
	if err := h.Validate(); err != nil {
		t.Fatalf("a hello with a real key and signature is invalid: %v", err)
	}
}
