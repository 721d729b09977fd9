package rtclink

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
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
// the link ("identity mismatch").
//
// Where identities cost work (Config.PowBits, identity.CheckWork), a key that carries a work
// nonce appends it as a third field,
//
//	proof <public key> <signature> <work nonce>
//
// and the receiver requires it to reach its difficulty for the proven key; a link from a key
// without enough work closes as "identity mismatch: insufficient proof of work". A key without
// work sends the two-field proof that peers without proof of work expect.

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
	msg := proofVerb + " " + base64.RawURLEncoding.EncodeToString(key.PublicKey()) + " " +
		base64.RawURLEncoding.EncodeToString(sig)
	if work := identity.WorkOf(key); len(work) > 0 {
		msg += " " + base64.RawURLEncoding.EncodeToString(work)
	}
	return msg, nil
}

// reasonInsufficientWork closes a link whose peer proved its key but not enough work for it.
const reasonInsufficientWork = link.ReasonIdentityMismatch + ": insufficient proof of work"

// checkProof checks the argument of the peer's proof message (what follows "proof ") on a
// link to peer whose DTLS fingerprints are local (ours) and remote (the peer's), and that the
// proven key carries powBits of work (none if powBits is 0). A key without enough work is an
// error wrapping identity.ErrInsufficientWork.
func checkProof(peer, arg string, local, remote []byte, powBits int) error {
	pubText, sigText, ok := strings.Cut(arg, " ")
	if !ok {
		return fmt.Errorf("malformed link proof: want a public key and a signature")
	}
	sigText, workText, hasWork := strings.Cut(sigText, " ")
	var work []byte
	if hasWork {
		var err error
		if work, err = base64.RawURLEncoding.Strict().DecodeString(workText); err != nil || len(work) != identity.WorkNonceSize {
			return fmt.Errorf("malformed link proof: work nonce %.20q: want %d bytes of unpadded base64url", workText, identity.WorkNonceSize)
		}
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
	if err := identity.Verify(peer, pub, linkTranscript(remote, local), sig); err != nil {
		return err
	}
	return identity.CheckWork(pub, work, powBits)
}
