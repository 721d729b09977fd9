//go:build !js

package rtclink

import "github.com/pion/webrtc/v4"

// SettingEngine is pion's SettingEngine: Config.SettingEngine takes a *webrtc.SettingEngine.
type SettingEngine = webrtc.SettingEngine

// pionICEServers converts the configured servers to pion's type.
func pionICEServers(servers []ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(servers))
	for _, s := range servers {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}
