package chat

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	sent := time.UnixMilli(1_764_000_000_123)
	for _, m := range []Message{
		{Text: "hello", SentAt: sent},
		{Text: "no time"},
		{Text: "ünïcødé ✓ \"quotes\" \n newline", SentAt: sent},
		{Text: strings.Repeat("x", MaxTextBytes), SentAt: sent},
	} {
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(%q): %v", m.Text, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(%s): %v", b, err)
		}
		if got.Text != m.Text || !got.SentAt.Equal(m.SentAt) {
			t.Errorf("round trip of %+v gave %+v", m, got)
		}
	}
}

func TestEncodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		text string
		want error
	}{
		{"", ErrEmpty},
		{strings.Repeat("x", MaxTextBytes+1), ErrTooLong},
		{"bad \xff byte", ErrInvalidUTF8},
	} {
		if _, err := Encode(Message{Text: tc.text}); !errors.Is(err, tc.want) {
			t.Errorf("Encode(%.20q) = %v, want %v", tc.text, err, tc.want)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, payload := range []string{
		"", "plain text", "[1,2]", `{"text": 5}`, `{"text": ""}`, `{"sent_ms": 5}`,
		`{"text": "x", "sent_ms": -1}`, `{"text": "x", "sent_ms": "soon"}`,
		`{"text": "` + strings.Repeat("y", MaxTextBytes+1) + `"}`,
	} {
		if m, err := Decode([]byte(payload)); err == nil {
			t.Errorf("Decode(%.40q) = %+v, want an error", payload, m)
		}
	}
	// Unknown fields are allowed, for later versions.
	if m, err := Decode([]byte(`{"text":"x","sent_ms":7,"color":"red"}`)); err != nil || m.Text != "x" {
		t.Errorf("Decode with an unknown field = %+v, %v", m, err)
	}
}

func TestLatency(t *testing.T) {
	sent := time.UnixMilli(1000)
	if d, ok := Latency(Message{Text: "x", SentAt: sent}, sent.Add(42*time.Millisecond)); !ok || d != 42*time.Millisecond {
		t.Errorf("Latency = %v, %v; want 42ms, true", d, ok)
	}
	if d, ok := Latency(Message{Text: "x", SentAt: sent}, sent.Add(-time.Second)); !ok || d != 0 {
		t.Errorf("Latency with a clock behind = %v, %v; want 0, true", d, ok)
	}
	if _, ok := Latency(Message{Text: "x"}, sent); ok {
		t.Error("Latency without a send time reported ok")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"text":"hi","sent_ms":1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", m, err)
		}
		if m2, err := Decode(again); err != nil || m2.Text != m.Text || !m2.SentAt.Equal(m.SentAt) {
			t.Fatalf("re-decode of %s = %+v, %v", again, m2, err)
		}
	})
}
