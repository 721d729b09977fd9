// Command gossipsub runs rtcmesh and go-libp2p-pubsub's gossipsub side by side on the same work
// (N nodes in one process over in-memory links with a fixed latency, broadcasts of a fixed
// size from random nodes at a fixed interval) and prints a markdown table of reliability,
// payload copies, bytes, latency, hops and CPU, with ratios. Each run (one system, one N, one
// seed) is a child process of its own, so one system's goroutines and garbage never weigh on
// the other's CPU figures. It is a module of its own so that the main module never depends on
// libp2p; see README.md.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gossipsub bench:", err)
		os.Exit(1)
	}
}

// options are the command line: the runs to make and the work of each.
type options struct {
	params
	sizes   string
	seeds   int
	seed0   uint64
	systems string
	jsonOut string
	from    string
	child   bool
}

func parse(args []string, stderr io.Writer) (*options, *flag.FlagSet, error) {
	o := &options{}
	fs := flag.NewFlagSet("gossipsub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.sizes, "n", "100", "node counts to run, comma separated (e.g. 100,500,1000)")
	fs.IntVar(&o.seeds, "seeds", 3, "seeds per node count; figures are medians over them")
	fs.Uint64Var(&o.seed0, "seed", 1, "first seed; the runs use seed, seed+1, …")
	fs.StringVar(&o.systems, "systems", "gossipsub,rtcmesh", "systems to run, comma separated: gossipsub, rtcmesh")
	fs.StringVar(&o.jsonOut, "json", "", "append every run's figures as a JSON line to this file")
	fs.StringVar(&o.from, "from", "", "print the table of the runs in this JSON-lines file (written by -json) instead of running; -n, -seeds and -systems are ignored")
	fs.BoolVar(&o.child, "child", false, "internal: make one run (-system, one -n, -seed) and print its JSON")
	fs.StringVar(&o.System, "system", "", "internal: the system of a -child run")
	fs.IntVar(&o.Broadcasts, "broadcasts", 100, "broadcasts per run, warm-up included")
	fs.IntVar(&o.Warmup, "warmup", 10, "first broadcasts left out of every figure (the tree forms on them)")
	fs.DurationVar(&o.Interval, "interval", 100*time.Millisecond, "time between two broadcasts")
	fs.IntVar(&o.Size, "size", 256, "payload bytes")
	fs.DurationVar(&o.Latency, "latency", 10*time.Millisecond, "one-way latency of every link")
	fs.DurationVar(&o.Settle, "settle", 5*time.Second, "wait after formation before the idle period")
	fs.DurationVar(&o.Idle, "idle", 10*time.Second, "idle period over which idle CPU is measured")
	fs.DurationVar(&o.Drain, "drain", 10*time.Second, "wait at most this long after the last broadcast for deliveries")
	fs.DurationVar(&o.Form, "form", 5*time.Minute, "give up when the overlay or mesh has not formed within this")
	fs.IntVar(&o.Degree, "degree", 6, "gossipsub: each node dials this many distinct random others")
	fs.BoolVar(&o.MocknetLatency, "mocknet-latency", false, "gossipsub: use mocknet's own link latency, which passes one write of 256 B or more per latency per stream, instead of a FIFO delay per stream like memlink's")
	fs.DurationVar(&o.Tick, "tick", 0, "rtcmesh: node TickInterval (0: the LAN profile's 100ms)")
	fs.IntVar(&o.OptThreshold, "opt", -1, "rtcmesh: Gossip.OptimizationThreshold, 0 = off (-1: the default, 7)")
	fs.DurationVar(&o.Missing, "missing", 0, "rtcmesh: Gossip.MissingTimeout (0: the LAN profile's 300ms)")
	fs.DurationVar(&o.GraftRetry, "graft-retry", 0, "rtcmesh: Gossip.GraftRetryTimeout (0: the LAN profile's 150ms)")
	fs.DurationVar(&o.LazyFlush, "lazy-flush", -1, "rtcmesh: Gossip.LazyFlushInterval, 0 = each IHAVE at once (-1: default 50ms)")
	fs.DurationVar(&o.Shuffle, "shuffle", 0, "rtcmesh: Membership.ShuffleInterval (0: the LAN profile's)")
	fs.BoolVar(&o.LinkShuffleReplies, "link-shuffle-replies", false, "rtcmesh: send each shuffle reply straight to its destination instead of through the overlay")
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	switch {
	case o.Broadcasts < 1 || o.Warmup < 0 || o.Warmup >= o.Broadcasts:
		return nil, nil, fmt.Errorf("-warmup %d must be in [0, -broadcasts %d)", o.Warmup, o.Broadcasts)
	case o.Size < 4:
		return nil, nil, fmt.Errorf("-size %d must be at least 4 (the broadcast's index)", o.Size)
	case o.seeds < 1:
		return nil, nil, fmt.Errorf("-seeds %d must be at least 1", o.seeds)
	case o.Interval <= 0 || o.Latency < 0 || o.Idle <= 0 || o.Drain <= 0 || o.Form <= 0:
		return nil, nil, errors.New("-interval, -idle, -drain and -form must be positive, -latency not negative")
	case o.Degree < 1:
		return nil, nil, fmt.Errorf("-degree %d must be at least 1", o.Degree)
	}
	return o, fs, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	o, fs, err := parse(args, stderr)
	if err != nil {
		return err
	}
	sizes, err := parseSizes(o.sizes)
	if err != nil {
		return err
	}
	if o.child {
		o.N, o.Seed = sizes[0], o.seed0
		var r result
		switch o.System {
		case "rtcmesh":
			r, err = runRTCMesh(o.params)
		case "gossipsub":
			r, err = runGossipsub(o.params)
		default:
			return fmt.Errorf("-system %q: want rtcmesh or gossipsub", o.System)
		}
		if err != nil {
			return err
		}
		return json.NewEncoder(stdout).Encode(r)
	}
	if o.from != "" {
		return report(o, o.from, stdout)
	}
	systems := strings.Split(o.systems, ",")
	for _, s := range systems {
		if s != "rtcmesh" && s != "gossipsub" {
			return fmt.Errorf("-systems: unknown system %q", s)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var all []result
	for _, n := range sizes {
		for seed := o.seed0; seed < o.seed0+uint64(o.seeds); seed++ {
			for _, sys := range systems {
				r, err := child(exe, fs, sys, n, seed, stderr)
				if err != nil {
					return fmt.Errorf("%s N=%d seed %d: %w", sys, n, seed, err)
				}
				fmt.Fprintf(stderr, "%s N=%d seed %d: %s\n", sys, n, seed, summary(r))
				if o.jsonOut != "" {
					if err := appendJSON(o.jsonOut, r); err != nil {
						return err
					}
				}
				all = append(all, r)
			}
		}
	}
	printReport(stdout, o, sizes, systems, all)
	return nil
}

// report prints the table of the runs saved in path, one column per N found.
func report(o *options, path string, stdout io.Writer) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var all []result
	var sizes []int
	var systems []string
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		all = append(all, r)
		if !slices.Contains(sizes, r.N) {
			sizes = append(sizes, r.N)
		}
		if !slices.Contains(systems, r.System) {
			systems = append(systems, r.System)
		}
	}
	slices.Sort(sizes)
	slices.Sort(systems) // gossipsub before rtcmesh, as the table expects
	o.seeds = 0          // seeds per N may differ: the header says so
	printReport(stdout, o, sizes, systems, all)
	return nil
}

// child makes one run in a process of its own, with the parent's flags.
func child(exe string, fs *flag.FlagSet, sys string, n int, seed uint64, stderr io.Writer) (result, error) {
	args := []string{"-child", "-system", sys, "-n", strconv.Itoa(n), "-seed", strconv.FormatUint(seed, 10)}
	fs.VisitAll(func(f *flag.Flag) {
		switch f.Name {
		case "child", "system", "n", "seed", "seeds", "systems", "json":
		default:
			args = append(args, "-"+f.Name+"="+f.Value.String())
		}
	})
	cmd := exec.Command(exe, args...)
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, err
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		return r, fmt.Errorf("reading the run's figures: %w", err)
	}
	return r, nil
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			return nil, fmt.Errorf("-n: %q is not a node count of at least 2", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func appendJSON(path string, r result) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := json.NewEncoder(w).Encode(r); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func summary(r result) string {
	return fmt.Sprintf("[%s] formed %.1fs rel %.4f copies %.3f bytes/b %.0f p50 %.0fms p99 %.0fms max %.0fms >500ms %d hops %.1f/%.1f cpu/b %.1fms idle %.3f cores grafts/b %.2f prunes/b %.2f links lost/s %.2f load %.1f; %s",
		r.Knobs, r.FormedS, r.Reliability, r.Copies, r.Bytes, r.P50, r.P99, r.Max, r.Late500, r.HopsMean, r.HopsLast, r.CPUPerBcast, r.IdleCores, r.Grafts, r.Prunes, r.ViewChangesS, r.Load, r.Notes)
}

// median returns the median of f over runs (the mean of the middle two for an even count).
func median(runs []result, f func(result) float64) float64 {
	v := make([]float64, 0, len(runs))
	for _, r := range runs {
		v = append(v, f(r))
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// row is one line of the report: a figure, how to print it, and whether a ratio means
// anything for it.
type row struct {
	name  string
	get   func(result) float64
	unit  func(float64) string
	ratio bool
}

func printReport(w io.Writer, o *options, sizes []int, systems []string, all []result) {
	pick := func(sys string, n int) []result {
		var out []result
		for _, r := range all {
			if r.System == sys && r.N == n {
				out = append(out, r)
			}
		}
		return out
	}
	rows := []row{
		{"reliability", func(r result) float64 { return r.Reliability }, func(v float64) string { return trim(v, 4) }, false},
		{"payload copies per node", func(r result) float64 { return r.Copies }, func(v float64) string { return trim(v, 3) }, true},
		{"bytes per broadcast", func(r result) float64 { return r.Bytes }, si, true},
		{"latency p50", func(r result) float64 { return r.P50 }, msStr, true},
		{"latency p99", func(r result) float64 { return r.P99 }, msStr, true},
		{"latency max", func(r result) float64 { return r.Max }, msStr, true},
		{"deliveries later than 500 ms", func(r result) float64 { return float64(r.Late500) }, func(v float64) string { return comma(int(v + 0.5)) }, false},
		{"hops mean", func(r result) float64 { return r.HopsMean }, hopsStr, true},
		{"hops of the last delivery", func(r result) float64 { return r.HopsLast }, hopsStr, true},
		{"CPU per broadcast", func(r result) float64 { return r.CPUPerBcast }, msStr, true},
		{"CPU used in the broadcast window", func(r result) float64 { return r.CPUPerBcast * float64(r.Measured) / 1000 / max(r.WindowS, 1e-9) }, func(v float64) string { return trim(v, 2) + " cores" }, false},
		{"CPU when idle", func(r result) float64 { return r.IdleCores }, func(v float64) string { return trim(v, 3) + " cores" }, true},
		{"bytes per second when idle", func(r result) float64 { return r.IdleBytesS }, si, true},
		{"GRAFTs per broadcast", func(r result) float64 { return r.Grafts }, func(v float64) string { return trim(v, 2) }, false},
		{"neighbour links lost per second", func(r result) float64 { return r.ViewChangesS }, func(v float64) string { return trim(v, 2) }, false},
		{"machine load average (1 min) at the broadcasts", func(r result) float64 { return r.Load }, func(v float64) string { return trim(v, 1) }, false},
		{"formed in", func(r result) float64 { return r.FormedS }, func(v float64) string { return trim(v, 1) + " s" }, false},
	}
	seeds := fmt.Sprintf("medians of %d seeds from %d", o.seeds, o.seed0)
	if o.from != "" {
		seeds = "medians of the runs in " + o.from
		for _, n := range sizes {
			seeds += fmt.Sprintf(", %d at N = %d", len(pick(systems[0], n)), n)
		}
	}
	fmt.Fprintf(w, "In-memory links of %v one way; %d broadcasts of %d B from random nodes %v apart, the first %d left out; idle CPU over %v after formation and %v of settling; %s.\n\n",
		o.Latency, o.Broadcasts, o.Size, o.Interval, o.Warmup, o.Idle, o.Settle, seeds)
	both := len(systems) == 2
	header := "| |"
	sep := "|---|"
	for _, n := range sizes {
		if both {
			header += fmt.Sprintf(" N = %s gossipsub / rtcmesh |", comma(n))
		} else {
			header += fmt.Sprintf(" N = %s %s |", comma(n), systems[0])
		}
		sep += "---|"
	}
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, sep)
	for _, rw := range rows {
		line := "| " + rw.name + " |"
		for _, n := range sizes {
			var cells []string
			var vals []float64
			for _, sys := range []string{"gossipsub", "rtcmesh"} {
				if !slices.Contains(systems, sys) {
					continue
				}
				v := median(pick(sys, n), rw.get)
				vals = append(vals, v)
				cells = append(cells, rw.unit(v))
			}
			cell := strings.Join(cells, " / ")
			if both && rw.ratio && vals[0] > 0 && vals[1] > 0 {
				cell += fmt.Sprintf(" (%s×)", trim(vals[1]/vals[0], 2))
			}
			line += " " + cell + " |"
		}
		fmt.Fprintln(w, line)
	}
	if both {
		fmt.Fprintln(w, "\nRatios are rtcmesh ÷ gossipsub.")
	}
}

func trim(v float64, prec int) string {
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func msStr(v float64) string {
	if v >= 100 {
		return comma(int(v+0.5)) + " ms"
	}
	return trim(v, 1) + " ms"
}

func hopsStr(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return trim(v, 1)
}

// si prints a byte count with k or M.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return trim(v/1e6, 2) + " M"
	case v >= 1e3:
		return trim(v/1e3, 0) + " k"
	}
	return trim(v, 0)
}

func comma(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
