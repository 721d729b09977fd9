package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/rtcmesh/rtcmesh/gossip"
)

// FuzzDecode feeds arbitrary bytes to Decode. Whatever happens, Decode must not panic; an
// error must be an *Error of one of the decode kinds; and a frame it accepts must re-encode to
// exactly the input bytes (every frame has one encoding), with a payload that aliases the
// input and cannot be appended into it.
func FuzzDecode(f *testing.F) {
	for _, v := range readVectors(f) {
		f.Add(v.frame)
	}
	// Catch-up frames with extreme values, so the fuzzer starts near the overflow checks.
	for _, m := range []gossip.Message{
		{Type: gossip.Digest, Salt: 1, Spans: []gossip.Span{{From: -1 << 63, To: -1, Count: ^uint32(0), Hash: 1}, {From: -1, To: 1<<63 - 1}}},
		{Type: gossip.Have, Reply: true, Spans: []gossip.Span{{From: -3, To: -2, Count: 1}, {From: -2, To: 1<<63 - 1}},
			Refs: []gossip.MessageRef{{Time: 1<<63 - 1}, {Time: -1}, {Time: -1 << 63}}},
		{Type: gossip.Pull, Refs: extremeRefs(3)},
	} {
		frame, err := AppendGossip(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
	}
	limits := []Limits{DefaultLimits(), {
		MaxFrameSize: 512, MaxIDLength: 8, MaxNodes: 4, MaxAnnouncements: 4, MaxPayload: 64, MaxReasonLength: 8,
		MaxProof: 16, MaxSpans: 4, MaxRefs: 4,
	}}
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, l := range limits {
			got, err := l.Decode(frame)
			if err != nil {
				var we *Error
				if !errors.As(err, &we) {
					t.Fatalf("decode error %v is not an *Error", err)
				}
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("decode error %v is of no decode kind", err)
				}
				if we.Offset < 0 || we.Offset > len(frame) {
					t.Fatalf("decode error %v has offset outside the frame of %d bytes", err, len(frame))
				}
				continue
			}
			again, err := appendFrame(nil, got)
			if err != nil {
				t.Fatalf("decoded %+v from %x, which does not encode: %v", got, frame, err)
			}
			if !bytes.Equal(again, frame) {
				t.Fatalf("decoded %+v from\n  %x\nwhich re-encodes to\n  %x", got, frame, again)
			}
			if p := got.Gossip.Payload; p != nil && cap(p) != len(p) {
				t.Fatalf("payload cap %d > len %d", cap(p), len(p))
			}
			if p := got.Gossip.Proof; p != nil && cap(p) != len(p) {
				t.Fatalf("proof cap %d > len %d", cap(p), len(p))
			}
		}
	})
}

// FuzzCatchUpRoundTrip builds catch-up messages from fuzzed times and values, which random
// frames rarely make valid: AppendGossip must refuse exactly the spans and refs the format
// cannot carry, and whatever it encodes must decode to the same message and re-encode to the
// same bytes.
func FuzzCatchUpRoundTrip(f *testing.F) {
	f.Add(uint8(0), false, uint64(1), int64(1_790_000_000_000), int64(1_790_000_001_000), int64(1_790_000_290_000), uint32(3), uint64(7))
	f.Add(uint8(1), true, uint64(0), int64(-1<<63), int64(-1), int64(1<<63-1), ^uint32(0), uint64(0))
	f.Add(uint8(2), false, uint64(0), int64(1<<63-1), int64(-1), int64(-1<<63), uint32(0), uint64(0))
	f.Add(uint8(2), false, uint64(0), int64(-1<<63), int64(0), int64(0), uint32(0), uint64(0))
	f.Add(uint8(3), false, ^uint64(0), int64(-5), int64(5), int64(5), uint32(1), uint64(1))
	limits := DefaultLimits()
	f.Fuzz(func(t *testing.T, typ uint8, reply bool, salt uint64, t0, t1, t2 int64, count uint32, hash uint64) {
		refs := []gossip.MessageRef{{Time: t0, ID: msgID(1)}, {Time: t1, ID: msgID(2)}, {Time: t2, ID: msgID(3)}}
		var m gossip.Message
		var valid bool
		deltasFit := fitsDiff(t1, t0) && fitsDiff(t2, t1)
		switch typ % 4 {
		case 0:
			m = gossip.Message{Type: gossip.Digest, Salt: salt, Spans: []gossip.Span{
				{From: t0, To: t1, Count: count, Hash: hash}, {From: t1, To: t2, Count: ^count, Hash: ^hash}}}
			valid = t0 < t1 && t1 < t2
		case 1:
			m = gossip.Message{Type: gossip.Have, Reply: reply, Spans: []gossip.Span{{From: t0, To: t1, Count: count}}, Refs: refs}
			if t1 < t2 {
				m.Spans = append(m.Spans, gossip.Span{From: t1 + int64(count%2), To: t2})
			}
			valid = t0 < t1 && (len(m.Spans) == 1 || m.Spans[1].From < t2) && deltasFit
		case 2:
			m = gossip.Message{Type: gossip.Pull, Refs: refs}
			valid = deltasFit
		case 3:
			m = gossip.Message{Type: gossip.History, ID: msgID(4), Origin: "o", Hops: uint16(count), Seq: salt, Time: t0}
			valid = true
		}
		frame, err := AppendGossip(nil, m)
		if (err == nil) != valid {
			t.Fatalf("encoding %+v: error %v, want valid = %v", m, err, valid)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("encode error %v does not wrap ErrInvalidMessage", err)
			}
			return
		}
		got, err := limits.Decode(frame)
		if err != nil {
			t.Fatalf("decoding %+v from %x: %v", m, frame, err)
		}
		if !framesEqual(got, gsp(m)) {
			t.Fatalf("decoded %+v, want %+v", got.Gossip, m)
		}
		again, err := AppendGossip(nil, got.Gossip)
		if err != nil || !bytes.Equal(again, frame) {
			t.Fatalf("re-encoding gave %x, %v; want %x", again, err, frame)
		}
	})
}

// fitsDiff reports whether b - a fits an int64, computed without overflow.
func fitsDiff(b, a int64) bool {
	if a >= 0 {
		return b >= -1<<63+a
	}
	return b <= 1<<63-1+a
}
