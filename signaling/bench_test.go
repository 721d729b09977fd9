package signaling

import "testing"

var benchCandidate = []byte(`{"type":"candidate","to":"abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst","candidate":"{\"candidate\":\"candidate:842163049 1 udp 1677729535 127.0.0.1 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}"}`)

func BenchmarkParseCandidate(b *testing.B) {
	b.SetBytes(int64(len(benchCandidate)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMessage(benchCandidate, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalCandidate(b *testing.B) {
	m, err := ParseMessage(benchCandidate, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}
