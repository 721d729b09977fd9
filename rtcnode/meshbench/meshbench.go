//go:build !js

// Package meshbench is the ladder of real nodes: `rtcmesh bench mesh`. It starts a signaling
// server on loopback and N real WebRTC nodes (rtcnode over rtclink, signed broadcasts, the
// whole runtime), split over P worker processes, waits until they form one connected overlay,
// measures what they cost while idle, then broadcasts from random nodes one after the other
// and measures reliability, latency and redundancy. The figures are what the issue "a thousand
// real WebRTC nodes on one small box" asks for: formation time, idle CPU, RSS, goroutines and
// open links per node, reliability, latency p50/p99 and RMR.
//
// Workers are separate processes (the command re-executes itself as `rtcmesh bench
// mesh-worker`), so their CPU and memory are read per process and the signaling server's own
// cost, in the bench's process, is reported apart. With Procs 0 the nodes run inside the
// bench's process (tests do that), and the process figures include the signaling server.
package meshbench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

// Config configures one run of the ladder. DefaultConfig fills every field.
type Config struct {
	// Nodes is the number of nodes; Procs the worker processes they are split over (0: all in
	// this process, which needs no WorkerCommand).
	Nodes, Procs int
	// Profile is the nodes' timing profile: "lan" (node.DefaultLANConfig) or "wan"
	// (node.DefaultConfig).
	Profile string
	// Broadcasts are measured after Warmup broadcasts that are not (they let the broadcast
	// tree form); each waits up to BroadcastTimeout for every node to deliver it.
	Broadcasts, Warmup int
	BroadcastTimeout   time.Duration
	// FormTimeout bounds the wait for one overlay connected by symmetric links.
	FormTimeout time.Duration
	// Settle is waited after the overlay formed and before Idle is measured: the joins'
	// transient links close and the views fill. Idle is the period idle CPU is measured over;
	// links, goroutines and RSS are read at its end ("at rest").
	Settle, Idle time.Duration
	// Seed picks the broadcasting nodes and seeds the nodes' cores.
	Seed uint64
	// UDPSockets says how the links' ICE sockets are shared (rtclink.Config.UDPSocket): "node"
	// (one per node, shared by its links, rtclink's default) or "link" (one per link). Nodes of
	// one process cannot share one socket: two ICE agents on one socket never reach each other.
	UDPSockets string
	// TransientLinkTimeout, when positive, overrides the profile's
	// node.Config.TransientLinkTimeout.
	TransientLinkTimeout time.Duration
	// ShuffleInterval, when positive, overrides the profile's Membership.ShuffleInterval: each
	// shuffle's reply opens a link unless one is open to its destination or it goes through
	// the overlay, so it sets how many links are opened at rest.
	ShuffleInterval time.Duration
	// LinkShuffleReplies turns node.Config.RouteShuffleReplies off: every SHUFFLE_REPLY to a
	// peer with no open link opens one, as before replies went through the overlay (for a
	// side-by-side run).
	LinkShuffleReplies bool
	// WorkerCommand returns the command of one worker process (for Procs > 0): a program that
	// calls RunWorker on its standard input and output.
	WorkerCommand func() *exec.Cmd
	// Progress, when set, receives a line for each phase.
	Progress io.Writer
}

// DefaultConfig returns a run of 50 nodes in 2 processes, LAN profile, 50 broadcasts.
func DefaultConfig() Config {
	return Config{
		Nodes: 50, Procs: 2, Profile: "lan",
		Broadcasts: 50, Warmup: 5, BroadcastTimeout: 10 * time.Second,
		FormTimeout: 3 * time.Minute, Settle: 10 * time.Second, Idle: 20 * time.Second,
		Seed: 1, UDPSockets: "node",
	}
}

// ErrConfig is wrapped by Run's errors about its Config.
var ErrConfig = errors.New("meshbench: bad configuration")

func (c *Config) validate() error {
	switch {
	case c.Nodes < 2:
		return fmt.Errorf("%w: Nodes %d must be at least 2", ErrConfig, c.Nodes)
	case c.Procs < 0 || c.Procs > c.Nodes:
		return fmt.Errorf("%w: Procs %d must be between 0 and Nodes (%d)", ErrConfig, c.Procs, c.Nodes)
	case c.Profile != "lan" && c.Profile != "wan":
		return fmt.Errorf("%w: Profile %q: want lan or wan", ErrConfig, c.Profile)
	case c.Broadcasts < 1 || c.Warmup < 0:
		return fmt.Errorf("%w: Broadcasts %d must be at least 1 and Warmup %d not negative", ErrConfig, c.Broadcasts, c.Warmup)
	case c.BroadcastTimeout <= 0 || c.FormTimeout <= 0 || c.Idle <= 0 || c.Settle < 0:
		return fmt.Errorf("%w: BroadcastTimeout, FormTimeout and Idle must be positive, Settle not negative", ErrConfig)
	case c.UDPSockets != "node" && c.UDPSockets != "link":
		return fmt.Errorf("%w: UDPSockets %q: want node or link", ErrConfig, c.UDPSockets)
	case c.TransientLinkTimeout < 0 || c.ShuffleInterval < 0:
		return fmt.Errorf("%w: TransientLinkTimeout %v and ShuffleInterval %v must not be negative", ErrConfig, c.TransientLinkTimeout, c.ShuffleInterval)
	case c.Procs > 0 && c.WorkerCommand == nil:
		return fmt.Errorf("%w: Procs > 0 needs a WorkerCommand", ErrConfig)
	}
	return nil
}

// Result is one run's figures. Per-node figures divide the workers' totals by Nodes.
type Result struct {
	Nodes      int    `json:"nodes"`
	Procs      int    `json:"procs"`
	Profile    string `json:"profile"`
	UDPSockets string `json:"udp_sockets"`
	// FormedIn is the time from the first node's start to one overlay connected by symmetric
	// links (see overlay).
	FormedIn time.Duration `json:"formed_in_ns"`
	// IdleMilliCores is the workers' CPU over the idle period, per node, in thousandths of a
	// core; SignalingMilliCores the bench process's own (the signaling server; 0 with Procs 0,
	// where it is inside the nodes' figure).
	IdleMilliCores      float64 `json:"idle_millicores_per_node"`
	SignalingMilliCores float64 `json:"signaling_millicores"`
	// RSSPerNode, GoroutinesPerNode, FDsPerNode (open files and sockets), LinksPerNode and
	// NeighborsPerNode are read at the end of the idle period (at rest); links are the nodes'
	// open links, neighbours or not.
	RSSPerNode        float64 `json:"rss_bytes_per_node"`
	GoroutinesPerNode float64 `json:"goroutines_per_node"`
	FDsPerNode        float64 `json:"fds_per_node"`
	LinksPerNode      float64 `json:"links_per_node"`
	NeighborsPerNode  float64 `json:"neighbors_per_node"`
	// Broadcasts measured, Reliability the fraction of (message, other node) deliveries made
	// within BroadcastTimeout; latency over those deliveries; RMR payloads received per
	// delivery, minus one.
	Broadcasts  int           `json:"broadcasts"`
	Reliability float64       `json:"reliability"`
	P50         time.Duration `json:"latency_p50_ns"`
	P99         time.Duration `json:"latency_p99_ns"`
	Max         time.Duration `json:"latency_max_ns"`
	RMR         float64       `json:"rmr"`
}

// WriteTable prints r as the ladder's table row with a header.
func (r Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "nodes\tprocs\tUDP sockets\tformed in\tidle mcores/node\tsignaling mcores\tRSS MiB/node\tgoroutines/node\tFDs/node\tlinks/node\tneighbours/node\tbroadcasts\treliability\tp50\tp99\tmax\tRMR\t")
	fmt.Fprintf(tw, "%d\t%d\t%s\t%v\t%.2f\t%.1f\t%.2f\t%.1f\t%.1f\t%.2f\t%.2f\t%d\t%.4f\t%v\t%v\t%v\t%.3f\t\n",
		r.Nodes, r.Procs, r.UDPSockets, r.FormedIn.Round(10*time.Millisecond), r.IdleMilliCores, r.SignalingMilliCores,
		r.RSSPerNode/(1<<20), r.GoroutinesPerNode, r.FDsPerNode, r.LinksPerNode, r.NeighborsPerNode, r.Broadcasts, r.Reliability,
		r.P50.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond), r.Max.Round(100*time.Microsecond), r.RMR)
	return tw.Flush()
}

// Run runs the ladder once.
func Run(cfg Config) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	b := &bench{cfg: cfg, sent: map[string]sentMsg{}, got: map[string]int{}}
	defer b.close()
	if err := b.startSignaling(); err != nil {
		return Result{}, err
	}
	return b.run()
}

type sentMsg struct {
	at       int64
	measured bool
}

type bench struct {
	cfg     Config
	srv     *signalserver.Server
	hs      *http.Server
	url     string
	workers []*workerConn

	mu        sync.Mutex
	sent      map[string]sentMsg // message → when broadcast
	got       map[string]int     // message → deliveries
	latencies []time.Duration    // measured messages' deliveries
	early     []report           // deliveries that arrived before their message's "sent"
}

// workerConn is the bench's end of one worker.
type workerConn struct {
	in      io.WriteCloser
	replies chan report
	cmd     *exec.Cmd
	done    chan error // the in-process worker's result
	ids     []string
}

func (b *bench) progress(format string, args ...any) {
	if b.cfg.Progress != nil {
		fmt.Fprintf(b.cfg.Progress, format+"\n", args...)
	}
}

func (b *bench) startSignaling() error {
	sc := signalserver.DefaultConfig()
	sc.MaxPeersPerNetwork = max(sc.MaxPeersPerNetwork, b.cfg.Nodes)
	// Every node connects from 127.0.0.1: one source address stands for N machines.
	sc.MaxConnectionsPerSource = b.cfg.Nodes + 16
	sc.ConnectionsPerSourcePerMinute = 100 * b.cfg.Nodes
	sc.HellosPerSourcePerMinute = 100 * b.cfg.Nodes
	srv, err := signalserver.New(sc)
	if err != nil {
		return fmt.Errorf("meshbench: signaling server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return fmt.Errorf("meshbench: signaling listener: %w", err)
	}
	b.srv = srv
	b.hs = &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.hs.Serve(ln) }()
	b.url = "ws://" + ln.Addr().String() + "/ws"
	return nil
}

func (b *bench) close() {
	for _, w := range b.workers {
		_ = w.in.Close() // a worker stops at the end of its input
	}
	for _, w := range b.workers {
		if w.cmd != nil {
			waited := make(chan struct{})
			go func() { _ = w.cmd.Wait(); close(waited) }()
			select {
			case <-waited:
			case <-time.After(30 * time.Second):
				_ = w.cmd.Process.Kill()
				<-waited
			}
		} else if w.done != nil {
			<-w.done
		}
	}
	if b.hs != nil {
		_ = b.hs.Close()
	}
	if b.srv != nil {
		b.srv.Close()
	}
}

// startWorkers starts the workers and waits until each has started its nodes.
func (b *bench) startWorkers() error {
	procs := max(b.cfg.Procs, 1)
	first := 0
	for p := range procs {
		count := b.cfg.Nodes / procs
		if p < b.cfg.Nodes%procs {
			count++
		}
		wc := workerConfig{SignalURL: b.url, Network: "meshbench", First: first, Nodes: count, Seed: b.cfg.Seed,
			Profile: b.cfg.Profile, UDPSockets: b.cfg.UDPSockets, TransientLinkTimeout: b.cfg.TransientLinkTimeout,
			ShuffleInterval: b.cfg.ShuffleInterval, LinkShuffleReplies: b.cfg.LinkShuffleReplies}
		first += count
		w := &workerConn{replies: make(chan report, 4)}
		var out io.Reader
		if b.cfg.Procs == 0 {
			inR, inW := io.Pipe()
			outR, outW := io.Pipe()
			w.in, out, w.done = inW, outR, make(chan error, 1)
			go func() {
				err := RunWorker(inR, outW)
				_ = outW.CloseWithError(err)
				w.done <- err
			}()
		} else {
			cmd := b.cfg.WorkerCommand()
			in, err := cmd.StdinPipe()
			if err != nil {
				return fmt.Errorf("meshbench: worker %d: %w", p, err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				return fmt.Errorf("meshbench: worker %d: %w", p, err)
			}
			if err := cmd.Start(); err != nil {
				return fmt.Errorf("meshbench: worker %d: %w", p, err)
			}
			w.in, out, w.cmd = in, stdout, cmd
		}
		b.workers = append(b.workers, w)
		go b.read(w, out)
		line, _ := json.Marshal(wc)
		if _, err := w.in.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("meshbench: worker %d: %w", p, err)
		}
	}
	for p, w := range b.workers {
		r, err := b.reply(w, "up", 2*time.Minute)
		if err != nil {
			return fmt.Errorf("meshbench: worker %d: %w", p, err)
		}
		w.ids = r.IDs
	}
	return nil
}

// read takes a worker's reports: deliveries and broadcasts are recorded, replies handed to
// whoever waits for one.
func (b *bench) read(w *workerConn, out io.Reader) {
	defer close(w.replies)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var r report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue
		}
		switch r.T {
		case "delivery":
			b.mu.Lock()
			if s, ok := b.sent[r.Msg]; ok {
				b.delivered(s, r)
			} else {
				b.early = append(b.early, r) // the delivery overtook the origin's report
			}
			b.mu.Unlock()
		default:
			w.replies <- r
		}
	}
}

// delivered records one delivery of a message sent at s; b.mu is held.
func (b *bench) delivered(s sentMsg, r report) {
	b.got[r.Msg]++
	if s.measured {
		b.latencies = append(b.latencies, time.Duration(r.At-s.at))
	}
}

// reply waits for a worker's next reply, which must be of type want.
func (b *bench) reply(w *workerConn, want string, timeout time.Duration) (report, error) {
	select {
	case r, ok := <-w.replies:
		switch {
		case !ok:
			return report{}, fmt.Errorf("%w ended", errWorker)
		case r.T == "error":
			return report{}, fmt.Errorf("%w: %s", errWorker, r.Err)
		case r.T != want:
			return report{}, fmt.Errorf("%w answered %q, want %q", errWorker, r.T, want)
		}
		return r, nil
	case <-time.After(timeout):
		return report{}, fmt.Errorf("%w: no %q within %v", errWorker, want, timeout)
	}
}

// ask sends a request to every worker and returns their replies in order.
func (b *bench) ask(op, want string) ([]report, error) {
	line, _ := json.Marshal(request{Op: op})
	line = append(line, '\n')
	for _, w := range b.workers {
		if _, err := w.in.Write(line); err != nil {
			return nil, fmt.Errorf("meshbench: %w", err)
		}
	}
	out := make([]report, 0, len(b.workers))
	for _, w := range b.workers {
		r, err := b.reply(w, want, time.Minute)
		if err != nil {
			return nil, fmt.Errorf("meshbench: %s: %w", op, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// overlay reports why the overlay is not one connected graph yet (nil when it is): every node
// has a neighbour that lists it back, and those symmetric links connect all nodes. A link
// listed by one end only is left out rather than waited for: a link is up at one end a moment
// before the other, and the workers answer one after the other, so a large overlay that keeps
// repairing a link somewhere would never show a snapshot without one.
func (b *bench) overlay() error {
	rs, err := b.ask("status", "status")
	if err != nil {
		return err
	}
	views := map[string][]string{}
	for _, r := range rs {
		for id, v := range r.Views {
			views[id] = v
		}
	}
	symmetric := make(map[string][]string, len(views))
	var start string
	for id, v := range views {
		start = id
		for _, p := range v {
			if slices.Contains(views[p], id) {
				symmetric[id] = append(symmetric[id], p)
			}
		}
		if len(symmetric[id]) == 0 {
			return fmt.Errorf("%s has no neighbour that lists it back (it lists %d)", id, len(v))
		}
	}
	seen := map[string]bool{start: true}
	queue := []string{start}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, q := range symmetric[p] {
			if !seen[q] {
				seen[q] = true
				queue = append(queue, q)
			}
		}
	}
	if len(seen) != b.cfg.Nodes {
		return fmt.Errorf("%d of %d nodes reachable over symmetric links", len(seen), b.cfg.Nodes)
	}
	return nil
}

// usageTotals sums the workers' usage; cpu is the workers' CPU (per distinct process).
func (b *bench) usageTotals() (total usage, err error) {
	rs, err := b.ask("usage", "usage")
	if err != nil {
		return usage{}, err
	}
	for _, r := range rs {
		u := r.Usage
		if u == nil {
			return usage{}, fmt.Errorf("meshbench: %w sent no usage", errWorker)
		}
		total.CPU += u.CPU
		total.RSS += u.RSS
		total.Goroutines += u.Goroutines
		total.FDs += u.FDs
		total.Links += u.Links
		total.Neighbors += u.Neighbors
		total.Payloads += u.Payloads
	}
	return total, nil
}

func (b *bench) run() (Result, error) {
	cfg := b.cfg
	res := Result{Nodes: cfg.Nodes, Procs: cfg.Procs, Profile: cfg.Profile, UDPSockets: cfg.UDPSockets}
	start := time.Now()
	b.progress("starting %d nodes in %d process(es)", cfg.Nodes, max(cfg.Procs, 1))
	if err := b.startWorkers(); err != nil {
		return res, err
	}
	for {
		err := b.overlay()
		if err == nil {
			break
		}
		if time.Since(start) > cfg.FormTimeout {
			return res, fmt.Errorf("meshbench: no connected overlay within %v: %w", cfg.FormTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.FormedIn = time.Since(start)
	b.progress("formed in %v; settling %v, then idle for %v", res.FormedIn.Round(10*time.Millisecond), cfg.Settle, cfg.Idle)
	time.Sleep(cfg.Settle)
	self0 := processUsage()
	u0, err := b.usageTotals()
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	time.Sleep(cfg.Idle)
	u1, err := b.usageTotals()
	if err != nil {
		return res, err
	}
	self1 := processUsage()
	wall := time.Since(t0)
	n := float64(cfg.Nodes)
	res.IdleMilliCores = 1000 * (u1.CPU - u0.CPU).Seconds() / wall.Seconds() / n
	if cfg.Procs > 0 {
		res.SignalingMilliCores = 1000 * (self1.CPU - self0.CPU).Seconds() / wall.Seconds()
	}
	res.RSSPerNode = float64(u1.RSS) / n
	res.GoroutinesPerNode = float64(u1.Goroutines) / n
	res.FDsPerNode = float64(u1.FDs) / n
	res.LinksPerNode = float64(u1.Links) / n
	res.NeighborsPerNode = float64(u1.Neighbors) / n
	b.progress("idle: %.2f milli-cores, %.1f links per node; broadcasting", res.IdleMilliCores, res.LinksPerNode)

	rng := rand.New(rand.NewPCG(cfg.Seed, 7))
	var measured []string
	var payloads uint64
	for k := range cfg.Warmup + cfg.Broadcasts {
		if k == cfg.Warmup {
			u, err := b.usageTotals()
			if err != nil {
				return res, err
			}
			payloads = u.Payloads
		}
		id, err := b.broadcast(rng.IntN(cfg.Nodes), k >= cfg.Warmup)
		if err != nil {
			return res, err
		}
		if k >= cfg.Warmup {
			measured = append(measured, id)
		}
	}
	u2, err := b.usageTotals()
	if err != nil {
		return res, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var delivered int
	for _, id := range measured {
		delivered += b.got[id]
	}
	res.Broadcasts = len(measured)
	res.Reliability = float64(delivered) / float64(len(measured)*(cfg.Nodes-1))
	lat := slices.Clone(b.latencies)
	slices.Sort(lat)
	if len(lat) > 0 {
		res.P50, res.P99, res.Max = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)], lat[len(lat)-1]
	}
	if delivered > 0 {
		res.RMR = float64(u2.Payloads-payloads)/float64(delivered) - 1
	}
	return res, nil
}

// broadcast sends one message from node i and waits until every other node delivered it or
// BroadcastTimeout passed.
func (b *bench) broadcast(i int, measure bool) (string, error) {
	var w *workerConn
	local := i
	for _, wc := range b.workers {
		if local < len(wc.ids) {
			w = wc
			break
		}
		local -= len(wc.ids)
	}
	line, _ := json.Marshal(request{Op: "broadcast", Node: local})
	if _, err := w.in.Write(append(line, '\n')); err != nil {
		return "", fmt.Errorf("meshbench: broadcast: %w", err)
	}
	r, err := b.reply(w, "sent", time.Minute)
	if err != nil {
		return "", fmt.Errorf("meshbench: broadcast: %w", err)
	}
	b.mu.Lock()
	s := sentMsg{at: r.At, measured: measure}
	b.sent[r.Msg] = s
	early := b.early[:0]
	for _, d := range b.early {
		if d.Msg == r.Msg {
			b.delivered(s, d)
		} else {
			early = append(early, d)
		}
	}
	b.early = early
	b.mu.Unlock()
	deadline := time.Now().Add(b.cfg.BroadcastTimeout)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		c := b.got[r.Msg]
		b.mu.Unlock()
		if c >= b.cfg.Nodes-1 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	return r.Msg, nil
}
