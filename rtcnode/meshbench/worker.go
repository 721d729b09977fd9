//go:build !js

package meshbench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link/rtclink"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/rtcnode"
)

// A worker runs some of the bench's nodes, in a child process (RunWorker on its standard
// input and output) or, with Config.Procs 0, inside the bench's own process. It talks to the
// bench in JSON lines: the first line from the bench is the workerConfig, then requests; the
// worker answers each request with one reply and streams every delivery and every broadcast it
// made as they happen.

// workerConfig is the first line a worker reads: which nodes to run and how.
type workerConfig struct {
	SignalURL string `json:"signal_url"`
	Network   string `json:"network"`
	// First is the index of the worker's first node in the whole mesh, Nodes how many it runs.
	First, Nodes int
	Seed         uint64
	Profile      string
	// UDPSockets, TransientLinkTimeout, ShuffleInterval, LinkShuffleReplies: see Config.
	UDPSockets           string
	TransientLinkTimeout time.Duration
	ShuffleInterval      time.Duration
	LinkShuffleReplies   bool
}

// request is what the bench asks of a worker.
type request struct {
	Op   string `json:"op"` // "status", "usage" or "broadcast"
	Node int    `json:"node,omitempty"`
}

// report is one line a worker writes.
type report struct {
	T string `json:"t"` // "up", "status", "usage", "sent", "delivery", "error"
	// up: the IDs of the worker's nodes, in order.
	IDs []string `json:"ids,omitempty"`
	// status: the active view of each node.
	Views map[string][]string `json:"views,omitempty"`
	// usage.
	Usage *usage `json:"usage,omitempty"`
	// sent, delivery: message, node (origin for sent), time (Unix ns), hops.
	Msg  string `json:"msg,omitempty"`
	Node string `json:"node,omitempty"`
	At   int64  `json:"at,omitempty"`
	Hops int    `json:"hops,omitempty"`
	// error.
	Err string `json:"err,omitempty"`
}

// usage is what a worker's process and nodes cost at one instant.
type usage struct {
	PID int `json:"pid"`
	// CPU is user plus system time of the whole process since it started.
	CPU        time.Duration `json:"cpu_ns"`
	RSS        int64         `json:"rss"`
	Goroutines int           `json:"goroutines"`
	// FDs is the process's open file descriptors (sockets included); 0 where /proc is absent.
	FDs int `json:"fds"`
	// Links sums the nodes' open links (neighbours or not); Neighbors their active views;
	// Payloads the GOSSIP messages they received.
	Links, Neighbors int
	Payloads         uint64
}

// loopback is where the bench's nodes gather and check ICE candidates: every packet stays on
// the machine.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// nodeConfig is the rtcnode configuration of the bench's i-th node.
func nodeConfig(wc workerConfig, key identity.Signer, i int) (rtcnode.Config, error) {
	cfg := rtcnode.DefaultConfig(key, wc.SignalURL, wc.Network)
	switch wc.Profile {
	case "lan":
		cfg.Node = node.DefaultLANConfig()
	case "wan":
		cfg.Node = node.DefaultConfig()
	default:
		return cfg, fmt.Errorf("profile %q: want lan or wan", wc.Profile)
	}
	cfg.Node.Seed = wc.Seed*1_000_003 + uint64(i) + 1
	if wc.ShuffleInterval > 0 {
		cfg.Node.Membership.ShuffleInterval = wc.ShuffleInterval
	}
	cfg.Node.RouteShuffleReplies = !wc.LinkShuffleReplies
	if wc.TransientLinkTimeout > 0 {
		cfg.Node.TransientLinkTimeout = wc.TransientLinkTimeout
	}
	cfg.Link.SetICENetworks(loopback)
	cfg.Link.UDPSocket.Shared = wc.UDPSockets == "node"
	cfg.Link.MDNS = rtclink.MDNSDisabled
	cfg.Signal.MinBackoff = 100 * time.Millisecond
	cfg.Signal.MaxBackoff = 2 * time.Second
	return cfg, nil
}

// RunWorker runs a worker on in and out until in ends: the body of `rtcmesh bench
// mesh-worker`, a child process of `rtcmesh bench mesh`.
func RunWorker(in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() {
		return fmt.Errorf("meshbench worker: no configuration line: %v", sc.Err())
	}
	var wc workerConfig
	if err := json.Unmarshal(sc.Bytes(), &wc); err != nil {
		return fmt.Errorf("meshbench worker: configuration: %w", err)
	}
	w := &worker{enc: json.NewEncoder(out)}
	if err := w.start(wc); err != nil {
		w.write(report{T: "error", Err: err.Error()})
		w.close()
		return err
	}
	defer w.close()
	for sc.Scan() {
		var r request
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("meshbench worker: request: %w", err)
		}
		w.handle(r)
	}
	return sc.Err()
}

type worker struct {
	mu    sync.Mutex // serialises writes
	enc   *json.Encoder
	nodes []*rtcnode.Node
	wg    sync.WaitGroup
}

func (w *worker) write(r report) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.enc.Encode(r) // the bench has gone: nothing to tell
}

func (w *worker) start(wc workerConfig) error {
	ids := make([]string, 0, wc.Nodes)
	for i := range wc.Nodes {
		key, err := identity.GenerateKey()
		if err != nil {
			return err
		}
		cfg, err := nodeConfig(wc, key, wc.First+i)
		if err != nil {
			return err
		}
		n, err := rtcnode.Start(cfg)
		if err != nil {
			return fmt.Errorf("node %d: %w", wc.First+i, err)
		}
		w.nodes = append(w.nodes, n)
		ids = append(ids, n.ID())
		w.wg.Add(2)
		go func() {
			defer w.wg.Done()
			for d := range n.Deliveries() {
				if d.Hops > 0 {
					w.write(report{T: "delivery", Msg: d.ID.String(), Node: n.ID(), At: d.ReceivedAt.UnixNano(), Hops: d.Hops})
				}
			}
		}()
		go func() {
			defer w.wg.Done()
			for range n.Events() {
			}
		}()
	}
	w.write(report{T: "up", IDs: ids})
	return nil
}

func (w *worker) handle(r request) {
	switch r.Op {
	case "status":
		views := make(map[string][]string, len(w.nodes))
		for _, n := range w.nodes {
			var ids []string
			for _, nb := range n.Neighbors() {
				ids = append(ids, nb.ID)
			}
			views[n.ID()] = ids
		}
		w.write(report{T: "status", Views: views})
	case "usage":
		u := processUsage()
		for _, n := range w.nodes {
			s := n.Stats()
			u.Links += s.Links
			u.Neighbors += s.Membership.ActiveSize
			u.Payloads += s.Gossip.Received[gossip.Gossip]
		}
		w.write(report{T: "usage", Usage: &u})
	case "broadcast":
		if r.Node < 0 || r.Node >= len(w.nodes) {
			w.write(report{T: "error", Err: fmt.Sprintf("no node %d", r.Node)})
			return
		}
		n := w.nodes[r.Node]
		at := time.Now()
		id, err := n.Broadcast([]byte("meshbench probe " + strconv.FormatInt(at.UnixNano(), 10)))
		if err != nil {
			w.write(report{T: "error", Err: err.Error()})
			return
		}
		w.write(report{T: "sent", Msg: id.String(), Node: n.ID(), At: at.UnixNano()})
	default:
		w.write(report{T: "error", Err: fmt.Sprintf("unknown request %q", r.Op)})
	}
}

func (w *worker) close() {
	var wg sync.WaitGroup
	for _, n := range w.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = n.Close()
		}()
	}
	wg.Wait()
	w.wg.Wait()
}

// processUsage reads this process's CPU time, resident memory and goroutines.
func processUsage() usage {
	u := usage{PID: os.Getpid(), Goroutines: runtime.NumGoroutine()}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		u.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	u.RSS = residentBytes()
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		u.FDs = len(fds)
	}
	return u
}

// residentBytes reads VmRSS from /proc/self/status (Linux); elsewhere it falls back to the
// memory the Go runtime obtained from the system.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				f := strings.Fields(v)
				if len(f) == 2 && f[1] == "kB" {
					if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
						return kb << 10
					}
				}
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Sys)
}

// errWorker is a worker's error report.
var errWorker = errors.New("meshbench: worker")
