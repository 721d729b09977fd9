// Package browser holds the few helpers that rtcmesh's js/wasm twins (identity, the
// signaling client's WebSocket, the WebRTC links, the browser peer) share for calling browser
// APIs from Go: waiting for a Promise, turning a JavaScript exception into an error, and
// copying bytes across. Everything else in the package is built only for GOOS=js.
package browser
