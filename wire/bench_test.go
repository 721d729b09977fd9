package wire

import (
	"bytes"
	"testing"

	"github.com/rtcmesh/rtcmesh/gossip"
)

func benchGossip1KiB() gossip.Message {
	return gossip.Message{Type: gossip.Gossip, ID: msgID(1), Origin: nodeID("origin"), Hops: 4,
		Payload: bytes.Repeat([]byte{0x5a}, 1024)}
}

// signedGossip1KiB is benchGossip1KiB as a signed broadcast carries it: a sequence number, a
// wall-clock time in ms and a 96-byte proof (Ed25519 public key ‖ signature).
func signedGossip1KiB() gossip.Message {
	m := benchGossip1KiB()
	m.Seq, m.Time, m.Proof = 123456, 1_790_000_000_000, seqBytes(96)
	return m
}

func benchIHave64() gossip.Message {
	ihave := make([]gossip.Announcement, 64)
	for i := range ihave {
		ihave[i] = gossip.Announcement{ID: msgID(byte(i)), Hops: uint16(i % 12)}
	}
	return gossip.Message{Type: gossip.IHave, IHave: ihave}
}

func benchAppend(b *testing.B, m gossip.Message) {
	buf, err := AppendGossip(nil, m)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = AppendGossip(buf[:0], m); err != nil {
			b.Fatal(err)
		}
	}
}

func benchDecode(b *testing.B, m gossip.Message) {
	frame, err := AppendGossip(nil, m)
	if err != nil {
		b.Fatal(err)
	}
	l := DefaultLimits()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendGossip1KiB(b *testing.B)       { benchAppend(b, benchGossip1KiB()) }
func BenchmarkDecodeGossip1KiB(b *testing.B)       { benchDecode(b, benchGossip1KiB()) }
func BenchmarkAppendGossip1KiBSigned(b *testing.B) { benchAppend(b, signedGossip1KiB()) }
func BenchmarkDecodeGossip1KiBSigned(b *testing.B) { benchDecode(b, signedGossip1KiB()) }
func BenchmarkAppendIHave64(b *testing.B)          { benchAppend(b, benchIHave64()) }
func BenchmarkDecodeIHave64(b *testing.B)          { benchDecode(b, benchIHave64()) }
