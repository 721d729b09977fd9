//go:build !js

package rtclink

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// offerSDP returns a real pion offer made with a fresh disposable certificate, and the
// certificate's hash.
func offerSDP(t *testing.T) (sdp string, certHash []byte) {
	t.Helper()
	cert, hash, err := disposableCertificate()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{Certificates: []webrtc.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.CreateDataChannel("x", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP, hash
}

func TestSDPFingerprintOfPionOffers(t *testing.T) {
	sdp, alice := offerSDP(t)
	got, err := sdpFingerprint(sdp)
	if err != nil || !bytes.Equal(got, alice) {
		t.Fatalf("alice's own offer: %x, %v; want %x", got, err, alice)
	}
	// Mallory adds her fingerprint beside alice's, hoping the proof check reads one while the
	// browser verifies the other.
	mallorySDP, _ := offerSDP(t)
	var mine string
	for _, line := range strings.Split(mallorySDP, "\n") {
		if strings.HasPrefix(line, "a=fingerprint:") {
			mine = strings.TrimSpace(line)
		}
	}
	mixed := strings.Replace(sdp, "a=fingerprint:", mine+"\r\na=fingerprint:", 1)
	if _, err := sdpFingerprint(mixed); err == nil {
		t.Error("an offer with a second, foreign fingerprint was accepted")
	}
	var stripped []string
	for _, line := range strings.Split(sdp, "\n") {
		if !strings.HasPrefix(line, "a=fingerprint:") {
			stripped = append(stripped, line)
		}
	}
	if _, err := sdpFingerprint(strings.Join(stripped, "\n")); err == nil {
		t.Error("an offer without a fingerprint was accepted")
	}
	weak := strings.Replace(sdp, "a=fingerprint:sha-256", "a=fingerprint:sha-1", 1)
	if _, err := sdpFingerprint(weak); err == nil {
		t.Error("an offer with a sha-1 fingerprint was accepted")
	}
}
