package identity

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
)

// These benchmarks build for Go processes and for js/wasm alike, so the cost of the work can
// be compared where it is done: a Go node (SHA-256 in assembly, with the CPU's SHA extensions
// where it has them) and a browser tab (Go compiled to wasm, SHA-256 in plain Go):
//
//	go test ./identity -run '^$' -bench 'WorkHash|SolveWork' -benchtime 40x
//	GOOS=js GOARCH=wasm go test ./identity -run '^$' -bench 'WorkHash|SolveWork' -benchtime 20x \
//	    -exec "$(go env GOROOT)/lib/wasm/go_js_wasm_exec"   (Node.js; a browser's V8 is alike)

func benchPub(i uint32) []byte {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint32(seed, i)
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}

// BenchmarkWorkHash measures one try of the work search: one SHA-256 of the work transcript
// (two blocks). A difficulty of D bits takes 2^D tries on average.
func BenchmarkWorkHash(b *testing.B) {
	buf := workInput(benchPub(0))
	nonce := buf[workPrefixLen:]
	var n uint64
	for b.Loop() {
		binary.BigEndian.PutUint64(nonce, n)
		n++
		sum := sha256.Sum256(buf)
		_ = sum
	}
}

// BenchmarkSolveWork measures the whole search for one fresh key at each difficulty: the time
// a node spends once per key. Each op is another key, so the average covers the geometric
// spread of the search (1% of keys take more than 4.6 times the mean); tries/op against 2^D
// shows how far this run's keys were from the mean. 24 bits takes seconds per op.
func BenchmarkSolveWork(b *testing.B) {
	for _, bits := range []int{8, 12, 16, 20, 24} {
		b.Run(fmt.Sprintf("bits=%d", bits), func(b *testing.B) {
			var i uint32
			var tries float64
			for b.Loop() {
				pub := benchPub(i)
				i++
				nonce, err := SolveWork(context.Background(), pub, bits, 0)
				if err != nil {
					b.Fatal(err)
				}
				tries += float64(binary.BigEndian.Uint64(nonce) + 1)
			}
			b.ReportMetric(tries/float64(i), "tries/op")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/tries, "ns/try")
		})
	}
}
