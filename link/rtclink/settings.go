//go:build !js

package rtclink

import (
	"net"
	"net/netip"

	"github.com/pion/webrtc/v4"
)

// NetworkSettings returns pion settings for Config.SettingEngine under which ICE gathers host
// candidates only on addresses inside networks and accepts only remote candidates inside
// them. With 127.0.0.0/8 every packet of every link stays on the machine's loopback, which is
// how tests and single-machine meshes keep their traffic local. Config.MDNS still applies.
func NetworkSettings(networks []netip.Prefix) *webrtc.SettingEngine {
	inside := func(ip net.IP) bool {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return false
		}
		a = a.Unmap()
		for _, p := range networks {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
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
