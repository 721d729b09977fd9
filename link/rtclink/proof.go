package rtclink

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/rtcmesh/rtcmesh/identity"
)

// The link proof. DTLS authenticates the two ends' certificates, but those are disposable:
// what a node ID names is an identity key. So right after DTLS, before any frame, each end
// sends on the data channel one text message
//
//	proof <public key> <signature>
//
// (unpadded base64url), the signature being its identity key's over
//
//	identity.Transcript(identity.LabelLinkProof, own DTLS fingerprint, peer's DTLS fingerprint)
//
// with the raw SHA-256 of each certificate. The receiver checks that the key hashes to the ID
// the link was opened for, that the signature verifies, and that the fingerprints are the two
// this DTLS session verified, in the signer's order. Signing both fingerprints binds the proof
// to this session: a proof relayed from another session (by a signaling server or a
// man in the middle holding a certificate of its own) names the wrong fingerprints. This is
// what libp2p's WebRTC transport achieves with the fingerprints in its Noise prologue.
//
// No frame is accepted before the peer's proof checks out, and a missing or bad proof closes
// the link ("identity mismatch: …").

// proofVerb starts the proof control message.
const proofVerb = "proof"

// linkTranscript is what the end whose DTLS fingerprint is signerFP signs for a link to the
// end whose fingerprint is otherFP.
func linkTranscript(signerFP, otherFP []byte) []byte {
	return identity.Transcript(identity.LabelLinkProof, signerFP, otherFP)
}

// proofMessage signs this end's proof for a session whose fingerprints are local (ours) and
// remote (the peer's).
func proofMessage(key identity.Signer, local, remote []byte) (string, error) {
	sig, err := key.Sign(linkTranscript(local, remote))
	if err != nil {
		return "", fmt.Errorf("sign link proof: %w", err)
	}
	return proofVerb + " " + base64.RawURLEncoding.EncodeToString(key.PublicKey()) + " " +
		base64.RawURLEncoding.EncodeToString(sig), nil
}

// checkProof checks the argument of the peer's proof message (what follows "proof ") on a
// link to peer whose DTLS fingerprints are local (ours) and remote (the peer's).
func checkProof(peer, arg string, local, remote []byte) error {
	pubText, sigText, ok := strings.Cut(arg, " ")
	if !ok {
		return fmt.Errorf("malformed link proof: want a public key and a signature")
	}
	pub, err := base64.RawURLEncoding.Strict().DecodeString(pubText)
	if err != nil {
		return fmt.Errorf("malformed link proof: public key: %w", err)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(sigText)
	if err != nil {
		return fmt.Errorf("malformed link proof: signature: %w", err)
	}
	// The peer signed its own fingerprint first: ours is its "other".
	return identity.Verify(peer, pub, linkTranscript(remote, local), sig)
}
