package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/node"
)

// TestServerGoneRefillsOverProcesses is issue 14's first must-show. Sixty `rtcmesh node`
// processes on loopback, in the default (wan) profile, form an overlay and stay up past the
// idle-link timeout, so that each keeps open only the links of its active view (about 5)
// rather than every link it opened while the overlay formed. Then the signaling server and
// 45 nodes are SIGKILLed. The 15 survivors, most of whose links died, must refill their
// active views to 5 with live peers, which only the overlay can do (the server's port
// refuses connections from the kill to the end), and a broadcast from each survivor must
// then reach all of them. Fifteen views of 5 cannot all be full among fifteen nodes (75 link
// ends, an odd number): the test asks for every view full but one, which has 4.
//
// The survivors are chosen, not drawn: a survivor whose every link died has nothing left to
// reach anyone with but the server, and neither has a group of survivors with no link out of
// it (the simulator's `--server-gone` runs show the same). So the survivors are a connected
// set of the overlay with as few links among them as the overlay allows (grown one node at a
// time, each time the node with the fewest neighbours already in the set): most of their
// links go to nodes that are killed.
//
// Nothing is shortened: every timer is the wan profile's (heartbeat timeout 5 s, shuffle
// every 10 s, idle-link timeout 30 s).
func TestServerGoneRefillsOverProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("sixty node processes skipped in -short mode")
	}
	const (
		nodes     = 60
		survivors = 15
		// activeSize is the active view's size in every profile (membership.Config.ActiveSize).
		activeSize = 5
		// formTimeout bounds the forming of the overlay on a busy machine.
		formTimeout = 2 * time.Minute
		// quiet is how long no neighbour may change before the overlay counts as formed.
		quiet = 5 * time.Second
		// refillTimeout bounds the refill: it is not a figure under test (that one is
		// logged), only where the test gives up.
		refillTimeout = 5 * time.Minute
	)
	cfg := node.DefaultConfig()
	// Past the idle-link timeout, a link that no longer carries a neighbour has closed; a
	// transient one (a shuffle's reply) closes sooner.
	idleWait := cfg.IdleLinkTimeout + cfg.TransientLinkTimeout + time.Second
	begin := time.Now()

	sig := startProcess(t, "stderr", "signal", "--listen", "127.0.0.1:0", "--web=false")
	ws := sig.await("signaling server listening", func(m map[string]any) bool {
		return m["message"] == "signaling server listening"
	})["ws"].(string)
	go func() {
		for range sig.lines { // keep the server's log flowing
		}
	}()
	wsURL, err := url.Parse(ws)
	if err != nil {
		t.Fatal(err)
	}

	w := &overlayWatch{nodes: map[string]*watchedNode{}}
	procs := map[string]*process{}
	var ids []string
	for range nodes {
		// No --profile: the default.
		p := startProcess(t, "stdout", "node", "--signal", ws, "--network", "servergone", "--ephemeral",
			"--mdns=false", "--ice-networks", "127.0.0.0/8", "--log-level", "error")
		id := p.await("ready", func(m map[string]any) bool { return m["event"] == "ready" })["id"].(string)
		w.watch(id, p)
		procs[id] = p
		ids = append(ids, id)
	}
	started := time.Now()
	deadline := started.Add(formTimeout)
	for !w.connected(ids, 2) || w.quietSince() < quiet {
		if time.Now().After(deadline) {
			// The nodes short of neighbours, and those cut off from the largest piece.
			pieces := w.pieces(ids)
			var sizes []int
			for k, piece := range pieces {
				sizes = append(sizes, len(piece))
				for _, id := range piece {
					if k > 0 || len(w.neighbors(id)) < 2 {
						t.Logf("%.8s (started %d of %d, piece %d): %s", id, slices.Index(ids, id)+1, nodes, k, w.history(id, begin))
					}
				}
			}
			t.Fatalf("the %d nodes did not form a connected overlay (each with 2 neighbours or more, then %v without change) within %v of the last start: views %v, connected %v, pieces %v, last change %v ago",
				nodes, quiet, formTimeout, viewSizes(w, ids), w.connected(ids, 2), sizes, w.quietSince().Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	formed := time.Now()
	t.Logf("%d nodes started in %v; connected overlay %v later; active view sizes %v",
		nodes, started.Sub(begin).Round(time.Millisecond), formed.Sub(started).Round(time.Millisecond), viewSizes(w, ids))
	time.Sleep(idleWait)

	// The survivors: a connected set with few links inside it.
	graph := map[string][]string{}
	for _, id := range ids {
		graph[id] = w.neighbors(id)
	}
	alive := pickSurvivors(graph, ids, survivors, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14)))
	before := map[string][]string{}
	lost, had := 0, 0
	for _, id := range alive {
		before[id] = graph[id]
		for _, p := range graph[id] {
			had++
			if !slices.Contains(alive, p) {
				lost++
			}
		}
	}

	killed := time.Now()
	if err := sig.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	sig.cmd.Wait()
	for _, id := range ids {
		if !slices.Contains(alive, id) {
			if err := procs[id].cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var cpuKilled time.Duration
	for _, id := range ids {
		if !slices.Contains(alive, id) {
			procs[id].cmd.Wait()
			cpuKilled += cpuOf(procs[id])
		}
	}
	cpuKilled += cpuOf(sig)
	serverGone(t, wsURL.Host)
	t.Logf("after %v idle: SIGKILLed the server and %d nodes; the %d survivors lost %d of their %d links (%.0f%%); survivors' views %v",
		formed.Add(idleWait).Sub(formed).Round(time.Second), nodes-survivors, survivors, lost, had, 100*float64(lost)/float64(had), viewSizes(w, alive))

	// The survivors refill their active views with live peers: each other. Fifteen views of
	// 5 would be 75 link ends, an odd number, and a link has two: one survivor at least is
	// left with 4. So the views are full when every survivor has 5 live neighbours but one,
	// which has 4.
	firstFull := map[string]time.Time{} // when each survivor first had 5 live neighbours
	var full time.Time
	deadline = killed.Add(refillTimeout)
	for full.IsZero() {
		ends, short, dead := 0, 0, 0
		for _, id := range alive {
			nb := w.neighbors(id)
			hasDead := slices.ContainsFunc(nb, func(p string) bool { return !slices.Contains(alive, p) })
			if hasDead {
				dead++ // a dead neighbour not yet found out
			}
			ends += len(nb)
			if len(nb) < activeSize {
				short++
			} else if !hasDead && firstFull[id].IsZero() {
				firstFull[id] = time.Now()
			}
		}
		if dead == 0 && (short == 0 || (short == 1 && ends == survivors*activeSize-1)) {
			full = time.Now()
			break
		}
		if time.Now().After(deadline) {
			for _, id := range alive {
				t.Logf("%.8s: neighbours %v", id, shortIDs(w.neighbors(id), alive))
			}
			t.Log(refillReport(w, alive, killed, firstFull))
			t.Fatalf("%v after the kill, %d of the %d survivors have fewer than %d neighbours (views %v) and %d still list a dead one",
				refillTimeout, short, survivors, activeSize, viewSizes(w, alive), dead)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !w.connected(alive, activeSize-1) {
		t.Fatal("the survivors' overlay is not connected")
	}
	t.Logf("views full %v after the kill: %v", full.Sub(killed).Round(time.Millisecond), viewSizes(w, alive))
	t.Log(refillReport(w, alive, killed, firstFull))

	// A broadcast from every survivor reaches every survivor.
	sent := time.Now()
	var lines []string
	for k, id := range alive {
		line := fmt.Sprintf("survivor %d of %d, %.8s, after the server is gone", k+1, survivors, id)
		say(t, procs[id], line)
		lines = append(lines, line)
	}
	deadline = sent.Add(testWait)
	var slowest time.Duration
	for _, id := range alive {
		for _, line := range lines {
			for w.deliveredAt(id, line).IsZero() {
				if time.Now().After(deadline) {
					t.Fatalf("%.8s did not deliver %q within %v", id, line, testWait)
				}
				time.Sleep(20 * time.Millisecond)
			}
			slowest = max(slowest, w.deliveredAt(id, line).Sub(sent))
		}
	}
	serverGone(t, wsURL.Host)
	t.Logf("%d broadcasts, one from each survivor, all delivered by all %d survivors within %v", survivors, survivors, slowest.Round(time.Millisecond))

	end := time.Now()
	var cpuAlive time.Duration
	for _, id := range alive {
		procs[id].stop()
		cpuAlive += cpuOf(procs[id])
	}
	t.Logf("CPU of the %d processes: %v (the killed ones up to the kill, %v), %v wall from the first start to the last broadcast, %.2f cores on average",
		nodes+1, (cpuKilled + cpuAlive).Round(time.Millisecond), cpuKilled.Round(time.Millisecond), end.Sub(begin).Round(time.Second),
		(cpuKilled+cpuAlive).Seconds()/end.Sub(begin).Seconds())
}

// refillReport says when the survivors had 5 live neighbours, and how many of their links
// were opened after the kill (through the overlay: the server was gone).
func refillReport(w *overlayWatch, alive []string, killed time.Time, firstFull map[string]time.Time) string {
	var times []string
	for _, id := range alive {
		if at := firstFull[id]; !at.IsZero() {
			times = append(times, at.Sub(killed).Round(100*time.Millisecond).String())
		}
	}
	newLinks, links := 0, 0
	for _, id := range alive {
		for _, p := range w.neighbors(id) {
			links++
			if w.upSince(id, p).After(killed) {
				newLinks++
			}
		}
	}
	return fmt.Sprintf("%d of %d survivors reached 5 live neighbours, after %v; %d of the survivors' %d link ends now (%.0f%%) are of links opened after the kill, through the overlay",
		len(times), len(alive), times, newLinks, links, 100*float64(newLinks)/float64(max(links, 1)))
}

// pickSurvivors returns n nodes of graph (neighbour lists) that form a connected set with
// few links inside it: from a random node, it adds each time a node linked to the set with
// the fewest links into it, ties broken at random.
func pickSurvivors(graph map[string][]string, ids []string, n int, rng *rand.Rand) []string {
	set := []string{ids[rng.IntN(len(ids))]}
	for len(set) < n {
		var best []string
		bestLinks := 0
		for _, id := range ids {
			if slices.Contains(set, id) {
				continue
			}
			in := 0
			for _, p := range graph[id] {
				if slices.Contains(set, p) {
					in++
				}
			}
			switch {
			case in == 0:
			case len(best) == 0 || in < bestLinks:
				best, bestLinks = []string{id}, in
			case in == bestLinks:
				best = append(best, id)
			}
		}
		if len(best) == 0 {
			return set // the overlay was checked connected, so this does not happen
		}
		set = append(set, best[rng.IntN(len(best))])
	}
	return set
}

// serverGone fails the test unless nothing accepts connections at the signaling server's
// address.
func serverGone(t *testing.T, hostPort string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", hostPort, time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("the signaling server's address %s still accepts connections", hostPort)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dialling the signaling server's address %s: %v, want connection refused", hostPort, err)
	}
}

// cpuOf returns the user and system CPU time of a process that has exited.
func cpuOf(p *process) time.Duration {
	if p.cmd.ProcessState == nil {
		return 0
	}
	return p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
}

// viewSizes returns the sorted active view sizes of ids.
func viewSizes(w *overlayWatch, ids []string) []int {
	var sizes []int
	for _, id := range ids {
		sizes = append(sizes, len(w.neighbors(id)))
	}
	sort.Ints(sizes)
	return sizes
}

// shortIDs abbreviates ids, marking those not in alive as dead.
func shortIDs(ids, alive []string) string {
	var out []string
	for _, id := range ids {
		s := id[:8]
		if !slices.Contains(alive, id) {
			s += "(dead)"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}
