package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/membership"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.txt from the encoder (only for a deliberate format change, which also bumps Version)")

const vectorsPath = "testdata/vectors.txt"

const vectorsHeader = `# rtcmesh wire format, version 2: test vectors.
# One frame per line: a name, then the frame in hex. TestGoldenVectors encodes the messages
# named in samples_test.go and compares with these bytes, and decodes these bytes back to the
# messages, so the format cannot change by accident. A deliberate change bumps wire.Version and
# regenerates this file with: go test ./wire -run TestGoldenVectors -update
`

type vector struct {
	name  string
	frame []byte
}

// readVectors parses testdata/vectors.txt.
func readVectors(tb testing.TB) []vector {
	tb.Helper()
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		tb.Fatalf("read test vectors: %v", err)
	}
	var out []vector
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, hexFrame, ok := strings.Cut(text, " ")
		if !ok {
			tb.Fatalf("%s:%d: want \"name hex\", got %q", vectorsPath, line, text)
		}
		frame, err := hex.DecodeString(strings.TrimSpace(hexFrame))
		if err != nil {
			tb.Fatalf("%s:%d: %v", vectorsPath, line, err)
		}
		out = append(out, vector{name, frame})
	}
	return out
}

func TestGoldenVectors(t *testing.T) {
	samples := goldenSamples()
	if *update {
		var buf strings.Builder
		buf.WriteString(vectorsHeader)
		for _, s := range samples {
			frame, err := appendFrame(nil, s.frame)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			fmt.Fprintf(&buf, "%s %x\n", s.name, frame)
		}
		if err := os.MkdirAll(filepath.Dir(vectorsPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsPath, []byte(buf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s with %d vectors", vectorsPath, len(samples))
	}

	vectors := readVectors(t)
	byName := make(map[string][]byte, len(vectors))
	for _, v := range vectors {
		if _, dup := byName[v.name]; dup {
			t.Errorf("vector %s appears twice", v.name)
		}
		byName[v.name] = v.frame
	}
	if len(vectors) != len(samples) {
		t.Errorf("%d vectors in %s, %d samples in samples_test.go", len(vectors), vectorsPath, len(samples))
	}
	limits := DefaultLimits()
	for _, s := range samples {
		want, ok := byName[s.name]
		if !ok {
			t.Errorf("%s: no vector in %s", s.name, vectorsPath)
			continue
		}
		got, err := appendFrame(nil, s.frame)
		if err != nil {
			t.Errorf("%s: encode: %v", s.name, err)
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s: encoded\n  %x\nwant\n  %x", s.name, got, want)
		}
		decoded, err := limits.Decode(want)
		if err != nil {
			t.Errorf("%s: decode: %v", s.name, err)
		} else if !framesEqual(decoded, s.frame) {
			t.Errorf("%s: decoded %+v\nwant %+v", s.name, decoded, s.frame)
		}
	}
}

// TestGoldenCoversEveryType makes sure a new message type cannot be added without a vector.
func TestGoldenCoversEveryType(t *testing.T) {
	seen := map[[2]uint8]bool{}
	for _, s := range goldenSamples() {
		f := s.frame
		var typ uint8
		switch f.Protocol {
		case ProtocolMembership:
			typ = uint8(f.Membership.Type)
		case ProtocolGossip:
			typ = uint8(f.Gossip.Type)
		case ProtocolControl:
			typ = uint8(f.Control.Type)
		}
		seen[[2]uint8{uint8(f.Protocol), typ}] = true
	}
	for p, maxType := range map[Protocol]int{ProtocolMembership: 8, ProtocolGossip: 8, ProtocolControl: 4} {
		for typ := 1; typ <= maxType; typ++ {
			if !seen[[2]uint8{uint8(p), uint8(typ)}] {
				t.Errorf("no golden vector for %s %s", p, typeName(p, uint8(typ)))
			}
		}
		if valid := validType(p, uint8(maxType+1)); valid {
			t.Errorf("%s has a type %d beyond the %d this test knows: add vectors for it", p, maxType+1, maxType)
		}
	}
}

func validType(p Protocol, t uint8) bool {
	switch p {
	case ProtocolMembership:
		return membership.MessageType(t).Valid()
	case ProtocolGossip:
		return gossip.MessageType(t).Valid()
	case ProtocolControl:
		return ControlType(t).Valid()
	}
	return false
}
