package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
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
	// catchUpMesh waits for each node's first neighbour, not for the whole mesh: until nodes[0]
	// has a link or a route to ids[3], the line fails with "no route", as it should; it is typed
	// again until it leaves (a slow, loaded machine forms the mesh in seconds, not at once).
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := io.WriteString(nodes[0].stdin, "@"+ids[3]+" just for you\n"); err != nil {
			t.Fatal(err)
		}
		m := nodes[0].await("direct_sent or direct_failed", func(m map[string]any) bool {
			return (m["event"] == "direct_sent" || m["event"] == "direct_failed") && m["peer"] == ids[3]
		})
		if m["event"] == "direct_sent" {
			break
		}
		if reason, _ := m["reason"].(string); !strings.Contains(reason, "no route") || time.Now().After(deadline) {
			t.Fatalf("the direct message did not leave: %v", m)
		}
		t.Logf("not yet: %v", m["reason"])
		time.Sleep(500 * time.Millisecond)
	}
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
