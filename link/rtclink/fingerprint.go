package rtclink

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// sdpFingerprint returns the DTLS certificate fingerprint (the raw SHA-256) that a session
// description announces. The browser build takes the peer's fingerprint from the peer's SDP,
// which the browser's DTLS handshake verified the certificate against (a page cannot read the
// certificate itself); it is platform-neutral so that it is tested against real pion offers.
//
// Every a=fingerprint line must be sha-256 and all must agree: a description with a second,
// different fingerprint is refused, so a peer cannot announce one value for the proof while
// the browser verifies its certificate against another.
func sdpFingerprint(sdp string) ([]byte, error) {
	var found []byte
	for _, line := range strings.Split(sdp, "\n") {
		value, ok := strings.CutPrefix(strings.TrimSpace(line), "a=fingerprint:")
		if !ok {
			continue
		}
		fp, err := parseFingerprint(value)
		if err != nil {
			return nil, err
		}
		if found != nil && !bytes.Equal(found, fp) {
			return nil, errors.New("the description announces two different fingerprints")
		}
		found = fp
	}
	if found == nil {
		return nil, errors.New("the description has no fingerprint")
	}
	return found, nil
}

// parseFingerprint parses an SDP fingerprint attribute's value, as in "sha-256 AB:CD:…"
// (RFC 8122). Only sha-256 is accepted: it is the hash the link proof signs.
func parseFingerprint(value string) ([]byte, error) {
	alg, hexPart, ok := strings.Cut(strings.TrimSpace(value), " ")
	if !ok || !strings.EqualFold(alg, "sha-256") {
		return nil, fmt.Errorf("fingerprint %.20q is not sha-256", value)
	}
	raw, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(hexPart), ":", ""))
	if err != nil || len(raw) != sha256.Size {
		return nil, fmt.Errorf("malformed sha-256 fingerprint %.40q", hexPart)
	}
	return raw, nil
}
