//go:build js && wasm

package identity

import (
	"fmt"
	"strings"
	"syscall/js"

	"github.com/rtcmesh/rtcmesh/internal/browser"
)

// Identity is, in the browser, an RTCCertificate made by the browser itself: a page cannot
// hand its own key to RTCPeerConnection, but it can create one certificate and give that same
// certificate to every connection, which is all the ID needs. The ID is derived from the
// certificate's SHA-256 fingerprint, the same hash IDFromCertificate takes of the DER on other
// platforms, so Go nodes verify browser peers exactly like any other node.
//
// A browser identity lives as long as the page: this build has no LoadOrCreate.
type Identity struct {
	cert js.Value
	id   string
}

// Generate asks the browser for a fresh ECDSA P-256 certificate. It waits for the browser's
// promise, so it must be called from a goroutine, not from a JavaScript callback.
func Generate() (*Identity, error) {
	pc := js.Global().Get("RTCPeerConnection")
	if pc.Type() != js.TypeFunction {
		return nil, fmt.Errorf("identity: this browser has no WebRTC (RTCPeerConnection is missing)")
	}
	params := map[string]any{"name": "ECDSA", "namedCurve": "P-256"}
	promise, err := browser.Call(pc, "generateCertificate", params)
	if err != nil {
		return nil, fmt.Errorf("identity: generate certificate: %w", err)
	}
	cert, err := browser.Await(promise)
	if err != nil {
		return nil, fmt.Errorf("identity: generate certificate: %w", err)
	}
	id, err := fingerprintID(cert)
	if err != nil {
		return nil, err
	}
	return &Identity{cert: cert, id: id}, nil
}

// fingerprintID derives the ID of a browser certificate from its sha-256 fingerprint.
// RTCCertificate.getFingerprints is not in every browser (Firefox lacks it), so without it
// the fingerprint is read from the SDP of an offer made with the certificate, which is
// where peers will read it too.
func fingerprintID(cert js.Value) (string, error) {
	if cert.Get("getFingerprints").Type() == js.TypeFunction {
		fps, err := browser.Call(cert, "getFingerprints")
		if err != nil {
			return "", fmt.Errorf("identity: certificate fingerprints: %w", err)
		}
		for i := 0; i < fps.Length(); i++ {
			fp := fps.Index(i)
			if id, err := IDFromFingerprint(fp.Get("algorithm").String() + " " + fp.Get("value").String()); err == nil {
				return id, nil
			}
		}
		return "", fmt.Errorf("identity: the browser gave the certificate no sha-256 fingerprint")
	}
	pc, err := newPeerConnection(cert)
	if err != nil {
		return "", err
	}
	defer pc.Call("close")
	pc.Call("createDataChannel", "fingerprint")
	promise, err := browser.Call(pc, "createOffer")
	if err != nil {
		return "", fmt.Errorf("identity: offer to read the fingerprint: %w", err)
	}
	offer, err := browser.Await(promise)
	if err != nil {
		return "", fmt.Errorf("identity: offer to read the fingerprint: %w", err)
	}
	for _, line := range strings.Split(offer.Get("sdp").String(), "\n") {
		if value, ok := strings.CutPrefix(strings.TrimSpace(line), "a=fingerprint:"); ok {
			if id, err := IDFromFingerprint(value); err == nil {
				return id, nil
			}
		}
	}
	return "", fmt.Errorf("identity: the browser's offer has no sha-256 fingerprint")
}

func newPeerConnection(cert js.Value) (js.Value, error) {
	pc, err := browser.New(js.Global().Get("RTCPeerConnection"), map[string]any{"certificates": []any{cert}})
	if err != nil {
		return js.Value{}, fmt.Errorf("identity: RTCPeerConnection: %w", err)
	}
	return pc, nil
}

// ID returns the node ID.
func (id *Identity) ID() string { return id.id }

// JSCertificate returns the RTCCertificate to put in every RTCPeerConnection's
// configuration.
func (id *Identity) JSCertificate() js.Value { return id.cert }
