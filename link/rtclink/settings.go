//go:build !js

package rtclink

import (
	"net/netip"

	"github.com/pion/webrtc/v4"
)

// NetworkSettings returns pion settings for Config.SettingEngine under which ICE gathers host
// candidates only on addresses inside networks and accepts only remote candidates inside
// them. With 127.0.0.0/8 every packet of every link stays on the machine's loopback, which is
// how tests and single-machine meshes keep their traffic local. Config.MDNS still applies.
// Config.SetICENetworks sets these settings and the shared UDP socket's networks together.
func NetworkSettings(networks []netip.Prefix) *webrtc.SettingEngine {
	inside := insideNetworks(networks)
	se := &webrtc.SettingEngine{}
	for _, p := range networks {
		if p.Addr().IsLoopback() {
			se.SetIncludeLoopbackCandidate(true) // pion leaves loopback out unless asked
		}
	}
	se.SetIPFilter(inside)
	se.SetRemoteIPFilter(inside)
	return se
}
