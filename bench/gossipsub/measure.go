package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// params is the work of one run, the same for both systems but for the knobs each has.
type params struct {
	System     string        // "rtcmesh" or "gossipsub"
	N          int           // nodes
	Seed       uint64        // graph, keys, origins and payloads
	Broadcasts int           // broadcasts in all, warm-up included
	Warmup     int           // the first Warmup broadcasts are left out of every figure
	Interval   time.Duration // between two broadcasts
	Size       int           // payload bytes
	Latency    time.Duration // one way, every link
	Settle     time.Duration // wait after formation before the idle period
	Idle       time.Duration // the idle period CPU is measured over
	Drain      time.Duration // how long after the last broadcast deliveries are awaited
	Form       time.Duration // how long formation may take

	// gossipsub: each node dials Degree distinct random others.
	Degree int
	// MocknetLatency delays gossipsub's frames with mocknet's own latency, which serialises
	// large writes (see latency.go), instead of a FIFO delay like memlink's.
	MocknetLatency bool

	// rtcmesh knobs, applied to node.DefaultLANConfig(); a negative value (or -1 for
	// OptThreshold) keeps the default.
	Tick         time.Duration
	OptThreshold int
	Missing      time.Duration
	GraftRetry   time.Duration
	LazyFlush    time.Duration
	Shuffle      time.Duration
	// LinkShuffleReplies turns node.Config.RouteShuffleReplies off: a SHUFFLE_REPLY goes
	// straight to its destination (over memlink, a link costs nothing to open).
	LinkShuffleReplies bool
}

// result holds one run's figures; latencies in milliseconds.
type result struct {
	System      string
	N           int
	Seed        uint64
	Knobs       string
	FormedS     float64 // seconds from the first node's start to a formed overlay or mesh
	Measured    int     // broadcasts measured (after the warm-up)
	Reliability float64 // deliveries / (measured × (N-1))
	Copies      float64 // payload copies received per node per broadcast
	Bytes       float64 // bytes sent over all links per broadcast, in the broadcast window
	P50, P99    float64
	Max         float64
	Late500     int     // deliveries later than 500 ms
	HopsMean    float64 // mean hops of the deliveries; -1 if not observable
	HopsLast    float64 // hops of each broadcast's last delivery, averaged; -1 if not observable
	CPUPerBcast float64 // ms of process CPU in the broadcast window, per measured broadcast
	IdleCores   float64 // process CPU over the idle period / its length
	IdleBytesS  float64 // bytes sent per second over the idle period
	Grafts      float64 // rtcmesh: GRAFTs sent per measured broadcast; gossipsub: GRAFTs traced
	Prunes      float64 // PRUNEs sent per measured broadcast
	WindowS     float64 // the broadcast window's length in seconds
	// ViewChangesS is the links between neighbours lost per second in the broadcast window
	// (rtcmesh's overlay changing under the tree).
	ViewChangesS float64
	// Load is the machine's 1-minute load average as the broadcasts began (other work on a
	// shared machine), from /proc/loadavg; -1 where there is none.
	Load  float64
	Notes string
}

// loadAverage is the 1-minute load average, -1 if unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// payload returns broadcast k's payload: its index in the first 4 bytes, random bytes after.
func payload(rng *rand.Rand, k, size int) []byte {
	b := make([]byte, max(size, 4))
	for i := 4; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
	binary.BigEndian.PutUint32(b, uint32(k))
	return b
}

// index reads the broadcast index payload put in data; ok is false for foreign data.
func index(data []byte, broadcasts int) (int, bool) {
	if len(data) < 4 {
		return 0, false
	}
	k := int(binary.BigEndian.Uint32(data))
	return k, k < broadcasts
}

// tracker records, for every broadcast, when it was sent and when and over how many hops each
// node delivered it.
type tracker struct {
	n, broadcasts int
	mu            sync.Mutex
	sent          []time.Time
	origin        []int
	got           [][]time.Duration // got[k][node]: delivery delay of broadcast k; 0 = not yet
	hops          [][]int           // hops[k][node]; -1 unknown
	remaining     []int             // nodes still to deliver broadcast k
	done          chan struct{}     // closed when every measured broadcast is delivered everywhere
	warmup        int
	left          int
}

func newTracker(n, broadcasts, warmup int) *tracker {
	t := &tracker{n: n, broadcasts: broadcasts, warmup: warmup, done: make(chan struct{}),
		sent: make([]time.Time, broadcasts), origin: make([]int, broadcasts),
		got: make([][]time.Duration, broadcasts), hops: make([][]int, broadcasts),
		remaining: make([]int, broadcasts), left: broadcasts - warmup}
	for k := range broadcasts {
		t.got[k] = make([]time.Duration, n)
		t.hops[k] = make([]int, n)
		for i := range t.hops[k] {
			t.hops[k][i] = -1
		}
		t.remaining[k] = n - 1
	}
	if t.left <= 0 {
		close(t.done)
	}
	return t
}

// sending records that broadcast k leaves origin now.
func (t *tracker) sending(k, origin int, at time.Time) {
	t.mu.Lock()
	t.sent[k], t.origin[k] = at, origin
	t.mu.Unlock()
}

// delivered records node's first delivery of broadcast k at `at` after hops hops (-1 unknown).
func (t *tracker) delivered(k, node, hops int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if k < 0 || k >= t.broadcasts || node == t.origin[k] || t.got[k][node] != 0 || t.sent[k].IsZero() {
		return
	}
	d := max(at.Sub(t.sent[k]), time.Nanosecond)
	t.got[k][node], t.hops[k][node] = d, hops
	t.remaining[k]--
	if t.remaining[k] == 0 && k >= t.warmup {
		t.left--
		if t.left == 0 {
			close(t.done)
		}
	}
}

// setHops fills in hop counts found after the run (gossipsub's delivery tree).
func (t *tracker) setHops(k, node, hops int) {
	t.mu.Lock()
	t.hops[k][node] = hops
	t.mu.Unlock()
}

// fill computes reliability, latency and hop figures of the measured broadcasts into r.
func (t *tracker) fill(r *result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lat []time.Duration
	var hopSum, hopN, lastSum, lastN int
	for k := t.warmup; k < t.broadcasts; k++ {
		var last time.Duration
		lastHops := -1
		for i, d := range t.got[k] {
			if i == t.origin[k] || d == 0 {
				continue
			}
			lat = append(lat, d)
			if d > 500*time.Millisecond {
				r.Late500++
			}
			if h := t.hops[k][i]; h >= 0 { // unknown where gossipsub's tree has a gap
				hopSum += h
				hopN++
			}
			if d > last {
				last, lastHops = d, t.hops[k][i]
			}
		}
		if lastHops >= 0 {
			lastSum += lastHops
			lastN++
		}
	}
	r.Measured = t.broadcasts - t.warmup
	r.Reliability = float64(len(lat)) / float64(r.Measured*(t.n-1))
	slices.Sort(lat)
	r.P50, r.P99, r.Max = ms(quantile(lat, 0.5)), ms(quantile(lat, 0.99)), ms(quantile(lat, 1))
	r.HopsMean, r.HopsLast = -1, -1
	if hopN > 0 {
		r.HopsMean = float64(hopSum) / float64(hopN)
		r.HopsLast = float64(lastSum) / float64(max(lastN, 1))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// quantile returns the q-quantile of sorted (nearest rank); 0 for none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// counters are a system's running totals, read at the edges of the idle period and of the
// broadcast window.
type counters struct {
	Bytes  uint64 // bytes sent over all links
	Copies uint64 // payload copies received by all nodes
	Grafts uint64
	Prunes uint64
	// NeighborDowns counts neighbours lost (rtcmesh's NeighborDown events, each end counts);
	// gossipsub's connections never change in these runs.
	NeighborDowns uint64
}

// system is one side of the comparison, formed and ready to broadcast.
type system interface {
	counters() counters
	// broadcast sends data from node origin.
	broadcast(origin int, data []byte) error
}

// measure runs the phases every run shares once the system is formed: settle, the idle
// period, then the broadcasts Interval apart from random origins, waiting at most Drain after
// the last for every measured one to be delivered everywhere. It fills the idle, CPU, byte and
// copy figures of r; the tracker holds the rest.
func measure(p params, sys system, t *tracker, r *result) error {
	time.Sleep(p.Settle)
	c0, cpu0, at0 := sys.counters(), cpuTime(), time.Now()
	time.Sleep(p.Idle)
	c1, cpu1, idle := sys.counters(), cpuTime(), time.Since(at0)
	r.IdleCores = float64(cpu1-cpu0) / float64(idle)
	r.IdleBytesS = float64(c1.Bytes-c0.Bytes) / idle.Seconds()

	r.Load = loadAverage()
	rng := rand.New(rand.NewPCG(p.Seed, 0xb0adca57))
	var cw counters
	var cpuW time.Duration
	var atW time.Time
	next := time.Now()
	for k := range p.Broadcasts {
		time.Sleep(time.Until(next))
		next = next.Add(p.Interval)
		if k == p.Warmup {
			cw, cpuW, atW = sys.counters(), cpuTime(), time.Now()
		}
		origin := rng.IntN(p.N)
		data := payload(rng, k, p.Size)
		t.sending(k, origin, time.Now())
		if err := sys.broadcast(origin, data); err != nil {
			return fmt.Errorf("broadcast %d from node %d: %w", k, origin, err)
		}
	}
	select {
	case <-t.done:
	case <-time.After(p.Drain):
		r.Notes += fmt.Sprintf("not all delivered within %v of the last broadcast; ", p.Drain)
	}
	ce, cpuE, window := sys.counters(), cpuTime(), time.Since(atW)
	m := float64(p.Broadcasts - p.Warmup)
	r.WindowS = window.Seconds()
	r.CPUPerBcast = ms(cpuE-cpuW) / m
	r.Bytes = float64(ce.Bytes-cw.Bytes) / m
	r.Copies = float64(ce.Copies-cw.Copies) / m / float64(p.N-1)
	r.Grafts = float64(ce.Grafts-cw.Grafts) / m
	r.Prunes = float64(ce.Prunes-cw.Prunes) / m
	r.ViewChangesS = float64(ce.NeighborDowns-cw.NeighborDowns) / 2 / window.Seconds()
	return nil
}
