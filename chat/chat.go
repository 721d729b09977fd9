// Package chat is the payload format of the demo's text broadcasts: a short text and the time
// its author sent it, so that every receiver, Go node or browser tab, can show how long the
// message took to cross the mesh. The overlay itself carries payloads as opaque bytes; only
// the demo, `rtcmesh node` and the web page speak this format.
//
// A message is a JSON object {"text": "...", "sent_ms": <Unix milliseconds>}. JSON keeps the
// payload readable in logs and trivially produced by other tools; unknown fields are ignored
// so that later versions can add some.
package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// MaxTextBytes bounds a message's text. It keeps a chat message well inside a broadcast's
// payload limit (gossip MaxPayload, 64 KiB by default) and the page readable.
const MaxTextBytes = 4096

// Message is one chat broadcast.
type Message struct {
	// Text is what the author wrote: valid UTF-8, 1 to MaxTextBytes bytes.
	Text string
	// SentAt is when the author broadcast it, by the author's clock; zero when unknown.
	SentAt time.Time
}

type jsonMessage struct {
	Text   string `json:"text"`
	SentMs int64  `json:"sent_ms,omitempty"`
}

// Errors of Encode and Decode.
var (
	ErrEmpty       = errors.New("chat: empty text")
	ErrTooLong     = fmt.Errorf("chat: text longer than %d bytes", MaxTextBytes)
	ErrInvalidUTF8 = errors.New("chat: text is not valid UTF-8")
)

func checkText(s string) error {
	switch {
	case s == "":
		return ErrEmpty
	case len(s) > MaxTextBytes:
		return ErrTooLong
	case !utf8.ValidString(s):
		return ErrInvalidUTF8
	}
	return nil
}

// Encode returns m as a broadcast payload.
func Encode(m Message) ([]byte, error) {
	if err := checkText(m.Text); err != nil {
		return nil, err
	}
	jm := jsonMessage{Text: m.Text}
	if !m.SentAt.IsZero() {
		jm.SentMs = m.SentAt.UnixMilli()
	}
	return json.Marshal(jm)
}

// Decode parses a broadcast payload. A payload that is not a chat message (another
// application's bytes, or a hostile peer's) is an error, never a panic; callers usually
// show such payloads as raw bytes.
func Decode(payload []byte) (Message, error) {
	var jm jsonMessage
	if err := json.Unmarshal(payload, &jm); err != nil {
		return Message{}, fmt.Errorf("chat: not a chat message: %w", err)
	}
	if err := checkText(jm.Text); err != nil {
		return Message{}, err
	}
	if jm.SentMs < 0 {
		return Message{}, fmt.Errorf("chat: negative sent_ms %d", jm.SentMs)
	}
	m := Message{Text: jm.Text}
	if jm.SentMs != 0 {
		m.SentAt = time.UnixMilli(jm.SentMs)
	}
	return m, nil
}

// Latency is how long m took to reach a receiver that got it at receivedAt, by the two
// machines' clocks. ok is false when the author gave no send time. On one machine (the demo)
// the clocks agree; across machines the figure includes their clock offset, and a negative
// result is clamped to zero.
func Latency(m Message, receivedAt time.Time) (d time.Duration, ok bool) {
	if m.SentAt.IsZero() {
		return 0, false
	}
	d = receivedAt.Sub(m.SentAt)
	if d < 0 {
		d = 0
	}
	return d, true
}
