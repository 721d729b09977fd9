package wire

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode. Whatever happens, Decode must not panic; an
// error must be an *Error of one of the decode kinds; and a frame it accepts must re-encode to
// exactly the input bytes (every frame has one encoding), with a payload that aliases the
// input and cannot be appended into it.
func FuzzDecode(f *testing.F) {
	for _, v := range readVectors(f) {
		f.Add(v.frame)
	}
	limits := []Limits{DefaultLimits(), {
		MaxFrameSize: 512, MaxIDLength: 8, MaxNodes: 4, MaxAnnouncements: 4, MaxPayload: 64, MaxReasonLength: 8,
		MaxProof: 16,
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
