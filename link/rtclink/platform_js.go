//go:build js && wasm

package rtclink

// SettingEngine has no browser counterpart: the browser decides what pion's SettingEngine
// would. Config.SettingEngine is ignored in this build.
type SettingEngine struct{}
