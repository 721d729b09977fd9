package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rtcmesh/rtcmesh/routing"
)

func routedSample() routing.Message {
	return routing.Message{Type: routing.Routed, Source: "alice", Target: "bob", Via: "carol", HopLimit: 7, Waypoints: 1,
		Kind: routing.KindSignal, Time: 1700000000123, Body: []byte(`{"type":"offer"}`), Proof: bytes.Repeat([]byte{9}, 96)}
}

func TestRoutingRoundTrip(t *testing.T) {
	for _, m := range []routing.Message{
		routedSample(),
		{Type: routing.Routed, Source: "a", Target: "b", Kind: routing.KindDirect, Time: -5},
		{Type: routing.View, Nodes: []string{"a", "b", "c"}},
		{Type: routing.View},
	} {
		frame, err := AppendRouting(nil, m)
		if err != nil {
			t.Fatalf("AppendRouting(%+v): %v", m, err)
		}
		f, err := DefaultLimits().Decode(frame)
		if err != nil {
			t.Fatalf("Decode(%x): %v", frame, err)
		}
		got := f.Routing
		if f.Protocol != ProtocolRouting || got.Type != m.Type || got.Source != m.Source || got.Target != m.Target ||
			got.Via != m.Via || got.HopLimit != m.HopLimit || got.Waypoints != m.Waypoints || got.Kind != m.Kind || got.Time != m.Time ||
			!bytes.Equal(got.Body, m.Body) || !bytes.Equal(got.Proof, m.Proof) || strings.Join(got.Nodes, ",") != strings.Join(m.Nodes, ",") {
			t.Fatalf("round trip of %+v gave %+v", m, got)
		}
		if b := got.Body; b != nil && cap(b) != len(b) {
			t.Fatal("body capacity reaches past the field")
		}
	}
}

func TestRoutingEncodeErrors(t *testing.T) {
	for name, m := range map[string]routing.Message{
		"unknown type":   {Type: 9},
		"no source":      {Type: routing.Routed, Target: "b", Kind: routing.KindSignal},
		"no target":      {Type: routing.Routed, Source: "a", Kind: routing.KindSignal},
		"unknown kind":   {Type: routing.Routed, Source: "a", Target: "b", Kind: 9},
		"routed nodes":   {Type: routing.Routed, Source: "a", Target: "b", Kind: routing.KindSignal, Nodes: []string{"x"}},
		"view source":    {Type: routing.View, Source: "a"},
		"view body":      {Type: routing.View, Body: []byte{1}},
		"view empty id":  {Type: routing.View, Nodes: []string{""}},
		"long via":       {Type: routing.Routed, Source: "a", Target: "b", Kind: routing.KindSignal, Via: strings.Repeat("v", 256)},
		"view hop limit": {Type: routing.View, HopLimit: 1},
		"view waypoints": {Type: routing.View, Waypoints: 1},
	} {
		if _, err := AppendRouting(nil, m); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%s: AppendRouting = %v, want ErrInvalidMessage", name, err)
		}
	}
}

func TestRoutingDecodeErrors(t *testing.T) {
	good, err := AppendRouting(nil, routedSample())
	if err != nil {
		t.Fatal(err)
	}
	small := DefaultLimits()
	small.MaxPayload, small.MaxProof, small.MaxNodes = 4, 8, 2
	view, _ := AppendRouting(nil, routing.Message{Type: routing.View, Nodes: []string{"a", "b", "c"}})
	badKind := append([]byte(nil), good...)
	badKind[3+6+4+6+2] = 5 // the kind byte: after source, target, via, hop limit and waypoints
	cases := []struct {
		name   string
		l      Limits
		frame  []byte
		kind   error
		substr string
	}{
		{"unknown type", DefaultLimits(), h("020403"), ErrMalformed, "unknown routing message type 3"},
		{"truncated", DefaultLimits(), good[:len(good)-1], ErrMalformed, "proof"},
		{"trailing", DefaultLimits(), append(append([]byte(nil), good...), 0), ErrMalformed, "trailing"},
		{"body over MaxPayload", small, good, ErrTooLarge, "body"},
		{"view over MaxNodes", small, view, ErrTooLarge, "MaxNodes"},
		{"unknown kind", DefaultLimits(), badKind, ErrMalformed, "unknown kind 5"},
	}
	for _, c := range cases {
		_, err := c.l.Decode(c.frame)
		if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.substr) {
			t.Errorf("%s: Decode = %v, want %v mentioning %q", c.name, err, c.kind, c.substr)
		}
	}
}

// FuzzDecodeRouting starts from routing frames; FuzzDecode's checks apply (no panic, typed
// errors, accepted frames re-encode to the same bytes).
func FuzzDecodeRouting(f *testing.F) {
	for _, m := range []routing.Message{routedSample(), {Type: routing.View, Nodes: []string{"a", "bb"}}} {
		frame, err := AppendRouting(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, err := DefaultLimits().Decode(frame)
		if err != nil {
			var we *Error
			if !errors.As(err, &we) || we.Offset < 0 || we.Offset > len(frame) {
				t.Fatalf("decode error %v is not a well-formed *Error", err)
			}
			return
		}
		again, err := appendFrame(nil, got)
		if err != nil {
			t.Fatalf("decoded %+v from %x, which does not encode: %v", got, frame, err)
		}
		if !bytes.Equal(again, frame) {
			t.Fatalf("decoded %+v from %x, which re-encodes to %x", got, frame, again)
		}
	})
}
