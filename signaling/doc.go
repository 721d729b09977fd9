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
// This is signaling protocol 2 (ProtocolVersion).
//
//	server → client  {"type":"challenge","version":2,"nonce":"<32 random bytes, base64url>","pow_bits":<optional: 1..32>}
//	client → server  {"type":"hello","version":2,"id":"<optional: the ID of public_key>","network":"<name>",
//	                   "token":"<optional>","public_key":"<32 bytes, base64url>","signature":"<64 bytes, base64url>",
//	                   "work":"<optional: 8 bytes, base64url>"}
//	server → client  {"type":"welcome","id":"<the ID of public_key>","ice_servers":[{"urls":[...],"username":..,"credential":..}],
//	                   "contacts":["<id>",...],"limits":{"max_frame_size":65536,"rate":20,"burst":100},"pow_bits":<optional>}
//	client → server  {"type":"offer","to":"<id>","sdp":"<opaque>"}
//	server → target  {"type":"offer","from":"<sender's proven id, stamped by the server>","sdp":"<opaque>"}
//	(same shape for "answer" with "sdp", and "candidate" with "candidate": an opaque string,
//	 typically JSON.stringify(RTCIceCandidateInit))
//	client → server  {"type":"peers","max":8}            ask for a fresh random sample of live peers
//	server → client  {"type":"peer-list","peers":["<id>",...]}
//	server → client  {"type":"peer-left","id":"<id>"}   a peer this client exchanged signaling with
//	                                                    disconnected from the server
//	server → client  {"type":"error","code":"<code>","message":"<text>","fatal":true,"to":"<id>"}
//	server → client  {"type":"bye","reason":"<text>"}  the server is shutting down; reconnect later
//
// The challenge is the first message on every connection the server accepts; its nonce is
// fresh (crypto/rand) for each connection. hello must be the client's first message and is
// sent once, after the challenge.
//
// # Proof of identity
//
// A node ID is the hash of an identity public key (identity.IDFromPublicKey), and hello
// proves that the client holds the private key: "signature" is the key's signature
// (Ed25519) of the transcript
//
//	identity.Transcript(identity.LabelSignalingHello, nonce, []byte(network))
//
// that is the label "rtcmesh signaling hello v1", a zero byte, then the raw 32 nonce bytes
// and the network name, each preceded by its length as a uvarint. The nonce binds the proof
// to this connection (a captured hello cannot be replayed on another), the network binds it
// to the network named in the hello, and the label keeps the signature from being valid
// anywhere else a node's key signs (link proofs, broadcasts).
//
// The server derives the ID from public_key; "id" is optional, and if present must be that
// ID. The welcome tells the client its ID. The proof is checked before anything else about
// the hello (token, network, replacement, TURN credentials) but its proof of work, if the
// server asks for one (below): a hello that fails it gets a
// fatal bad_proof and has no effect. Every relay then carries as "from" the ID its sender
// proved: the server never trusts a "from" sent by a client, so a signal "from" an ID reaches
// anyone only if the sender holds that ID's key. (The link itself proves identities again
// after DTLS; see DESIGN.md, Identity.)
//
// Binary fields (nonce, public_key, signature, work) are unpadded base64url (RFC 4648 §5) of
// exactly NonceSize, PublicKeySize, SignatureSize and WorkNonceSize bytes: 43, 43, 86 and 11
// characters, decoded strictly (non-zero unused bits are an error), so each value has one
// spelling.
//
// # Proof of work
//
// A server may make identities cost work (open networks against Sybils; see identity's
// work.go and README, "Costly identities"). Its challenge then carries "pow_bits", the
// difficulty D, and the hello must carry "work", a nonce such that
// SHA-256(identity.Transcript(identity.LabelWork, public key, nonce)) starts with D zero bits.
// The work is checked before the signature, at the cost of one hash, and a hello without
// enough gets a fatal insufficient_work; the welcome repeats pow_bits so the client's links can
// require the same of peers. The work is per key, not per connection: a node searches once
// (2^D hashes on average) and keeps the nonce beside its key. Both fields are absent when the
// server requires no work, and a client sends "work" only when asked, so servers and clients
// without proof of work speak version 2 exactly as before.
//
// # Versions
//
// challenge and hello carry "version". A hello without it is version 1 (the unproven hello
// of earlier servers): it and any other version get a fatal unsupported_version whose
// message names both, e.g. "this server speaks signaling protocol 2; hello had version 1 (no
// version field)". The version is checked before the fields, so a hello of a later version
// with fields this server does not know still gets that answer. A version-1 client sees a
// challenge (an unknown type, which it ignores) and then that error; a version-2 client of a
// version-1 server waits for a challenge that never comes until its handshake timeout, and
// the Go client says so. A client receiving a challenge of another version stops (the Go
// client returns signalclient.ErrUnsupportedVersion).
//
// # Identifiers
//
// A node ID is 1..64 characters of [A-Za-z0-9._-]. The runtime uses the lower-case base32
// (no padding) of the SHA-256 of its identity public key, 52 characters of [a-z2-7], which
// fits. A network name follows the same rule. Both rules keep IDs safe to log and to put in
// URLs.
//
// # Errors
//
// Before closing a connection for a fatal reason the server sends an error message with
// "fatal":true, then a WebSocket close frame whose reason text is the same code. Non-fatal
// errors (unknown_target, target_busy, and after hello: malformed, unknown_type,
// unexpected_message) drop only the offending message. Connections refused for the server's
// limits (server_full, and per source address: source_full, source_rate_limited) get the
// fatal error and the close frame at once, before any challenge; clients retry with backoff. The codes are the ErrorCode constants in this package. Those of
// the handshake:
//
//	{"type":"error","code":"unsupported_version","message":"this server speaks signaling protocol 2; hello had version 1 (no version field)","fatal":true}
//	{"type":"error","code":"bad_hello","message":"hello: invalid field: public_key is 42 characters, want 43 (32 bytes in unpadded base64url)","fatal":true}
//	{"type":"error","code":"bad_proof","message":"hello.signature does not sign this connection's challenge and network under hello.public_key","fatal":true}
//	{"type":"error","code":"bad_proof","message":"hello.id is not the ID of hello.public_key, <id>","fatal":true}
//	{"type":"error","code":"insufficient_work","message":"identity: insufficient proof of work: no work nonce, and 20 bits are required","fatal":true}
//	{"type":"error","code":"unauthorized","message":"network \"team\" is closed: missing token","fatal":true}
//	{"type":"error","code":"hello_required","message":"first message must be hello, got offer","fatal":true}
//	{"type":"error","code":"handshake_timeout","message":"no hello within 10s","fatal":true}
//
// # Duplicate IDs
//
// If a hello proves an ID that is already connected in that network, the newer connection
// replaces the older one, which receives a fatal "replaced" error. A rebooted node reconnecting
// before the server noticed its old connection died must not be locked out. Only a proven
// hello can do this, so a client told "replaced" knows that its own key is in use by another
// connection. It should not reconnect on its own: another instance with its identity is now
// online, and two such instances would otherwise replace each other forever.
//
// # Strictness and evolution
//
// ParseMessage rejects unknown fields, fields spelled in a different case, trailing data and
// values outside the documented bounds. The protocol evolves by adding message types: a server
// answers an unknown type after hello with a non-fatal unknown_type error, and the Go client
// ignores (and logs) unknown types, so old and new peers keep talking. Changing the fields of
// an existing type needs a new protocol version (as hello's proof did: version 2), which the
// handshake reports clearly instead of failing on a field.
//
// # Closed networks
//
// A server may require a token for some networks. The token is the HMAC-SHA256 of the network
// name under that network's secret, in hex or in base64url (padded or not); see NetworkToken.
// A wrong or missing token gets a fatal "unauthorized" error.
package signaling
