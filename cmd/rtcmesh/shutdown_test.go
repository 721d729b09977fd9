package main

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// overlayWatch follows the JSON event lines of node processes: which neighbours each has,
// when each neighbour event arrived, and which broadcasts each delivered.
type overlayWatch struct {
	mu    sync.Mutex
	nodes map[string]*watchedNode // by node ID
	last  time.Time               // arrival of the latest neighbour event of any node
}

// watchedNode is what the events of one node said.
type watchedNode struct {
	neighbors map[string]bool
	// ups and downs record each neighbour event in arrival order.
	ups, downs []watchedEvent
	// delivered holds the data of each deliver event, with its arrival.
	delivered map[string]time.Time
}

type watchedEvent struct {
	peer, reason string
	at           time.Time
}

// watch consumes p's remaining output lines as the events of node id, until the output ends.
func (w *overlayWatch) watch(id string, p *process) {
	w.mu.Lock()
	n := &watchedNode{neighbors: map[string]bool{}, delivered: map[string]time.Time{}}
	w.nodes[id] = n
	w.mu.Unlock()
	go func() {
		for m := range p.lines {
			peer, _ := m["peer"].(string)
			reason, _ := m["reason"].(string)
			now := time.Now()
			w.mu.Lock()
			switch m["event"] {
			case "neighbor_up":
				n.neighbors[peer] = true
				n.ups = append(n.ups, watchedEvent{peer: peer, at: now})
				w.last = now
			case "neighbor_down":
				delete(n.neighbors, peer)
				n.downs = append(n.downs, watchedEvent{peer: peer, reason: reason, at: now})
				w.last = now
			case "deliver":
				if data, _ := m["data"].(string); n.delivered[data].IsZero() {
					n.delivered[data] = now
				}
			}
			w.mu.Unlock()
		}
	}()
}

// connected reports whether the neighbour relation joins every node of ids, each with at
// least minDegree neighbours.
func (w *overlayWatch) connected(ids []string, minDegree int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		if len(w.nodes[id].neighbors) < minDegree {
			return false
		}
	}
	seen := map[string]bool{ids[0]: true}
	queue := []string{ids[0]}
	for len(queue) > 0 {
		n := w.nodes[queue[0]]
		queue = queue[1:]
		for p := range n.neighbors {
			if !seen[p] && slices.Contains(ids, p) {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return len(seen) == len(ids)
}

// pieces returns the connected pieces ids fall into, largest first, counting a link whichever
// end reports it: more than one means the overlay is split.
func (w *overlayWatch) pieces(ids []string) [][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	links := map[string][]string{}
	for _, id := range ids {
		for p := range w.nodes[id].neighbors {
			if slices.Contains(ids, p) {
				links[id] = append(links[id], p)
				links[p] = append(links[p], id)
			}
		}
	}
	var pieces [][]string
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		piece := []string{id}
		for k := 0; k < len(piece); k++ {
			for _, p := range links[piece[k]] {
				if !seen[p] {
					seen[p] = true
					piece = append(piece, p)
				}
			}
		}
		pieces = append(pieces, piece)
	}
	slices.SortStableFunc(pieces, func(a, b []string) int { return len(b) - len(a) })
	return pieces
}

// quietSince returns how long no node reported a neighbour change.
func (w *overlayWatch) quietSince() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Since(w.last)
}

// neighbors returns a copy of id's neighbour set.
func (w *overlayWatch) neighbors(id string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for p := range w.nodes[id].neighbors {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// deliveredAt returns when id delivered a broadcast of data; zero if it did not.
func (w *overlayWatch) deliveredAt(id, data string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nodes[id].delivered[data]
}

// upSince returns when id's latest neighbor_up of peer arrived; zero if none did.
func (w *overlayWatch) upSince(id, peer string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	ups := w.nodes[id].ups
	for i := len(ups) - 1; i >= 0; i-- {
		if ups[i].peer == peer {
			return ups[i].at
		}
	}
	return time.Time{}
}

// history lists id's neighbour events in arrival order, timed from since.
func (w *overlayWatch) history(id string, since time.Time) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.nodes[id]
	var evs []watchedEvent
	for _, u := range n.ups {
		evs = append(evs, watchedEvent{peer: u.peer, reason: "up", at: u.at})
	}
	evs = append(evs, n.downs...)
	slices.SortFunc(evs, func(a, b watchedEvent) int { return a.at.Compare(b.at) })
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%v %.8s %s", e.at.Sub(since).Round(time.Millisecond), e.peer, e.reason))
	}
	return strings.Join(out, "; ")
}

// repair is how one former neighbour of a leaving node got over the loss.
type repair struct {
	down, refill time.Time // when it reported the leaver down, and its next new neighbour
	reason       string    // the neighbor_down reason
	size         int       // its active view size now
}

// repairOf reports, for id, the first neighbor_down of leaver at or after since and the first
// neighbor_up of another peer after that; zero times for what did not happen yet.
func (w *overlayWatch) repairOf(id, leaver string, since time.Time) repair {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.nodes[id]
	r := repair{size: len(n.neighbors)}
	for _, d := range n.downs {
		if d.peer == leaver && !d.at.Before(since) {
			r.down, r.reason = d.at, d.reason
			break
		}
	}
	if r.down.IsZero() {
		return r
	}
	for _, u := range n.ups {
		if u.peer != leaver && !u.at.Before(r.down) {
			r.refill = u.at
			break
		}
	}
	return r
}

// TestGracefulLeaveRepairsAtOnce runs a signaling server and ten node processes on loopback
// with a 60 s heartbeat timeout, sends SIGTERM to the node with the most neighbours and
// checks that each of its neighbours reports it gone (by its DISCONNECT or its closing link,
// never by a failure detector) and takes a new neighbour well before that timeout: a failure
// detector cannot explain such a repair. It then stops the server with SIGTERM while the nine
// remaining nodes are connected to it and checks that it drained them: every client left
// after the server's bye, long before the drain timeout.
func TestGracefulLeaveRepairsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("eleven processes skipped in -short mode")
	}
	const (
		nodes = 10
		// failureTimeout is the heartbeat timeout of every node: a peer that vanished without
		// a word would be found out only after it (or after ICE's failure timeout, which the
		// neighbor_down reason would name).
		failureTimeout = 60 * time.Second
		// repairBound is the generous bound the repair must beat.
		repairBound = failureTimeout / 2
		// drainTimeout is the server's --drain-timeout; clients leave within a second.
		drainTimeout = 30 * time.Second
		// formTimeout bounds the forming of the overlay on a busy machine.
		formTimeout = 90 * time.Second
		// quiet is how long no neighbour may change before the overlay counts as formed.
		quiet = 3 * time.Second
	)
	sig := startProcess(t, "stderr", "signal", "--listen", "127.0.0.1:0", "--web=false", "--drain-timeout", drainTimeout.String())
	ws := sig.await("signaling server listening", func(m map[string]any) bool {
		return m["message"] == "signaling server listening"
	})["ws"].(string)
	var sigMu sync.Mutex
	var sigLogs []map[string]any
	go func() {
		for m := range sig.lines {
			sigMu.Lock()
			sigLogs = append(sigLogs, m)
			sigMu.Unlock()
		}
	}()

	w := &overlayWatch{nodes: map[string]*watchedNode{}}
	procs := map[string]*process{}
	var ids []string
	for range nodes {
		p := startProcess(t, "stdout", "node", "--signal", ws, "--network", "leave", "--ephemeral",
			"--mdns=false", "--ice-networks", "127.0.0.0/8", "--profile", "lan",
			"--heartbeat-timeout", failureTimeout.String(), "--log-level", "warn")
		id := p.await("ready", func(m map[string]any) bool { return m["event"] == "ready" })["id"].(string)
		w.watch(id, p)
		procs[id] = p
		ids = append(ids, id)
	}

	start := time.Now()
	deadline := start.Add(formTimeout)
	for !w.connected(ids, 2) || w.quietSince() < quiet {
		if time.Now().After(deadline) {
			for _, id := range ids {
				t.Logf("%s: neighbours %v", id, w.neighbors(id))
			}
			t.Fatalf("the %d nodes did not form a connected overlay (each with 2 neighbours or more, then %v without change) within %v",
				nodes, quiet, formTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	leaver := ids[0]
	for _, id := range ids {
		if len(w.neighbors(id)) > len(w.neighbors(leaver)) {
			leaver = id
		}
	}
	former := w.neighbors(leaver)
	sizes := map[string]int{}
	var sizeList []int
	for _, id := range ids {
		sizes[id] = len(w.neighbors(id))
		sizeList = append(sizeList, sizes[id])
	}
	t.Logf("overlay formed in %v; leaver %.8s has %d neighbours; active view sizes %v",
		time.Since(start).Round(time.Millisecond), leaver, len(former), sizeList)

	left := time.Now()
	procs[leaver].stop() // SIGTERM, exit code 0
	exited := time.Since(left)

	var repairs map[string]repair
	for {
		repairs = map[string]repair{}
		done := true
		for _, id := range former {
			r := w.repairOf(id, leaver, left)
			repairs[id] = r
			done = done && !r.refill.IsZero()
		}
		if done {
			break
		}
		if time.Since(left) > repairBound {
			for id, r := range repairs {
				t.Logf("%s: down after %v (%q), new neighbour after %v", id, sinceOrNever(r.down, left), r.reason, sinceOrNever(r.refill, left))
			}
			t.Fatalf("the leaver's %d neighbours did not all drop it and take a new neighbour within %v (half the %v failure timeout)",
				len(former), repairBound, failureTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var slowestDown, slowestRefill time.Duration
	var report []string
	for _, id := range former {
		r := repairs[id]
		// A DISCONNECT gives "disconnected"; the leaver's closing link "closed by peer: ...".
		// A heartbeat timeout or an ICE failure would mean a failure detector found it.
		if r.reason != "disconnected" && !strings.HasPrefix(r.reason, "closed by peer") {
			t.Errorf("%s reported the leaver down with reason %q, want its DISCONNECT or its link's close", id, r.reason)
		}
		slowestDown = max(slowestDown, r.down.Sub(left))
		slowestRefill = max(slowestRefill, r.refill.Sub(left))
		report = append(report, fmt.Sprintf("%.8s: down %v (%s), refilled %v, view %d→%d", id,
			r.down.Sub(left).Round(time.Millisecond), r.reason, r.refill.Sub(left).Round(time.Millisecond), sizes[id], r.size))
	}
	t.Logf("leaver exited %v after SIGTERM; its %d neighbours dropped it within %v and had a new neighbour within %v; failure timeout %v (%.2f%% of it)",
		exited.Round(time.Millisecond), len(former), slowestDown.Round(time.Millisecond), slowestRefill.Round(time.Millisecond),
		failureTimeout, 100*slowestRefill.Seconds()/failureTimeout.Seconds())
	for _, line := range report {
		t.Log(line)
	}
	for _, id := range ids {
		if id != leaver && slices.Contains(w.neighbors(id), leaver) {
			t.Errorf("%s still lists the leaver as a neighbour", id)
		}
	}

	// The server drains: on SIGTERM it says bye to the nine connected nodes and they leave,
	// so it exits well before --drain-timeout and without dropping anyone.
	stopAt := time.Now()
	sig.stop()
	drained := time.Since(stopAt)
	if drained > drainTimeout/2 {
		t.Errorf("the server took %v to exit after SIGTERM; clients should leave at its bye, well within the %v drain timeout", drained, drainTimeout)
	}
	// The goroutine collecting the server's lines ends with its output.
	deadline = time.Now().Add(testWait)
	for {
		sigMu.Lock()
		var msgs []string
		for _, m := range sigLogs {
			s, _ := m["message"].(string)
			msgs = append(msgs, s)
		}
		sigMu.Unlock()
		if i := slices.Index(msgs, "signaling server closed"); i >= 0 {
			sigMu.Lock()
			welcomed, _ := sigLogs[i]["welcomed"].(float64)
			sigMu.Unlock()
			if welcomed < nodes {
				t.Errorf("the server welcomed %v clients, want the %d nodes", welcomed, nodes)
			}
			if !slices.Contains(msgs, "signaling server shutting down") {
				t.Errorf("the server did not log its shutdown: %q", msgs)
			}
			for _, s := range msgs {
				if strings.Contains(s, "did not leave within the drain timeout") {
					t.Errorf("the server dropped clients instead of draining them: %q", s)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not log \"signaling server closed\": %q", msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("signal server drained %d nodes and exited %v after SIGTERM (drain timeout %v)", nodes-1, drained.Round(time.Millisecond), drainTimeout)
}

// sinceOrNever formats at-since, or "never" for a zero time.
func sinceOrNever(at, since time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return at.Sub(since).Round(time.Millisecond).String()
}
