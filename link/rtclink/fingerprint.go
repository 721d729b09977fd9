package rtclink

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rtcmesh/rtcmesh/identity"
)

// checkFingerprints is the browser build's identity check (see transport_js.go), kept
// platform-neutral so that it is tested against real pion offers. It accepts sdp only if it
// has a fingerprint and every a=fingerprint line in it is the sha-256 of the certificate
// behind id. Requiring all of them (not any) stops a peer from adding a matching line beside
// the one the browser would verify.
func checkFingerprints(sdp, id string) error {
	found := 0
	for _, line := range strings.Split(sdp, "\n") {
		value, ok := strings.CutPrefix(strings.TrimSpace(line), "a=fingerprint:")
		if !ok {
			continue
		}
		got, err := identity.IDFromFingerprint(value)
		if err != nil {
			return err
		}
		if got != id {
			return fmt.Errorf("certificate of %s, not %s", short(got), short(id))
		}
		found++
	}
	if found == 0 {
		return errors.New("the peer's description has no fingerprint")
	}
	return nil
}
