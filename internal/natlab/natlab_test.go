//go:build linux

package natlab_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/internal/natlab"
)

// The rtcmesh binary, built once by TestMain for every test of this binary.
var (
	binary   string
	buildErr error
)

func TestMain(m *testing.M) {
	// Re-executed inside a lab namespace to run a helper (see runHelper), not the tests.
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	var dir string
	if natlab.Available() == nil {
		var err error
		if dir, err = os.MkdirTemp("", "natlab-bin-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		binary, buildErr = natlab.Build(dir)
	}
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// deadline bounds every wait: link setup through a NAT, a relay or a heartbeat timeout takes
// seconds, and the test machines are shared.
const deadline = 45 * time.Second

// attemptTimeout bounds one broadcast attempt: on a settled overlay a line is delivered within
// a second.
const attemptTimeout = 20 * time.Second

// newLab builds a lab, or skips (fails under RTCMESH_REQUIRE_ALL=1) where one cannot run.
func newLab(t *testing.T) *natlab.Lab {
	t.Helper()
	natlab.Require(t)
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return natlab.New(t, binary)
}

// startSignal runs the signaling server in the lab's internet, with the embedded TURN/STUN
// relay unless relay is false, and returns its WebSocket URL.
func startSignal(t *testing.T, lab *natlab.Lab, relay bool) string {
	t.Helper()
	addr := natlab.InternetServer
	args := []string{"signal", "--listen", addr + ":8080"}
	if relay {
		var secret [16]byte
		if _, err := rand.Read(secret[:]); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--turn-listen", addr+":3478", "--turn-secret", hex.EncodeToString(secret[:]),
			"--turn-public-ip", addr, "--turn-relay-ports", "40000-40100", "--stun-url", "stun:"+addr+":3478",
			"--turn-allow-peers", natlab.InternetPrefix)
	}
	sig := lab.Internet().Start("signal", args...)
	sig.AwaitLog(t, deadline, "signaling server listening", func(m map[string]any) bool {
		return m["message"] == "signaling server listening"
	})
	return "ws://" + addr + ":8080/ws"
}

// node is one rtcmesh node process and its ID.
type node struct {
	*natlab.Process
	id string
}

func startNode(t *testing.T, host *natlab.Namespace, name, ws string, mdns bool) node {
	t.Helper()
	p := host.Start(name, "node", "--signal", ws, "--network", "lab", "--ephemeral", "--profile", "lan",
		fmt.Sprintf("--mdns=%v", mdns), "--log-level", "info")
	ready := p.Await(t, 0, deadline, "ready", func(m map[string]any) bool { return m["event"] == "ready" })
	id, _ := ready["id"].(string)
	if id == "" {
		t.Fatalf("%s: ready without an id: %v", name, ready)
	}
	return node{Process: p, id: id}
}

// awaitNeighbor waits for n's neighbor_up naming peer and returns its path.
func awaitNeighbor(t *testing.T, n node, peer node) string {
	t.Helper()
	up := n.Await(t, 0, deadline, "neighbor_up for "+peer.Name, func(m map[string]any) bool {
		return m["event"] == "neighbor_up" && m["peer"] == peer.id
	})
	path, _ := up["path"].(string)
	return path
}

// awaitDelivery waits for n to deliver data broadcast by origin.
func awaitDelivery(t *testing.T, n node, since int, origin node, data string) {
	t.Helper()
	d := n.Await(t, since, deadline, "delivery of "+data, func(m map[string]any) bool {
		return m["event"] == "deliver" && m["data"] == data
	})
	if d["origin"] != origin.id {
		t.Errorf("%s delivered %q from %v, want origin %s", n.Name, data, d["origin"], origin.Name)
	}
}

// pair runs one node behind each of two homes of the given NAT types, waits for their link
// and a line typed into the first to be delivered by the second, and returns both paths.
func pair(t *testing.T, natA, natB natlab.NATType) (pathA, pathB string) {
	lab := newLab(t)
	ws := startSignal(t, lab, true)
	homeA, homeB := lab.Home("a", natA), lab.Home("b", natB)
	a := startNode(t, homeA.Host("h1"), "a/h1", ws, false)
	b := startNode(t, homeB.Host("h1"), "b/h1", ws, false)
	pathA, pathB = awaitNeighbor(t, a, b), awaitNeighbor(t, b, a)
	mark := b.Mark()
	a.WriteLine(t, "across the NATs")
	awaitDelivery(t, b, mark, a, "across the NATs")
	t.Logf("%v NAT ↔ %v NAT: paths %s / %s", natA, natB, pathA, pathB)
	for _, h := range []*natlab.Home{homeA, homeB} {
		// The routers' UDP mappings, to see what the NAT did (shown with -v).
		table, err := h.Router.Output("cat", "/proc/net/nf_conntrack")
		if err != nil {
			t.Fatalf("reading %s's conntrack table: %v: %s", h.Name, err, table)
		}
		var udp []string
		for _, line := range strings.Split(table, "\n") {
			if strings.Contains(line, " udp ") {
				udp = append(udp, strings.Join(strings.Fields(line), " "))
			}
		}
		t.Logf("router %s (%v, %s) UDP conntrack:\n%s", h.Name, h.NAT, h.Router.Addr, strings.Join(udp, "\n"))
	}
	return pathA, pathB
}

// Two endpoint-independent NATs: hole punching opens a direct link.
func TestEasyToEasyIsDirect(t *testing.T) {
	pathA, pathB := pair(t, natlab.Easy, natlab.Easy)
	if pathA == "relay" || pathB == "relay" || pathA == "" || pathB == "" {
		t.Errorf("paths %q / %q, want a direct (srflx or prflx) path", pathA, pathB)
	}
}

// Two endpoint-dependent NATs cannot punch: the link goes through the TURN relay.
func TestHardToHardUsesRelay(t *testing.T) {
	pathA, pathB := pair(t, natlab.Hard, natlab.Hard)
	if pathA != "relay" || pathB != "relay" {
		t.Errorf("paths %q / %q, want relay", pathA, pathB)
	}
}

// An easy NAT filters by address and port, so a hard NAT's new port per destination is
// dropped; the link opens anyway (the path is logged).
func TestEasyToHard(t *testing.T) {
	pathA, pathB := pair(t, natlab.Easy, natlab.Hard)
	if pathA == "" || pathB == "" {
		t.Errorf("paths %q / %q, want both reported", pathA, pathB)
	}
}

// Two hosts on one LAN, with the signaling server reachable but no STUN or TURN: mDNS host
// candidates connect them directly.
func TestSameLANHostCandidates(t *testing.T) {
	lab := newLab(t)
	ws := startSignal(t, lab, false)
	home := lab.Home("a", natlab.Easy)
	a := startNode(t, home.Host("h1"), "a/h1", ws, true)
	b := startNode(t, home.Host("h2"), "a/h2", ws, true)
	// Both ends publish their host candidates as <uuid>.local names. The end whose check
	// arrives before its name is resolved is seen as prflx; with no STUN or TURN server, a
	// prflx address can only be the peer's own LAN address, so either is a direct LAN path.
	pathA, pathB := awaitNeighbor(t, a, b), awaitNeighbor(t, b, a)
	for _, path := range []string{pathA, pathB} {
		if path != "host" && path != "prflx" {
			t.Errorf("path %q, want host (or prflx: a LAN address learned from a check)", path)
		}
	}
	t.Logf("same LAN, mDNS, no STUN/TURN: paths %s / %s", pathA, pathB)
	mark := b.Mark()
	a.WriteLine(t, "on the LAN")
	awaitDelivery(t, b, mark, a, "on the LAN")
}

// Three homes (easy, hard, easy) with three nodes each: a broadcast reaches all nine; when one
// home's router disappears, the other six drop its nodes, repair their views, and a new
// broadcast reaches all six.
func TestThreeHomesHealAfterRouterLoss(t *testing.T) {
	lab := newLab(t)
	ws := startSignal(t, lab, true)
	var all []node
	byHome := map[string][]node{}
	for _, h := range []struct {
		name string
		nat  natlab.NATType
	}{{"a", natlab.Easy}, {"b", natlab.Hard}, {"c", natlab.Easy}} {
		home := lab.Home(h.name, h.nat)
		for i := 1; i <= 3; i++ {
			name := fmt.Sprintf("%s/h%d", h.name, i)
			n := startNode(t, home.Host(fmt.Sprintf("h%d", i)), name, ws, false)
			all = append(all, n)
			byHome[h.name] = append(byHome[h.name], n)
		}
	}
	for _, n := range all {
		n.Await(t, 0, deadline, "a neighbour", func(m map[string]any) bool { return m["event"] == "neighbor_up" })
	}
	broadcastReaches(t, all[0], all, "to all nine", 3)

	removed := map[any]bool{}
	for _, n := range byHome["b"] {
		removed[n.id] = true
	}
	// Each survivor's neighbours when the router goes: those in home b must be reported down.
	views := make([]map[any]bool, 0, 6)
	marks := make([]int, 0, 6)
	survivors := append(append([]node{}, byHome["a"]...), byHome["c"]...)
	lab.RemoveHome("b")
	for _, n := range survivors {
		marks = append(marks, n.Mark())
		views = append(views, replayView(map[any]bool{}, n.Events(0)))
	}
	downs := 0
	for i, n := range survivors {
		view := views[i]
		lost := map[any]bool{}
		for p := range view {
			if removed[p] {
				lost[p] = true
				downs++
			}
		}
		healed := func() bool {
			for p := range view {
				if removed[p] {
					return false
				}
			}
			return len(view) > 0
		}
		if healed() {
			continue
		}
		n.Await(t, marks[i], deadline, fmt.Sprintf("neighbor_down for %d nodes of home b and a neighbour left", len(lost)),
			func(m map[string]any) bool {
				replayView(view, []map[string]any{m})
				return healed()
			})
	}
	if downs == 0 {
		t.Error("no survivor had a neighbour in the removed home")
	}
	t.Logf("survivors reported %d neighbor_down events for home b's nodes", downs)
	broadcastReaches(t, survivors[len(survivors)-1], survivors, "to the six survivors", 3)
}

// replayView applies neighbor_up and neighbor_down events to view and returns it.
func replayView(view map[any]bool, events []map[string]any) map[any]bool {
	for _, m := range events {
		switch m["event"] {
		case "neighbor_up":
			view[m["peer"]] = true
		case "neighbor_down":
			delete(view, m["peer"])
		}
	}
	return view
}

// broadcastReaches types a line into from and waits for every node in to deliver it. Plumtree
// does not resend a message to a neighbour whose link opens after the message passed, so a
// broadcast made while the overlay is still changing can miss a node: each attempt sends a new
// line, and the test fails only if none of attempts lines reaches every node.
func broadcastReaches(t *testing.T, from node, to []node, data string, attempts int) {
	t.Helper()
	var report string
	for attempt := 1; attempt <= attempts; attempt++ {
		line := fmt.Sprintf("%s #%d", data, attempt)
		marks := make([]int, len(to))
		for i, n := range to {
			marks[i] = n.Mark()
		}
		from.WriteLine(t, line)
		end := time.Now().Add(attemptTimeout)
		var missed []string
		for i, n := range to {
			d, err := n.Wait(marks[i], max(time.Until(end), time.Millisecond), func(m map[string]any) bool {
				return m["event"] == "deliver" && m["data"] == line
			})
			switch {
			case err != nil:
				missed = append(missed, n.Name)
			case d["origin"] != from.id:
				t.Errorf("%s delivered %q from %v, want origin %s", n.Name, line, d["origin"], from.Name)
			}
		}
		if len(missed) == 0 {
			t.Logf("%q from %s reached all %d nodes (attempt %d)", line, from.Name, len(to), attempt)
			return
		}
		t.Logf("%q from %s not delivered by %v within %v", line, from.Name, missed, attemptTimeout)
		report = fmt.Sprintf("last attempt missed %v", missed)
	}
	var logs strings.Builder
	for _, n := range to {
		fmt.Fprintf(&logs, "--- %s (%s) stdout:\n%s--- %s stderr:\n%s", n.Name, n.id, n.Output(), n.Name, n.Logs())
	}
	t.Fatalf("no broadcast %q from %s reached all nodes in %d attempts: %s\n%s", data, from.Name, attempts, report, logs.String())
}
