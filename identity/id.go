// Package identity gives an rtcmesh node its identity: an ECDSA P-256 key and a
// self-signed certificate that WebRTC uses for DTLS. The node ID is derived
// from the certificate, so a peer that completes a DTLS handshake has proved
// it holds the key behind the ID it claimed (see ID and IDFromCertificate).
//
// The certificate is persisted (LoadOrCreate) so that the ID survives
// restarts; it is valid for a century because an ID that expires is an ID that
// changes, and pion refuses expired certificates.
package identity

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
)

// IDLength is the length of a node ID: base32 without padding of a 32-byte hash.
const IDLength = 52

// idEncoding is RFC 4648 base32, lowercase, no padding: IDs appear in URLs,
// logs and mDNS-free contexts where case-insensitive and padding-free is
// friendliest.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// IDFromCertificate derives a node ID from a DER certificate: lowercase
// base32 (RFC 4648 alphabet, no padding) of its SHA-256, 52 characters. It is
// the same hash as the SDP a=fingerprint, so the ID commits to the DTLS key.
func IDFromCertificate(der []byte) string {
	sum := sha256.Sum256(der)
	return idEncoding.EncodeToString(sum[:])
}

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

// IDFromFingerprint derives a node ID from an SDP fingerprint attribute's value, as in
// "a=fingerprint:sha-256 AB:CD:…" (RFC 8122). Only sha-256 is accepted: it is the hash the ID
// is made of. A peer whose SDP fingerprint maps to the ID it claims holds that ID's key,
// because the DTLS handshake checks the certificate against the fingerprint; browser links
// rely on this, since a page cannot read the peer's certificate itself.
func IDFromFingerprint(value string) (string, error) {
	alg, hexPart, ok := strings.Cut(strings.TrimSpace(value), " ")
	if !ok || !strings.EqualFold(alg, "sha-256") {
		return "", fmt.Errorf("identity: fingerprint %.20q is not sha-256", value)
	}
	raw, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(hexPart), ":", ""))
	if err != nil || len(raw) != sha256.Size {
		return "", fmt.Errorf("identity: malformed sha-256 fingerprint %.40q", hexPart)
	}
	return idEncoding.EncodeToString(raw), nil
}
