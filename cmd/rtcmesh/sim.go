package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/rtcmesh/rtcmesh/sim"
)

// simFlagSet binds the sim command's flags to the fields of e, an experiment with the
// defaults; jsonOut, cpuProfile and memProfile are the flags that are not the experiment's.
func simFlagSet(stderr io.Writer, e *sim.Experiment) (fs *flag.FlagSet, jsonOut *bool, cpuProfile, memProfile *string) {
	fs = newFlagSet("sim", stderr)
	c := &e.Config
	fs.IntVar(&e.Nodes, "nodes", e.Nodes, "number of nodes")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed; the same seed gives the same result")
	fs.IntVar(&e.Messages, "messages", 1000, "broadcasts to send and measure")
	fs.StringVar((*string)(&e.Protocol), "protocol", string(sim.Plumtree), "broadcast protocol: plumtree or flood")
	fs.Float64Var(&e.FailFraction, "fail", 0, "fraction of nodes crashed at once after stabilisation, before the messages")
	fs.IntVar(&e.Churn, "churn", 0, "nodes crashed and nodes joined at every round while messages flow")
	fs.IntVar(&e.ChurnRounds, "churn-rounds", e.ChurnRounds, "rounds of churn (messages are spread over them)")
	fs.IntVar(&e.StabilizationRounds, "rounds", e.StabilizationRounds, "stabilisation rounds after the joins")
	fs.DurationVar(&e.MessageInterval, "message-interval", e.MessageInterval, "simulated time between broadcasts (without churn)")
	fs.DurationVar(&e.MessageWindow, "message-window", e.MessageWindow, "simulated time after which a broadcast is measured")
	fs.IntVar(&e.PayloadSize, "payload", e.PayloadSize, "size of each broadcast's payload in bytes")
	fs.DurationVar(&c.Gossip.CatchUpWindow, "catch-up", c.Gossip.CatchUpWindow, "catch-up (anti-entropy) window: how far back, by send time, nodes keep broadcasts and offer them to neighbours that missed them; a node that joins later than this after a message cannot get it; 0: off")
	fs.IntVar(&e.DrainRounds, "drain-rounds", e.DrainRounds, "membership rounds run after the last broadcast before the eventual reliability is taken")
	fs.DurationVar(&c.DetectionDelay, "detect-delay", c.DetectionDelay, "how long a send to a crashed node takes to fail")
	fs.DurationVar(&c.HeartbeatTimeout, "heartbeat", c.HeartbeatTimeout, "neighbours of a crashed node notice after this long (the link heartbeat); 0: only when they send to it, as in the papers")
	fs.Float64Var(&c.Loss, "loss", 0, "probability that a message is lost in transit")
	fs.DurationVar(&c.LatencyMin, "latency-min", c.LatencyMin, "smallest one-way link latency")
	fs.DurationVar(&c.LatencyMax, "latency-max", c.LatencyMax, "largest one-way link latency")
	fs.IntVar(&c.Membership.ActiveSize, "active", c.Membership.ActiveSize, "HyParView active view size")
	fs.IntVar(&c.Membership.PassiveSize, "passive", c.Membership.PassiveSize, "HyParView passive view size")
	fs.IntVar(&c.Gossip.OptimizationThreshold, "threshold", c.Gossip.OptimizationThreshold, "Plumtree optimisation threshold in hops (0: off)")
	fs.IntVar(&e.PathSources, "path-sources", e.PathSources, "BFS sources for the shortest-path statistics (0: all)")
	fs.Float64Var(&e.Attackers, "attackers", 0, "fraction of the nodes that run the --attack policy against the honest ones")
	fs.StringVar((*string)(&e.Attack), "attack", "", "hostile policy of the --attackers: drop, eclipse, poison or flood")
	fs.IntVar(&e.AttackRounds, "attack-rounds", e.AttackRounds, "rounds the attackers' injected messages run before the first broadcast")
	fs.BoolVar(&e.Defences, "defences", e.Defences, "keep the protocol cores' defences against hostile peers on; false: off, for side-by-side figures")
	fs.BoolVar(&c.Membership.SampledPassive, "sampled-passive", c.Membership.SampledPassive, "keep each full passive view a min-wise sample of the IDs heard (membership.Config.SampledPassive, after Brahms); false: evict at random, as the paper; --defences=false turns it off")
	fs.IntVar(&c.Membership.OutboundQuota, "outbound-quota", c.Membership.OutboundQuota, "active slots each node keeps for neighbours it chose from its passive view, at most (active-1)/2; peers that ask get the rest (membership.Config.OutboundQuota, after gossipsub's D_out); 0: off; --defences=false turns it off")
	fs.DurationVar(&c.Membership.OutboundQuotaFor, "outbound-quota-for", c.Membership.OutboundQuotaFor, "how long --outbound-quota holds after a node cut off a peer for misbehaving (membership.Config.OutboundQuotaFor); 0: always")
	fs.BoolVar(&e.ServerGone, "server-gone", false, "the signaling server disappears after stabilisation (at the --fail crash): a link whose offer finds no route through the overlay cannot be set up, and no node gets fresh contacts")
	fs.BoolVar(&c.RouteShuffleReplies, "route-shuffle-replies", c.RouteShuffleReplies, "send a shuffle reply to a node that is not a neighbour through the overlay when a route is known, as a node does, instead of counting a link setup for it (needs --routing)")
	fs.BoolVar(&c.Routing.Enabled, "routing", c.Routing.Enabled, "route link signals through the overlay where a route is known (server_signal_fraction counts the setups that still needed the server); false: every setup uses the server")
	return fs, fs.Bool("json", false, "print one JSON object instead of a summary"), fs.String("cpuprofile", "", "write a CPU profile of the run to this file"),
		fs.String("memprofile", "", "write a heap profile to this file when the last broadcast has been measured, while the whole network is still live (what --nodes N costs in memory, by allocation site; sampled every 4 KiB allocated)")
}

func runSim(args []string, stdout, stderr io.Writer) error {
	e := sim.DefaultExperiment(10000)
	fs, jsonOut, cpuProfile, memProfile := simFlagSet(stderr, &e)
	if err := parseFlags(fs, args, os.Getenv); err != nil {
		return err
	}
	// Seen IDs must outlive the catch-up window; they cost memory, so no longer than that.
	e.Config.Gossip.SeenMaxAge = sim.SeenMaxAgeFor(e.Config.Gossip)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if !*jsonOut && isTerminal(stderr) {
		bar := &progressBar{w: stderr}
		e.Progress = bar.update
		defer bar.finish()
	}
	var heapErr error
	heapWritten := false
	if *memProfile != "" {
		if e.Messages == 0 {
			return usageError{errors.New("--memprofile needs broadcasts (--messages above 0): the profile is taken when the last one has been measured")}
		}
		// Created now, so that a bad path fails before the run rather than after it.
		f, err := os.Create(*memProfile)
		if err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
		defer f.Close()
		// One sample per 4 KiB allocated instead of 512 KiB, for this run: small networks'
		// per-node state shows too, at the cost of a slower run.
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 4096
		show := e.Progress
		e.Progress = func(p sim.Progress) {
			if show != nil {
				show(p)
			}
			if p.Phase == "broadcast" && p.Done == p.Total && !heapWritten {
				heapErr, heapWritten = writeHeapProfile(f), true
			}
		}
	}
	res, err := sim.Run(e)
	if err != nil {
		return usageError{err}
	}
	if heapErr != nil {
		return heapErr
	}
	if *jsonOut {
		return json.NewEncoder(stdout).Encode(res)
	}
	res.WriteSummary(stdout)
	return nil
}

// writeHeapProfile writes the live heap, after a collection, to f and closes it.
func writeHeapProfile(f *os.File) error {
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws one line that it rewrites in place.
type progressBar struct {
	w       io.Writer
	last    time.Time
	started bool
}

func (b *progressBar) update(p sim.Progress) {
	if time.Since(b.last) < 100*time.Millisecond && p.Done != p.Total {
		return
	}
	b.last, b.started = time.Now(), true
	const width = 30
	filled := 0
	if p.Total > 0 {
		filled = width * p.Done / p.Total
	}
	fmt.Fprintf(b.w, "\r%-10s [%s%s] %d/%d ", p.Phase, strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.Done, p.Total)
}

func (b *progressBar) finish() {
	if b.started {
		fmt.Fprint(b.w, "\r\033[K")
	}
}
