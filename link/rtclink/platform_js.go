//go:build js && wasm

package rtclink

import "net/netip"

// SettingEngine has no browser counterpart: the browser decides what pion's SettingEngine
// would. Config.SettingEngine is ignored in this build.
type SettingEngine struct{}

// NetworkSettings exists so that code shared with Go processes compiles in the browser; the
// browser decides which addresses ICE uses, so the networks are ignored and the settings are
// empty.
func NetworkSettings([]netip.Prefix) *SettingEngine { return &SettingEngine{} }
