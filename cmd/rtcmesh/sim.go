package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/rtcmesh/rtcmesh/sim"
)

const simSynopsis = `Builds a HyParView overlay of --nodes simulated nodes (joins over 5 membership rounds,
then --rounds stabilisation rounds), optionally crashes a fraction of them at once (--fail),
then broadcasts --messages messages from random live nodes, optionally while --churn nodes are
replaced every round, and prints reliability, redundancy (RMR), last delivery hop, the shape of
the overlay and how many rounds it took to heal. The same --seed gives the same figures.`

func runSim(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim", simSynopsis, stderr)
	def := sim.DefaultExperiment(10000)
	nodes := fs.Int("nodes", def.Nodes, "number of nodes")
	seed := fs.Uint64("seed", def.Config.Seed, "random seed; the same seed gives the same result")
	messages := fs.Int("messages", 1000, "broadcasts to send and measure")
	protocol := fs.String("protocol", string(sim.Plumtree), "broadcast protocol: plumtree or flood")
	fail := fs.Float64("fail", 0, "fraction of nodes crashed at once after stabilisation, before the messages")
	churn := fs.Int("churn", 0, "nodes crashed and nodes joined at every round while messages flow")
	churnRounds := fs.Int("churn-rounds", def.ChurnRounds, "rounds of churn (messages are spread over them)")
	rounds := fs.Int("rounds", def.StabilizationRounds, "stabilisation rounds after the joins")
	interval := fs.Duration("message-interval", def.MessageInterval, "simulated time between broadcasts (without churn)")
	window := fs.Duration("message-window", def.MessageWindow, "simulated time after which a broadcast is measured")
	detect := fs.Duration("detect-delay", def.Config.DetectionDelay, "how long a send to a crashed node takes to fail")
	heartbeat := fs.Duration("heartbeat", def.Config.HeartbeatTimeout, "neighbours of a crashed node notice after this long (the link heartbeat); 0: only when they send to it, as in the papers")
	loss := fs.Float64("loss", 0, "probability that a message is lost in transit")
	latMin := fs.Duration("latency-min", def.Config.LatencyMin, "smallest one-way link latency")
	latMax := fs.Duration("latency-max", def.Config.LatencyMax, "largest one-way link latency")
	activeSize := fs.Int("active", def.Config.Membership.ActiveSize, "HyParView active view size")
	passiveSize := fs.Int("passive", def.Config.Membership.PassiveSize, "HyParView passive view size")
	threshold := fs.Int("threshold", def.Config.Gossip.OptimizationThreshold, "Plumtree optimisation threshold in hops (0: off)")
	pathSources := fs.Int("path-sources", def.PathSources, "BFS sources for the shortest-path statistics (0: all)")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of a summary")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := parseFlags(fs, args, os.Getenv); err != nil {
		return err
	}
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
	e := def
	e.Nodes, e.Messages, e.Protocol = *nodes, *messages, sim.Protocol(*protocol)
	e.FailFraction, e.Churn, e.ChurnRounds = *fail, *churn, *churnRounds
	e.StabilizationRounds, e.MessageInterval, e.MessageWindow = *rounds, *interval, *window
	e.PathSources = *pathSources
	e.Config.Seed, e.Config.DetectionDelay, e.Config.HeartbeatTimeout = *seed, *detect, *heartbeat
	e.Config.Loss, e.Config.LatencyMin, e.Config.LatencyMax = *loss, *latMin, *latMax
	e.Config.Membership.ActiveSize, e.Config.Membership.PassiveSize = *activeSize, *passiveSize
	e.Config.Gossip.OptimizationThreshold = *threshold
	if !*jsonOut && isTerminal(stderr) {
		bar := &progressBar{w: stderr}
		e.Progress = bar.update
		defer bar.finish()
	}
	res, err := sim.Run(e)
	if err != nil {
		return usageError{err}
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		return enc.Encode(res)
	}
	printSummary(stdout, res)
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

func printSummary(w io.Writer, r sim.Result) {
	heal := fmt.Sprint(r.RoundsToHeal)
	if r.FailFraction == 0 {
		heal = "n/a (no failure)"
	} else if r.RoundsToHeal < 0 {
		heal = "not healed"
	}
	fmt.Fprintf(w, "rtcmesh sim: %d nodes, seed %d, %s, %.0f%% crashed, churn %d/round\n", r.Nodes, r.Seed, r.Protocol, r.FailFraction*100, r.Churn)
	fmt.Fprintf(w, "  broadcasts       %d, reliability mean %.4f, min %.4f, %d reached every node\n", r.Messages, r.Reliability, r.ReliabilityMin, r.FullyReached)
	fmt.Fprintf(w, "  redundancy (RMR) %.4f   last delivery hop mean %.2f, max %d\n", r.RMR, r.LDH, r.LDHMax)
	fmt.Fprintf(w, "  overlay          %d live nodes, connected %v (%d components), isolated %d, asymmetric links %d\n", r.LiveNodes, r.Connected, r.Components, r.Isolated, r.AsymmetricLinks)
	fmt.Fprintf(w, "  views            active %.2f, passive %.2f on average; %.2f neighbour changes per node-minute while broadcasting\n", r.ActiveViewAvg, r.PassiveViewAvg, r.NeighborChangesPerNodeMinute)
	fmt.Fprintf(w, "  graph            clustering coefficient %.5f, average shortest path %.2f, max %d\n", r.ClusteringCoefficient, r.AvgShortestPath, r.MaxShortestPath)
	fmt.Fprintf(w, "  healing          %s rounds\n", heal)
	fmt.Fprintf(w, "  effort           %d events over %.0f simulated seconds in %.1f s wall, peak heap %.0f MiB\n", r.Events, r.SimulatedSeconds, r.WallSeconds, float64(r.PeakHeapBytes)/(1<<20))
}
