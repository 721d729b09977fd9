package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestDirectLine(t *testing.T) {
	id := strings.Repeat("a", 52) // a well-formed node ID: 52 characters of base32
	for _, c := range []struct {
		line, peer, text string
		ok               bool
	}{
		{"@" + id + " hello there", id, "hello there", true},
		{"@" + id + " ", id, "", true},
		{"@" + id, "", "", false},              // no text: broadcast as typed
		{"@everyone hello", "", "", false},     // not an ID
		{"hello @" + id + " x", "", "", false}, // not at the start
	} {
		peer, text, ok := directLine([]byte(c.line))
		if ok != c.ok || peer != c.peer || !bytes.Equal(text, []byte(c.text)) {
			t.Errorf("directLine(%q) = %q, %q, %v; want %q, %q, %v", c.line, peer, text, ok, c.peer, c.text, c.ok)
		}
	}
}

// TestDirectMessageBetweenProcesses: `@<ID> text` on one node's standard input reaches that
// node alone as a "direct" event with the sender's proven ID.
func TestDirectMessageBetweenProcesses(t *testing.T) {
	_, nodes, ids := catchUpMesh(t, "direct", 4)
	if _, err := io.WriteString(nodes[0].stdin, "@"+ids[3]+" just for you\n"); err != nil {
		t.Fatal(err)
	}
	nodes[0].await("direct_sent", func(m map[string]any) bool { return m["event"] == "direct_sent" && m["peer"] == ids[3] })
	got := nodes[3].await("the direct message", func(m map[string]any) bool {
		return m["event"] == "direct" && m["data"] == "just for you"
	})
	if got["peer"] != ids[0] {
		t.Errorf("direct message from %v, want %s", got["peer"], ids[0])
	}
	// A line to an ID nobody has fails: no link, no route.
	stranger := strings.Repeat("b", 51) + "a" // well-formed (the last character holds 1 of the hash's bits)
	if _, err := io.WriteString(nodes[0].stdin, "@"+stranger+" anyone?\n"); err != nil {
		t.Fatal(err)
	}
	nodes[0].await("direct_failed", func(m map[string]any) bool { return m["event"] == "direct_failed" && m["peer"] == stranger })
}
