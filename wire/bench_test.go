package wire

import (
	"bytes"
	"math/rand/v2"
	"slices"
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

// benchNow is a wall-clock time in ms since the epoch (2026-09-21), as the runtime's cores
// tick with; the catch-up samples cover the default Digest range, 290 s to 2 s before it.
const (
	benchNow      = 1_790_000_000_000
	benchRangeLo  = benchNow - 290_000
	benchRangeHi  = benchNow - 2_000
	benchRangeLen = benchRangeHi - benchRangeLo
)

// benchDigest16 is a detailed Digest as a default core sends it: the range in 16 spans.
func benchDigest16() gossip.Message {
	rng := rand.New(rand.NewPCG(1, 16))
	spans := make([]gossip.Span, 16)
	for i := range spans {
		spans[i] = gossip.Span{From: benchRangeLo + benchRangeLen*int64(i)/16, To: benchRangeLo + benchRangeLen*int64(i+1)/16,
			Count: uint32(40 + rng.IntN(40)), Hash: rng.Uint64()}
	}
	return gossip.Message{Type: gossip.Digest, Salt: rng.Uint64(), Spans: spans}
}

// benchRefs returns n refs of random IDs at random times in the range, sorted by time and ID
// as a core lists its history.
func benchRefs(n int) []gossip.MessageRef {
	rng := rand.New(rand.NewPCG(2, uint64(n)))
	refs := make([]gossip.MessageRef, n)
	for i := range refs {
		refs[i].Time = benchRangeLo + rng.Int64N(benchRangeLen)
		for k := range refs[i].ID {
			refs[i].ID[k] = byte(rng.Uint32())
		}
	}
	slices.SortFunc(refs, func(a, b gossip.MessageRef) int {
		if a.Time != b.Time {
			return int(a.Time - b.Time)
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	return refs
}

// benchHave1024 is a Have as a default core sends it at its limit: one span, 1,024 refs.
func benchHave1024() gossip.Message {
	return gossip.Message{Type: gossip.Have, Spans: []gossip.Span{{From: benchRangeLo, To: benchRangeHi, Count: 1024}},
		Refs: benchRefs(1024)}
}

// benchPull1024 pulls what benchHave1024 lists.
func benchPull1024() gossip.Message {
	return gossip.Message{Type: gossip.Pull, Refs: benchRefs(1024)}
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
func BenchmarkAppendDigest16(b *testing.B)         { benchAppend(b, benchDigest16()) }
func BenchmarkDecodeDigest16(b *testing.B)         { benchDecode(b, benchDigest16()) }
func BenchmarkAppendHave1024(b *testing.B)         { benchAppend(b, benchHave1024()) }
func BenchmarkDecodeHave1024(b *testing.B)         { benchDecode(b, benchHave1024()) }
func BenchmarkAppendPull1024(b *testing.B)         { benchAppend(b, benchPull1024()) }
func BenchmarkDecodePull1024(b *testing.B)         { benchDecode(b, benchPull1024()) }
