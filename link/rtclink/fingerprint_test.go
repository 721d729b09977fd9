//go:build !js

package rtclink

import (
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/rtcmesh/rtcmesh/identity"
)

// offerSDP returns a real pion offer made with id's certificate.
func offerSDP(t *testing.T, id *identity.Identity) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{Certificates: []webrtc.Certificate{id.Certificate()}})
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
	return offer.SDP
}

func TestCheckFingerprints(t *testing.T) {
	alice, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	mallory, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	sdp := offerSDP(t, alice)
	if err := checkFingerprints(sdp, alice.ID()); err != nil {
		t.Errorf("alice's own offer refused: %v", err)
	}
	if err := checkFingerprints(sdp, mallory.ID()); err == nil {
		t.Error("alice's offer accepted as mallory's")
	}
	// Mallory adds alice's fingerprint beside her own, hoping the check finds alice's while
	// the browser verifies hers.
	var mine string
	for _, line := range strings.Split(offerSDP(t, mallory), "\n") {
		if strings.HasPrefix(line, "a=fingerprint:") {
			mine = line
		}
	}
	mixed := strings.Replace(sdp, "a=fingerprint:", mine+"\r\na=fingerprint:", 1)
	if err := checkFingerprints(mixed, alice.ID()); err == nil {
		t.Error("an offer with a second, foreign fingerprint was accepted")
	}
	var stripped []string
	for _, line := range strings.Split(sdp, "\n") {
		if !strings.HasPrefix(line, "a=fingerprint:") {
			stripped = append(stripped, line)
		}
	}
	if err := checkFingerprints(strings.Join(stripped, "\n"), alice.ID()); err == nil {
		t.Error("an offer without a fingerprint was accepted")
	}
	weak := strings.Replace(sdp, "a=fingerprint:sha-256", "a=fingerprint:sha-1", 1)
	if err := checkFingerprints(weak, alice.ID()); err == nil {
		t.Error("an offer with a sha-1 fingerprint was accepted")
	}
}
