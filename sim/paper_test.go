package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The experiments of the HyParView and Plumtree papers at 10,000 nodes, with fixed seeds. The
// required margins are the ones in the project's issue; the figures each run measured are
// logged side by side (go test -v -run TestPaper ./sim) and quoted in the README. They run one
// after the other, on one core, so that the real-network tests go test runs beside them keep
// the other.

const paperNodes = 10000

func runPaper(t *testing.T, name string, e Experiment) Result {
	t.Helper()
	if testing.Short() {
		t.Skip("10,000-node simulation skipped in -short mode")
	}
	r, err := Run(e)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Logf("%-28s reliability %.4f (min %.4f) eventual %.4f (min %.4f) rmr %.3f ldh %.1f/%d heal %d connected %v isolated %d asym %d cc %.5f asp %.2f catch-up %.1f%% of payload wall %.1fs",
		name, r.Reliability, r.ReliabilityMin, r.EventualReliability, r.EventualReliabilityMin, r.RMR, r.LDH, r.LDHMax, r.RoundsToHeal, r.Connected, r.Isolated,
		r.AsymmetricLinks, r.ClusteringCoefficient, r.AvgShortestPath, 100*catchUpRatio(r), r.WallSeconds)
	return r
}

// catchUpRatio is catch-up's overhead: its bytes over the payload bytes in the same time.
func catchUpRatio(r Result) float64 {
	if r.PayloadBytesPerNodeRound == 0 {
		return 0
	}
	return r.CatchUpBytesPerNodeRound / r.PayloadBytesPerNodeRound
}

// withCatchUpWindow sets the gossip catch-up window of e's nodes to d, and the age of their
// seen IDs with it.
func withCatchUpWindow(e *Experiment, d time.Duration) {
	e.Config.Gossip.CatchUpWindow = d
	e.Config.Gossip.SeenMaxAge = SeenMaxAgeFor(e.Config.Gossip)
}

func paperExperiment(p Protocol, messages int, fail float64) Experiment {
	e := DefaultExperiment(paperNodes)
	e.Protocol = p
	e.Messages = messages
	e.FailFraction = fail
	e.Config.Seed = 42
	// The papers' protocols alone: routing through the overlay is not in them, has tests
	// of its own (route_test.go), and costs these 10,000-node runs about 75% more CPU (the
	// neighbours' VIEWs and route tables), which the CI run cannot spare.
	e.Config.Routing.Enabled = false
	return e
}

// checkInvariants holds for every run: nothing delivered twice, no core refused a message
// another core produced, no message addressed to a node that does not exist.
func checkInvariants(t *testing.T, name string, r Result) {
	t.Helper()
	if r.DuplicateDeliveries != 0 {
		t.Errorf("%s: %d messages were delivered twice to the same node", name, r.DuplicateDeliveries)
	}
	if r.StepErrors != 0 {
		t.Errorf("%s: cores refused %d messages produced by other cores", name, r.StepErrors)
	}
}

func TestPaperStablePlumtree(t *testing.T) {
	r := runPaper(t, "stable/plumtree", paperExperiment(Plumtree, 1000, 0))
	checkInvariants(t, "stable/plumtree", r)
	if r.ReliabilityMin != 1 || r.FullyReached != r.Messages {
		t.Errorf("reliability: min %.5f, %d of %d messages reached everyone; want every message everywhere", r.ReliabilityMin, r.FullyReached, r.Messages)
	}
	if r.RMR > 0.05 {
		t.Errorf("rmr %.4f, want <= 0.05 once the tree formed", r.RMR)
	}
	// Catch-up at rest, one 256-byte broadcast a second: a summary Digest per node per
	// round, and nothing more to fetch.
	if r.EventualReliabilityMin != 1 || catchUpRatio(r) > 0.05 {
		t.Errorf("catch-up at rest: eventual reliability min %.5f, %.0f catch-up bytes per node-round = %.2f%% of %.0f payload bytes; want 1 and <= 5%%",
			r.EventualReliabilityMin, r.CatchUpBytesPerNodeRound, 100*catchUpRatio(r), r.PayloadBytesPerNodeRound)
	}
	if !r.Connected || r.Isolated != 0 || r.AsymmetricLinks != 0 || r.DeadLinks != 0 {
		t.Errorf("overlay: connected %v, isolated %d, asymmetric %d, dead links %d; want connected, 0, 0, 0",
			r.Connected, r.Isolated, r.AsymmetricLinks, r.DeadLinks)
	}
	// The graph at rest (HyParView paper, Table 1: clustering 0.00092, shortest path 6.39).
	if r.ClusteringCoefficient > 0.002 {
		t.Errorf("clustering coefficient %.5f, want <= 0.002", r.ClusteringCoefficient)
	}
	if r.AvgShortestPath < 3 || r.AvgShortestPath > 10 {
		t.Errorf("average shortest path %.2f is far from the paper's 6.39", r.AvgShortestPath)
	}
}

func TestPaperStableFlood(t *testing.T) {
	r := runPaper(t, "stable/flood", paperExperiment(Flood, 1000, 0))
	checkInvariants(t, "stable/flood", r)
	if r.RMR < 2.7 || r.RMR > 3.3 {
		t.Errorf("flood rmr %.3f, want 3 ± 0.3 (eager push over an active view of 5)", r.RMR)
	}
	if r.ReliabilityMin != 1 {
		t.Errorf("flood reliability min %.5f, want 1", r.ReliabilityMin)
	}
}

func TestPaperMassFailure(t *testing.T) {
	cases := []struct {
		fail           float64
		minReliability float64 // flood, mean over the first 1,000 messages
		maxHeal        int     // flood
	}{
		{0.50, 0.99, 2},
		{0.80, 0.98, 2},
		{0.90, 0.95, 4},
		{0.95, 0.85, -1}, // no healing bound at 95%
	}
	rows := make([]string, len(cases))
	t.Cleanup(func() {
		t.Logf("\n%-6s | %-34s | %-34s\n%s", "failed", "flood: reliability / min / heal", "plumtree: reliability / min / heal", strings.Join(rows, "\n"))
	})
	for k, c := range cases {
		t.Run(fmt.Sprintf("%.0f%%", c.fail*100), func(t *testing.T) {
			flood := runPaper(t, fmt.Sprintf("fail %.0f%%/flood", c.fail*100), paperExperiment(Flood, 1000, c.fail))
			plum := runPaper(t, fmt.Sprintf("fail %.0f%%/plumtree", c.fail*100), paperExperiment(Plumtree, 1000, c.fail))
			checkInvariants(t, "flood", flood)
			checkInvariants(t, "plumtree", plum)
			rows[k] = fmt.Sprintf("%5.0f%% | %.4f / %.4f / %2d rounds          | %.4f / %.4f / %2d rounds", c.fail*100,
				flood.Reliability, flood.ReliabilityMin, flood.RoundsToHeal, plum.Reliability, plum.ReliabilityMin, plum.RoundsToHeal)
			if flood.Reliability < c.minReliability {
				t.Errorf("flood: mean reliability %.4f, want >= %.2f", flood.Reliability, c.minReliability)
			}
			if c.maxHeal >= 0 && (flood.RoundsToHeal < 0 || flood.RoundsToHeal > c.maxHeal) {
				t.Errorf("flood: healed after %d rounds, want <= %d", flood.RoundsToHeal, c.maxHeal)
			}
			// Plumtree runs over the same membership, so it heals as fast: once healed, a
			// broadcast reaches every survivor. At 95% neither paper claims healing: survivors
			// can end in small groups whose views are full of each other, which no HyParView
			// mechanism detects (the figures are reported side by side all the same).
			if c.maxHeal >= 0 && (plum.RoundsToHeal < 0 || plum.RoundsToHeal > c.maxHeal) {
				t.Errorf("plumtree: healed after %d rounds, want <= %d", plum.RoundsToHeal, c.maxHeal)
			}
		})
	}
}

func TestPaperChurn(t *testing.T) {
	e := paperExperiment(Plumtree, 1000, 0)
	e.Churn, e.ChurnRounds = 50, 100
	r := runPaper(t, "churn 50/round/plumtree", e)
	checkInvariants(t, "churn", r)
	if r.ReliabilityMin != 1 {
		t.Errorf("churn: reliability min %.5f (mean %.5f), want 1 among nodes alive through each message's life", r.ReliabilityMin, r.Reliability)
	}
	if r.RMR > 0.1 {
		t.Errorf("churn: rmr %.4f, want <= 0.1", r.RMR)
	}
}

// TestPaperMassFailureEventual crashes a fraction of the overlay at once and sends 200
// broadcasts after it: the tree loses some (the immediate reliability, logged), and catch-up
// must bring every one of them to every survivor by the end of the run.
func TestPaperMassFailureEventual(t *testing.T) {
	fails := []float64{0.50, 0.80, 0.90, 0.95}
	rows := make([]string, len(fails))
	t.Cleanup(func() {
		t.Logf("\n%-6s | %-26s | %-26s | %s\n%s", "failed", "immediate: mean / min", "eventual: mean / min", "catch-up bytes/node-round, deliveries", strings.Join(rows, "\n"))
	})
	for k, fail := range fails {
		t.Run(fmt.Sprintf("%.0f%%", fail*100), func(t *testing.T) {
			name := fmt.Sprintf("fail %.0f%%/eventual", fail*100)
			e := paperExperiment(Plumtree, 200, fail)
			e.SkipHealing = true
			r := runPaper(t, name, e)
			checkInvariants(t, name, r)
			rows[k] = fmt.Sprintf("%5.0f%% | %.4f / %.4f            | %.4f / %.4f            | %.0f, %d (%d within the window)", fail*100,
				r.Reliability, r.ReliabilityMin, r.EventualReliability, r.EventualReliabilityMin, r.CatchUpBytesPerNodeRound, r.HistoryDeliveries, r.CaughtUpInWindow)
			if r.EventualReliability != 1 || r.EventualReliabilityMin != 1 {
				t.Errorf("eventual reliability %.5f (min %.5f), want 1: every survivor gets every message; overlay connected %v, %d components",
					r.EventualReliability, r.EventualReliabilityMin, r.Connected, r.Components)
			}
		})
	}
}

// TestPaperChurnEventual replaces 50 nodes every round for 20 rounds while 200 broadcasts are
// sent: every node alive at the end, including those that joined after a message, gets every
// message. The catch-up window (5 min, the runtime's) covers the run; a node that joins
// later than the window after a message cannot get it, by design.
func TestPaperChurnEventual(t *testing.T) {
	e := paperExperiment(Plumtree, 200, 0)
	e.Churn, e.ChurnRounds = 50, 20
	withCatchUpWindow(&e, 5*time.Minute)
	r := runPaper(t, "churn 50/round/eventual", e)
	checkInvariants(t, "churn", r)
	if r.EventualReliability != 1 || r.EventualReliabilityMin != 1 {
		t.Errorf("churn: eventual reliability %.5f (min %.5f), want 1 over every node alive at the end", r.EventualReliability, r.EventualReliabilityMin)
	}
}
