// Package signaling defines the JSON-over-WebSocket protocol rtcmesh nodes use to meet:
// every message type, every error code, the validation rules and a strict parser.
// It has no network code; the server lives in signaling/signalserver and the Go client in
// signaling/signalclient, so browsers (js/wasm) and tools can share these types.
//
// # Transport
//
// One WebSocket per node, mounted by the binary at /ws. Every message is one JSON object in
// one text frame, with a "type" field naming the message. Binary frames are rejected.
// A frame is at most the server's MaxFrameSize bytes (default 64 KiB); the server sends
// WebSocket pings and closes connections that answer nothing for its pong timeout.
//
// # Conversation
//
//	client → server  {"type":"hello","id":"<node id>","network":"<name>","token":"<optional>"}
//	server → client  {"type":"welcome","id":"<echo>","ice_servers":[{"urls":[...],"username":..,"credential":..}],
//	                   "contacts":["<id>",...],"limits":{"max_frame_size":65536,"rate":20,"burst":100}}
//	client → server  {"type":"offer","to":"<id>","sdp":"<opaque>"}
//	server → target  {"type":"offer","from":"<sender id, stamped by the server>","sdp":"<opaque>"}
//	(same shape for "answer" with "sdp", and "candidate" with "candidate": an opaque string,
//	 typically JSON.stringify(RTCIceCandidateInit))
//	client → server  {"type":"peers","max":8}            ask for a fresh random sample of live peers
//	server → client  {"type":"peer-list","peers":["<id>",...]}
//	server → client  {"type":"peer-left","id":"<id>"}   a peer this client exchanged signaling with
//	                                                    disconnected from the server
//	server → client  {"type":"error","code":"<code>","message":"<text>","fatal":true,"to":"<id>"}
//	server → client  {"type":"bye","reason":"<text>"}  the server is shutting down; reconnect later
//
// hello must be the first message and is sent once. The server never trusts "from": it
// overwrites it with the sender's registered ID, so a receiver knows which connection sent a
// relay. That only proves which WebSocket spoke; what stops impersonation is the DTLS
// fingerprint check on the link itself (see DESIGN.md, Identity).
//
// # Identifiers
//
// A node ID is 1..64 characters of [A-Za-z0-9._-]. The runtime uses the lower-case base32
// (no padding) of the SHA-256 of its DTLS certificate, 52 characters of [a-z2-7], which fits.
// A network name follows the same rule. Both rules keep IDs safe to log and to put in URLs.
//
// # Errors
//
// Before closing a connection for a fatal reason the server sends an error message with
// "fatal":true, then a WebSocket close frame whose reason text is the same code. Non-fatal
// errors (unknown_target, and after hello: malformed, unknown_type, unexpected_message) drop
// only the offending message. The codes are the ErrorCode constants in this package.
//
// # Duplicate IDs
//
// If a hello names an ID that is already connected in that network, the newer connection
// replaces the older one, which receives a fatal "replaced" error. A rebooted node reconnecting
// before the server noticed its old connection died must not be locked out. A client that was
// replaced should not reconnect on its own: another instance with its identity is now online,
// and two such instances would otherwise replace each other forever.
//
// # Strictness and evolution
//
// ParseMessage rejects unknown fields, fields spelled in a different case, trailing data and
// values outside the documented bounds. The protocol evolves by adding message types, never by
// adding fields to an existing type: a server answers an unknown type after hello with a
// non-fatal unknown_type error, and the Go client ignores (and logs) unknown types, so old and
// new peers keep talking.
//
// # Closed networks
//
// A server may require a token for some networks. The token is the HMAC-SHA256 of the network
// name under that network's secret, in hex or in base64url (padded or not); see NetworkToken.
// A wrong or missing token gets a fatal "unauthorized" error.
package signaling
