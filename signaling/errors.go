package signaling

import "errors"

// ErrorCode names why the server refused something. It travels in the "code" field of an
// error message and as the reason text of the WebSocket close frame after a fatal error.
type ErrorCode string

// Error codes. "Fatal" means the server closes the connection after sending the error.
const (
	// CodeFrameTooLarge: a frame exceeded the server's MaxFrameSize. Fatal: the server stops
	// reading a frame once it is too large, so the rest of the stream cannot be trusted.
	CodeFrameTooLarge ErrorCode = "frame_too_large"
	// CodeRateLimited: the connection sent more messages than its token bucket allows
	// (rate and burst are announced in welcome.limits). Fatal: a flooding client is cut off
	// at once rather than costing the server an error reply per excess message; the client
	// reconnects with backoff, which throttles it naturally.
	CodeRateLimited ErrorCode = "rate_limited"
	// CodeHandshakeTimeout: no valid hello arrived within the server's HandshakeTimeout. Fatal.
	CodeHandshakeTimeout ErrorCode = "handshake_timeout"
	// CodeNetworkFull: the network already has MaxPeersPerNetwork members. Fatal.
	CodeNetworkFull ErrorCode = "network_full"
	// CodeServerFull: the server already holds MaxConnections connections. Fatal.
	CodeServerFull ErrorCode = "server_full"
	// CodeSourceFull: the client's source address (its IP; for IPv6 its /64) already holds the
	// server's MaxConnectionsPerSource connections. Fatal; reconnect later, with backoff.
	CodeSourceFull ErrorCode = "source_full"
	// CodeSourceRateLimited: the client's source address opened more connections, or sent more
	// hellos, per minute than the server allows (ConnectionsPerSourcePerMinute,
	// HellosPerSourcePerMinute). Fatal; the message says which. Reconnect later, with backoff.
	CodeSourceRateLimited ErrorCode = "source_rate_limited"
	// CodeTargetBusy: the relay's target has SendQueueBytes of frames waiting to be written (it
	// reads too slowly), or the server's MaxQueuedBytes are in use. Not fatal: the error
	// carries the target in "to" and only that relay is dropped; try again later.
	CodeTargetBusy ErrorCode = "target_busy"
	// CodeUnknownTarget: the "to" of a relay is not connected in the sender's network (or is
	// the sender itself). Not fatal: the error carries the target in "to" and only that relay
	// is dropped.
	CodeUnknownTarget ErrorCode = "unknown_target"
	// CodeMalformed: the frame is not a valid message (bad JSON, binary frame, wrong field
	// types, unknown field, value out of bounds). Fatal before hello, not fatal after.
	CodeMalformed ErrorCode = "malformed"
	// CodeUnknownType: the "type" is not one this server knows. Fatal before hello, not fatal
	// after (so newer clients can probe for newer message types).
	CodeUnknownType ErrorCode = "unknown_type"
	// CodeBadHello: the hello is invalid (bad id, bad network, bad public_key or signature
	// encoding, unknown field). Fatal.
	CodeBadHello ErrorCode = "bad_hello"
	// CodeBadProof: the hello's signature does not verify under its public key for this
	// connection's nonce and the hello's network, or its "id" is not the ID of its public key.
	// Fatal, and checked before anything else about the hello but its proof of work (one
	// hash, CodeInsufficientWork): an unproven hello never touches the network, its members
	// or TURN credentials.
	CodeBadProof ErrorCode = "bad_proof"
	// CodeInsufficientWork: the server requires proof of work on identity keys (the
	// challenge's pow_bits) and the hello's work nonce is missing or does not reach it for
	// hello.public_key. Fatal, and checked first: it costs the server one hash. The client
	// should search for the work (identity.EnsureWork) and reconnect; the Go client does.
	CodeInsufficientWork ErrorCode = "insufficient_work"
	// CodeUnsupportedVersion: a challenge or hello of another protocol version than the
	// receiver's ProtocolVersion (a hello without "version" is version 1). Fatal. The message
	// names both versions.
	CodeUnsupportedVersion ErrorCode = "unsupported_version"
	// CodeUnauthorized: the network is closed and the token is missing or wrong. Fatal.
	CodeUnauthorized ErrorCode = "unauthorized"
	// CodeOriginNotAllowed: a browser connected from an Origin the server does not allow.
	// Fatal; sent right after the upgrade so the page can read why.
	CodeOriginNotAllowed ErrorCode = "origin_not_allowed"
	// CodeHelloRequired: the first message was not a hello. Fatal.
	CodeHelloRequired ErrorCode = "hello_required"
	// CodeUnexpectedMessage: a message only the server may send (welcome, error, …), or a
	// second hello. Not fatal.
	CodeUnexpectedMessage ErrorCode = "unexpected_message"
	// CodeReplaced: a newer connection proved the same ID (the same identity key) in the same
	// network. Fatal for the older connection. Since every hello is proven, the client's own
	// key is in use elsewhere: it should not reconnect (see package doc).
	CodeReplaced ErrorCode = "replaced"
	// CodeSlowConsumer: the connection reads too slowly: its replies overflowed their queue, a
	// write stalled beyond the server's WriteTimeout, or its queue was the largest when the
	// server ran out of MaxQueuedBytes. The queue is full, so this code appears only as the
	// close frame's reason text (or not at all, when the socket is dropped).
	CodeSlowConsumer ErrorCode = "slow_consumer"
	// CodeInternal: the server failed to build a reply (for example its ICEServers hook
	// returned an invalid entry). Fatal; the server logs the details.
	CodeInternal ErrorCode = "internal_error"
)

// Parse errors returned (wrapped in a *MessageError) by ParseMessage. Test with errors.Is.
var (
	// ErrTooLarge: the frame exceeds the size limit given to ParseMessage.
	ErrTooLarge = errors.New("frame too large")
	// ErrMalformed: not a JSON object, missing or non-string type, wrong field types,
	// trailing data.
	ErrMalformed = errors.New("malformed message")
	// ErrUnknownType: a well-formed message whose type this package does not know.
	ErrUnknownType = errors.New("unknown message type")
	// ErrUnknownField: a field that the message's type does not have.
	ErrUnknownField = errors.New("unknown field")
	// ErrInvalidField: a field is missing or its value is out of bounds.
	ErrInvalidField = errors.New("invalid field")
	// ErrUnsupportedVersion: a challenge or hello of another protocol version.
	ErrUnsupportedVersion = errors.New("unsupported protocol version")
)

// MessageError describes why a frame is not a valid message.
type MessageError struct {
	// Type is the message type if it could be read, else empty.
	Type Type
	// Err is one of the sentinel errors above.
	Err error
	// Detail says what exactly is wrong, for humans.
	Detail string
}

func (e *MessageError) Error() string {
	s := e.Err.Error()
	if e.Type != "" {
		s = string(e.Type) + ": " + s
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *MessageError) Unwrap() error { return e.Err }

// CodeFor maps a ParseMessage error to the error code the server reports for it.
// helloPhase is true while the connection has not yet said hello: a broken hello is reported
// as CodeBadHello so the client knows its identity or network is at fault.
func CodeFor(err error, helloPhase bool) ErrorCode {
	var me *MessageError
	if errors.As(err, &me) && helloPhase && me.Type == TypeHello &&
		(errors.Is(err, ErrInvalidField) || errors.Is(err, ErrUnknownField) || errors.Is(err, ErrMalformed)) {
		return CodeBadHello
	}
	switch {
	case errors.Is(err, ErrUnsupportedVersion):
		return CodeUnsupportedVersion
	case errors.Is(err, ErrTooLarge):
		return CodeFrameTooLarge
	case errors.Is(err, ErrUnknownType):
		return CodeUnknownType
	default:
		return CodeMalformed
	}
}
