package signaling

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Type is the value of a message's "type" field.
type Type string

// Message types. The direction each one travels is in the package doc.
const (
	TypeChallenge Type = "challenge"
	TypeHello     Type = "hello"
	TypeWelcome   Type = "welcome"
	TypeOffer     Type = "offer"
	TypeAnswer    Type = "answer"
	TypeCandidate Type = "candidate"
	TypePeers     Type = "peers"
	TypePeerList  Type = "peer-list"
	TypePeerLeft  Type = "peer-left"
	TypeError     Type = "error"
	TypeBye       Type = "bye"
)

// ProtocolVersion is the signaling protocol this package speaks. It travels in challenge and
// hello, the two messages whose shape changed from version 1 (a hello that named an ID and
// proved nothing) to version 2 (a hello that proves possession of the ID's key).
const ProtocolVersion = 2

// Sizes of the binary fields of challenge and hello, before base64url encoding. PublicKeySize
// and SignatureSize are those of identity keys (Ed25519); this package does not import
// identity, and a test checks that the two agree.
const (
	// NonceSize is the size of the server's challenge nonce.
	NonceSize = 32
	// PublicKeySize is the size of hello.public_key.
	PublicKeySize = 32
	// SignatureSize is the size of hello.signature.
	SignatureSize = 64
	// WorkNonceSize is the size of hello.work (identity.WorkNonceSize).
	WorkNonceSize = 8
	// MaxPowBits bounds challenge.pow_bits (identity.MaxWorkBits).
	MaxPowBits = 32
)

// Protocol bounds that do not depend on server configuration.
const (
	// DefaultMaxFrameSize is the server's default frame limit and ParseMessage's limit when
	// given a non-positive size.
	DefaultMaxFrameSize = 64 << 10
	// MaxIDLength bounds node IDs and network names.
	MaxIDLength = 64
	// MaxTokenLength bounds hello.token; real tokens are 64 (hex) or 43/44 (base64url) chars.
	MaxTokenLength = 256
	// MaxTextLength bounds human-readable texts (error.message, bye.reason).
	MaxTextLength = 1024
	// MaxURLLength bounds one ICE server URL, username or credential.
	MaxURLLength = 1024
	// MaxListLength bounds contacts, peer-list and ICE server lists, and peers.max.
	MaxListLength = 1000
)

// Message is one protocol message. The concrete types are pointers: *Challenge, *Hello, *Welcome,
// *Offer, *Answer, *Candidate, *PeersRequest, *PeerList, *PeerLeft, *Error and *Bye.
type Message interface {
	// Type is the message's "type" field.
	Type() Type
	// Validate checks every field against the documented bounds.
	Validate() error
}

// Challenge is the first message of every connection (server → client): a fresh random nonce
// that the client signs in its hello, so a captured hello cannot be replayed on another
// connection.
type Challenge struct {
	// Version is the server's protocol version, ProtocolVersion.
	Version int `json:"version"`
	// Nonce is NonceSize random bytes in unpadded base64url (EncodeBinary).
	Nonce string `json:"nonce"`
	// PowBits is the proof-of-work difficulty the server requires of identity keys (see
	// identity.CheckWork): the hello must carry a work nonce of at least this many bits. It is
	// absent (0) when the server requires none, so servers without proof of work send the
	// challenge they always sent.
	PowBits int `json:"pow_bits,omitempty"`
}

// Hello is the client's first message (client → server), the answer to the challenge. It
// proves that the client holds the private key of PublicKey: Signature is that key's signature
// of HelloTranscript's bytes, identity.Transcript(identity.LabelSignalingHello, nonce,
// []byte(network)). The server derives the node ID from PublicKey.
type Hello struct {
	// Version is the client's protocol version, ProtocolVersion.
	Version int `json:"version"`
	// ID optionally names the ID the client expects; if present it must be the one derived
	// from PublicKey.
	ID      string `json:"id,omitempty"`
	Network string `json:"network"`
	Token   string `json:"token,omitempty"`
	// PublicKey is the identity public key, PublicKeySize bytes in unpadded base64url.
	PublicKey string `json:"public_key"`
	// Signature is SignatureSize bytes in unpadded base64url.
	Signature string `json:"signature"`
	// Work is the key's proof-of-work nonce, WorkNonceSize bytes in unpadded base64url. A
	// client sends it only when the challenge asked for work (pow_bits), so a server that
	// never asks never sees the field.
	Work string `json:"work,omitempty"`
}

// ICEServer has the shape of the browser's RTCIceServer, so a page can pass it straight to
// new RTCPeerConnection({iceServers}).
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Limits tells the client the server's limits so it can pace itself instead of being cut off.
type Limits struct {
	// MaxFrameSize is the largest frame the server accepts, in bytes.
	MaxFrameSize int `json:"max_frame_size"`
	// Rate is the sustained number of messages per second allowed per connection.
	Rate float64 `json:"rate"`
	// Burst is the token bucket size: how many messages may be sent back to back.
	Burst int `json:"burst"`
}

// Welcome answers a valid hello (server → client).
type Welcome struct {
	// ID is the client's node ID, derived by the server from the hello's proven public key.
	ID string `json:"id"`
	// ICEServers are STUN/TURN servers to use, possibly with fresh ephemeral credentials.
	ICEServers []ICEServer `json:"ice_servers,omitempty"`
	// Contacts are random live peers of the network, never the client itself.
	Contacts []string `json:"contacts,omitempty"`
	// Limits are the server's per-connection limits.
	Limits Limits `json:"limits"`
	// PowBits repeats the challenge's proof-of-work difficulty (absent when 0), so the
	// client's links can require of peers what the server required of everyone.
	PowBits int `json:"pow_bits,omitempty"`
}

// Offer relays an SDP offer. A client sets To; the server delivers it with From set to the
// sender's ID and To cleared.
type Offer struct {
	To   string `json:"to,omitempty"`
	From string `json:"from,omitempty"`
	SDP  string `json:"sdp"`
}

// Answer relays an SDP answer, like Offer.
type Answer struct {
	To   string `json:"to,omitempty"`
	From string `json:"from,omitempty"`
	SDP  string `json:"sdp"`
}

// Candidate relays one trickled ICE candidate, like Offer. Candidate is opaque to the
// server, typically JSON.stringify(RTCIceCandidateInit).
type Candidate struct {
	To        string `json:"to,omitempty"`
	From      string `json:"from,omitempty"`
	Candidate string `json:"candidate"`
}

// PeersRequest asks the server for a fresh random sample of live peers in the client's
// network (client → server), so a node that lost all its neighbours can rediscover some.
type PeersRequest struct {
	// Max is how many peers the client wants; 0 means the server's default (ContactCount).
	// The server caps it at its MaxPeersReply.
	Max int `json:"max,omitempty"`
}

// PeerList answers a PeersRequest (server → client).
type PeerList struct {
	Peers []string `json:"peers"`
}

// PeerLeft tells a client that a peer it exchanged signaling with has disconnected from the
// server (server → client), so it can abandon a half-finished negotiation at once.
type PeerLeft struct {
	ID string `json:"id"`
}

// Error reports a refused message or connection (server → client).
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message,omitempty"`
	// Fatal is true when the server closes the connection right after this message.
	Fatal bool `json:"fatal,omitempty"`
	// To names the target of the refused relay, for CodeUnknownTarget.
	To string `json:"to,omitempty"`
}

// Error makes *Error usable as a Go error on the client side.
func (e *Error) Error() string {
	if e.Message == "" {
		return "signaling: " + string(e.Code)
	}
	return "signaling: " + string(e.Code) + ": " + e.Message
}

// Bye says the server is going away (server → client); the client should reconnect later.
type Bye struct {
	Reason string `json:"reason,omitempty"`
}

func (*Challenge) Type() Type    { return TypeChallenge }
func (*Hello) Type() Type        { return TypeHello }
func (*Welcome) Type() Type      { return TypeWelcome }
func (*Offer) Type() Type        { return TypeOffer }
func (*Answer) Type() Type       { return TypeAnswer }
func (*Candidate) Type() Type    { return TypeCandidate }
func (*PeersRequest) Type() Type { return TypePeers }
func (*PeerList) Type() Type     { return TypePeerList }
func (*PeerLeft) Type() Type     { return TypePeerLeft }
func (*Error) Type() Type        { return TypeError }
func (*Bye) Type() Type          { return TypeBye }

// messageSpec says how to decode one type: a constructor and its exact JSON field names.
type messageSpec struct {
	newMessage func() Message
	fields     map[string]bool
}

// specs is read-only after init; it is a table, not mutable state.
var specs = map[Type]messageSpec{
	TypeChallenge: spec(func() Message { return new(Challenge) }, "version", "nonce", "pow_bits"),
	TypeHello:     spec(func() Message { return new(Hello) }, "version", "id", "network", "token", "public_key", "signature", "work"),
	TypeWelcome:   spec(func() Message { return new(Welcome) }, "id", "ice_servers", "contacts", "limits", "pow_bits"),
	TypeOffer:     spec(func() Message { return new(Offer) }, "to", "from", "sdp"),
	TypeAnswer:    spec(func() Message { return new(Answer) }, "to", "from", "sdp"),
	TypeCandidate: spec(func() Message { return new(Candidate) }, "to", "from", "candidate"),
	TypePeers:     spec(func() Message { return new(PeersRequest) }, "max"),
	TypePeerList:  spec(func() Message { return new(PeerList) }, "peers"),
	TypePeerLeft:  spec(func() Message { return new(PeerLeft) }, "id"),
	TypeError:     spec(func() Message { return new(Error) }, "code", "message", "fatal", "to"),
	TypeBye:       spec(func() Message { return new(Bye) }, "reason"),
}

// nestedFields lists the exact field names allowed inside nested objects, so their unknown
// fields are rejected like top-level ones.
var (
	iceServerFields = map[string]bool{"urls": true, "username": true, "credential": true}
	limitsFields    = map[string]bool{"max_frame_size": true, "rate": true, "burst": true}
)

func spec(f func() Message, fields ...string) messageSpec {
	s := messageSpec{newMessage: f, fields: make(map[string]bool, len(fields))}
	for _, name := range fields {
		s.fields[name] = true
	}
	return s
}

// ParseMessage decodes and validates one frame. maxSize bounds the frame in bytes; a
// non-positive maxSize means DefaultMaxFrameSize. Errors are *MessageError wrapping
// ErrTooLarge, ErrMalformed, ErrUnknownType, ErrUnknownField or ErrInvalidField.
//
// The parser is strict: unknown fields, fields spelled in another case, trailing data and
// out-of-bounds values are errors (see the package doc for how the protocol evolves).
func ParseMessage(data []byte, maxSize int) (Message, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrameSize
	}
	if len(data) > maxSize {
		return nil, &MessageError{Err: ErrTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", len(data), maxSize)}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, &MessageError{Err: ErrMalformed, Detail: "not a JSON object: " + err.Error()}
	}
	if fields == nil { // the literal null
		return nil, &MessageError{Err: ErrMalformed, Detail: "not a JSON object: null"}
	}
	rawType, ok := fields["type"]
	if !ok {
		return nil, &MessageError{Err: ErrMalformed, Detail: `missing "type"`}
	}
	var t Type
	if err := json.Unmarshal(rawType, &t); err != nil {
		return nil, &MessageError{Err: ErrMalformed, Detail: `"type" is not a string`}
	}
	s, ok := specs[t]
	if !ok {
		return nil, &MessageError{Type: t, Err: ErrUnknownType, Detail: quoteBounded(string(t))}
	}
	// The version comes before any other check: a message of another version may have other
	// fields, and the peer deserves to hear that the versions differ, not which field is odd.
	if t == TypeChallenge || t == TypeHello {
		if err := checkVersion(t, fields["version"]); err != nil {
			return nil, err
		}
	}
	for name := range fields {
		if name != "type" && !s.fields[name] {
			return nil, &MessageError{Type: t, Err: ErrUnknownField, Detail: quoteBounded(name)}
		}
	}
	if err := checkNestedFields(t, fields); err != nil {
		return nil, err
	}
	m := s.newMessage()
	if err := json.Unmarshal(data, m); err != nil {
		return nil, &MessageError{Type: t, Err: ErrMalformed, Detail: err.Error()}
	}
	if err := m.Validate(); err != nil {
		return nil, &MessageError{Type: t, Err: ErrInvalidField, Detail: err.Error()}
	}
	return m, nil
}

// checkVersion checks the version field of a challenge or hello; raw is nil if it is absent,
// which is how version 1 spoke.
func checkVersion(t Type, raw json.RawMessage) error {
	if raw == nil {
		return &MessageError{Type: t, Err: ErrUnsupportedVersion, Detail: fmt.Sprintf("%s had version 1 (no version field)", t)}
	}
	var v int
	if err := json.Unmarshal(raw, &v); err != nil {
		return &MessageError{Type: t, Err: ErrMalformed, Detail: `"version" is not an integer`}
	}
	if v != ProtocolVersion {
		return &MessageError{Type: t, Err: ErrUnsupportedVersion, Detail: fmt.Sprintf("%s had version %d", t, v)}
	}
	return nil
}

// checkNestedFields rejects unknown fields inside welcome's nested objects.
func checkNestedFields(t Type, fields map[string]json.RawMessage) error {
	if t != TypeWelcome {
		return nil
	}
	check := func(raw json.RawMessage, allowed map[string]bool, where string) error {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return &MessageError{Type: t, Err: ErrMalformed, Detail: where + " is not an object"}
		}
		for name := range obj {
			if !allowed[name] {
				return &MessageError{Type: t, Err: ErrUnknownField, Detail: where + "." + quoteBounded(name)}
			}
		}
		return nil
	}
	if raw, ok := fields["limits"]; ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if err := check(raw, limitsFields, "limits"); err != nil {
			return err
		}
	}
	if raw, ok := fields["ice_servers"]; ok {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return &MessageError{Type: t, Err: ErrMalformed, Detail: "ice_servers is not an array"}
		}
		for i, item := range list {
			if err := check(item, iceServerFields, fmt.Sprintf("ice_servers[%d]", i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Marshal validates m and encodes it as one frame, with its "type" field first.
func Marshal(m Message) ([]byte, error) {
	if m == nil {
		return nil, fmt.Errorf("signaling: marshal nil message")
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("signaling: marshal %s: %w", m.Type(), err)
	}
	// HTML escaping would turn each '<', '>' and '&' of a relayed SDP into six bytes: a
	// sender could make the server queue six times what it sent. Frames are JSON, never HTML.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("signaling: marshal %s: %w", m.Type(), err)
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("signaling: marshal %s: not an object", m.Type())
	}
	typeField, err := json.Marshal(string(m.Type()))
	if err != nil {
		return nil, fmt.Errorf("signaling: marshal %s: %w", m.Type(), err)
	}
	out := make([]byte, 0, len(body)+len(typeField)+10)
	out = append(out, `{"type":`...)
	out = append(out, typeField...)
	if len(body) > 2 { // body is not "{}"
		out = append(out, ',')
	}
	out = append(out, body[1:]...)
	return out, nil
}

// quoteBounded quotes an attacker-controlled string for an error message, cut to a length
// that keeps error replies small.
func quoteBounded(s string) string {
	const limit = 64
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// KnownTypes lists every message type, sorted; for documentation and tests.
func KnownTypes() []Type {
	out := make([]Type, 0, len(specs))
	for t := range specs {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(string(out[i]), string(out[j])) < 0 })
	return out
}
