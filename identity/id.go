// Package identity gives an rtcmesh node its identity: an Ed25519 signing key whose public
// key's hash is the node ID. Whoever holds the key can prove the ID, and rtcmesh asks for that
// proof everywhere an ID is claimed: in the signaling hello (over the server's nonce), on every
// link right after DTLS (over both ends' certificate fingerprints) and on every broadcast (by
// its origin). The three transcripts carry their own labels (Transcript), so a signature made
// for one is worthless in another.
//
// Where the operator wants Sybils to cost something, a key also carries a proof of work
// (work.go): a nonce whose hash with the public key starts with a given number of zero bits,
// searched once per key and kept beside it, checked at the signaling hello and on every link.
//
// In a Go process the key lives in a file (LoadOrCreateKey: atomic, mode 0600); in a browser it
// is a non-extractable WebCrypto key kept in IndexedDB, one per tab (key_js.go). The package is
// pure: no network, no WebRTC. DTLS certificates are link-layer details, made per process by
// link/rtclink and thrown away with it.
package identity

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// IDLength is the length of a node ID: base32 without padding of a 32-byte hash.
const IDLength = 52

// idEncoding is RFC 4648 base32, lowercase, no padding: IDs appear in URLs,
// logs and mDNS-free contexts where case-insensitive and padding-free is
// friendliest.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ValidID reports whether s is syntactically a node ID (52 characters of
// lowercase base32 that decode to 32 bytes with no stray trailing bits).
func ValidID(s string) bool {
	if len(s) != IDLength || strings.ToLower(s) != s {
		return false
	}
	b, err := idEncoding.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return false
	}
	// Reject non-canonical encodings (the last character carries 2 unused bits).
	return idEncoding.EncodeToString(b) == s
}
