package identity

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// PublicKeySize and SignatureSize are the sizes of an identity public key and of one signature
// (Ed25519, RFC 8032). They are part of the wire and signaling formats.
const (
	PublicKeySize = ed25519.PublicKeySize
	SignatureSize = ed25519.SignatureSize
)

// The labels that separate the places an identity key signs. A signature made for one
// can never be replayed as another, because each transcript starts with its own label.
const (
	// LabelSignalingHello is signed in a signaling hello: the server's nonce and the network.
	LabelSignalingHello = "rtcmesh signaling hello v1"
	// LabelLinkProof is signed on a fresh link: the DTLS fingerprints of both ends.
	LabelLinkProof = "rtcmesh link proof v1"
	// LabelBroadcast is signed by the origin of every broadcast.
	LabelBroadcast = "rtcmesh broadcast v1"
	// LabelRouted is signed by the source of every envelope routed through the overlay (a
	// link's signals, a direct message): network, source, target, kind, time and body.
	LabelRouted = "rtcmesh routed v1"
)

// Signer is an identity key that can sign. Both builds implement it: an Ed25519 key in memory
// or on disk (Go), and a non-extractable WebCrypto key (browser).
type Signer interface {
	// ID is the node ID: IDFromPublicKey of PublicKey.
	ID() string
	// PublicKey returns the raw public key (PublicKeySize bytes).
	PublicKey() []byte
	// Sign signs msg (a Transcript). In the browser it waits for WebCrypto, so it must not be
	// called from a JavaScript callback.
	Sign(msg []byte) ([]byte, error)
}

// IDFromPublicKey derives a node ID from an identity public key: lowercase base32 without
// padding of its SHA-256, the same 52-character form as every rtcmesh ID.
func IDFromPublicKey(pub []byte) string {
	sum := sha256.Sum256(pub)
	return idEncoding.EncodeToString(sum[:])
}

// Transcript builds the exact bytes a signature covers: the label, a zero byte, then each part
// preceded by its length as a uvarint. Length prefixes make the encoding unambiguous (no two
// different part lists give the same bytes), and the label separates the uses of a key.
func Transcript(label string, parts ...[]byte) []byte {
	n := len(label) + 1
	for _, p := range parts {
		n += binary.MaxVarintLen64 + len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, label...)
	b = append(b, 0)
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// Errors of Verify. They are wrapped with detail; test with errors.Is.
var (
	// ErrKeyMismatch: the public key does not hash to the claimed ID.
	ErrKeyMismatch = errors.New("identity: public key does not match the claimed ID")
	// ErrBadSignature: the signature does not verify under the public key.
	ErrBadSignature = errors.New("identity: bad signature")
)

// Verify checks that pub belongs to the node id (it hashes to it) and that sig is pub's
// signature of msg. It is the one check behind every proof rtcmesh accepts: a signaling hello,
// a link proof and a broadcast.
func Verify(id string, pub, msg, sig []byte) error {
	if len(pub) != PublicKeySize {
		return fmt.Errorf("%w: public key is %d bytes, want %d", ErrKeyMismatch, len(pub), PublicKeySize)
	}
	if IDFromPublicKey(pub) != id {
		return fmt.Errorf("%w: key of %s, claimed %.60q", ErrKeyMismatch, IDFromPublicKey(pub), id)
	}
	if len(sig) != SignatureSize {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrBadSignature, len(sig), SignatureSize)
	}
	if !ed25519.Verify(ed25519.PublicKey(pub), msg, sig) {
		return fmt.Errorf("%w from %s", ErrBadSignature, id)
	}
	return nil
}
