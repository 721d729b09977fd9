//go:build !js

package identity

import (
	"strings"
	"testing"
)

func TestDistinctIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		id, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if seen[id.ID()] {
			t.Fatalf("duplicate ID %s", id.ID())
		}
		seen[id.ID()] = true
	}
}

func TestValidID(t *testing.T) {
	id, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	good := id.ID()
	if !ValidID(good) {
		t.Fatalf("ValidID(%q) = false", good)
	}
	// 256 bits = 51 characters of 5 bits + 1 bit: the last character is 'a'
	// or 'q'; any other last character has stray bits set.
	nonCanonical := "b"
	if good[51] == 'b' {
		nonCanonical = "c"
	}
	bad := []string{
		"",
		good[:51],
		good + "a",
		strings.ToUpper(good),
		good[:50] + "1" + good[51:], // '1' is not in the alphabet
		good[:51] + nonCanonical,
		good[:10] + "=" + good[11:],
	}
	for _, s := range bad {
		if ValidID(s) {
			t.Errorf("ValidID(%q) = true", s)
		}
	}
}
