package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtcmesh/rtcmesh/identity"
)

// attacker is a hostile signaling client speaking raw JSON frames, as a script would.
type attacker struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialAttacker(t *testing.T, ws string) (*attacker, []byte) {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(ws, nil)
	if err != nil {
		t.Fatalf("attacker: dial %s: %v", ws, err)
	}
	t.Cleanup(func() { c.Close() })
	a := &attacker{t: t, conn: c}
	ch := a.read()
	if ch["type"] != "challenge" {
		t.Fatalf("attacker: first frame %v, want a challenge", ch)
	}
	nonce, err := base64.RawURLEncoding.DecodeString(ch["nonce"].(string))
	if err != nil {
		t.Fatalf("attacker: challenge nonce: %v", err)
	}
	return a, nonce
}

func (a *attacker) send(m map[string]any) {
	a.t.Helper()
	if err := a.conn.WriteJSON(m); err != nil {
		a.t.Fatalf("attacker: send %v: %v", m["type"], err)
	}
}

func (a *attacker) read() map[string]any {
	a.t.Helper()
	a.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m map[string]any
	if err := a.conn.ReadJSON(&m); err != nil {
		a.t.Fatalf("attacker: read: %v", err)
	}
	return m
}

// expectRefused reads until the server's fatal error and checks its code.
func (a *attacker) expectRefused(what, code string) {
	a.t.Helper()
	for {
		m := a.read()
		if m["type"] == "welcome" {
			a.t.Fatalf("%s: the server welcomed the attacker as %v", what, m["id"])
		}
		if m["type"] == "error" {
			if m["code"] != code {
				a.t.Fatalf("%s: error %v (%v), want %s", what, m["code"], m["message"], code)
			}
			return
		}
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// TestImpersonationAttackOnProcesses attacks five rtcmesh node processes as the issue
// describes wave 1 being taken down: a hello with each victim's ID, then garbage offers and
// candidates aimed at every victim. Afterwards every broadcast must still reach every node.
func TestImpersonationAttackOnProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("separate processes skipped in -short mode")
	}
	sig := startProcess(t, "stderr", "signal", "--listen", "127.0.0.1:0")
	ws := sig.await("signaling server listening", func(m map[string]any) bool {
		return m["message"] == "signaling server listening"
	})["ws"].(string)
	const network = "attacked"
	var nodes []*process
	var ids []string
	for range 5 {
		p := startProcess(t, "stdout", "node", "--signal", ws, "--network", network, "--ephemeral",
			"--mdns=false", "--ice-networks", "127.0.0.0/8", "--profile", "lan", "--log-level", "warn")
		ids = append(ids, p.await("ready", func(m map[string]any) bool { return m["event"] == "ready" })["id"].(string))
		nodes = append(nodes, p)
	}
	for k, p := range nodes {
		p.await(ids[k]+" gets a neighbour", func(m map[string]any) bool { return m["event"] == "neighbor_up" })
	}

	evil, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	_, stranger, _ := ed25519.GenerateKey(nil)
	for _, victim := range ids {
		// Wave 1's hello: an ID and nothing else.
		a, _ := dialAttacker(t, ws)
		a.send(map[string]any{"type": "hello", "id": victim, "network": network})
		a.expectRefused("old hello as "+victim, "unsupported_version")

		// Protocol 2, the attacker's own valid proof but the victim's ID.
		a, nonce := dialAttacker(t, ws)
		proof, _ := evil.Sign(identity.Transcript(identity.LabelSignalingHello, nonce, []byte(network)))
		a.send(map[string]any{"type": "hello", "version": 2, "id": victim, "network": network,
			"public_key": b64(evil.PublicKey()), "signature": b64(proof)})
		a.expectRefused("own proof, victim's ID "+victim, "bad_proof")

		// A key the attacker made up, signing for the victim's ID.
		a, nonce = dialAttacker(t, ws)
		sigBytes := ed25519.Sign(stranger, identity.Transcript(identity.LabelSignalingHello, nonce, []byte(network)))
		a.send(map[string]any{"type": "hello", "version": 2, "id": victim, "network": network,
			"public_key": b64(stranger.Public().(ed25519.PublicKey)), "signature": b64(sigBytes)})
		a.expectRefused("made-up key for "+victim, "bad_proof")
	}

	// A proven attacker floods every victim with garbage offers and candidates. The server
	// stamps them with the attacker's own ID; no link of the victims may suffer.
	a, nonce := dialAttacker(t, ws)
	proof, _ := evil.Sign(identity.Transcript(identity.LabelSignalingHello, nonce, []byte(network)))
	a.send(map[string]any{"type": "hello", "version": 2, "network": network,
		"public_key": b64(evil.PublicKey()), "signature": b64(proof)})
	if w := a.read(); w["type"] != "welcome" || w["id"] != evil.ID() {
		t.Fatalf("proven attacker: %v, want a welcome as %s", w, evil.ID())
	}
	for _, victim := range ids {
		for _, other := range ids {
			a.send(map[string]any{"type": "offer", "to": victim, "sdp": "v=0 garbage from " + other})
			a.send(map[string]any{"type": "candidate", "to": victim, "candidate": `{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}`})
		}
	}

	// Every node broadcasts a line; every node delivers all five.
	for k, p := range nodes {
		if _, err := io.WriteString(p.stdin, fmt.Sprintf("after the attack %d\n", k)); err != nil {
			t.Fatal(err)
		}
	}
	for k, p := range nodes {
		got := map[string]bool{}
		p.await(ids[k]+" delivers every line", func(m map[string]any) bool {
			if m["event"] == "deliver" {
				if s, _ := m["data"].(string); strings.HasPrefix(s, "after the attack ") {
					got[s] = true
				}
			}
			return len(got) == len(nodes)
		})
	}
	for _, p := range nodes {
		p.stop()
	}
	sig.stop()
}
