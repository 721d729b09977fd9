package sim

import (
	"fmt"
	"io"
)

// WriteSummary writes the result as the few lines `rtcmesh sim` prints: reliability, at once
// and eventually, redundancy, what catch-up costs, the overlay's shape and health, and what the
// run cost.
func (r Result) WriteSummary(w io.Writer) {
	heal := fmt.Sprint(r.RoundsToHeal)
	if r.FailFraction == 0 {
		heal = "n/a (no failure)"
	} else if r.RoundsToHeal < 0 {
		heal = "not healed"
	}
	fmt.Fprintf(w, "rtcmesh sim: %d nodes, seed %d, %s, %.0f%% crashed, churn %d/round\n", r.Nodes, r.Seed, r.Protocol, r.FailFraction*100, r.Churn)
	fmt.Fprintf(w, "  broadcasts       %d, reliability mean %.4f, min %.4f, %d reached every node\n", r.Messages, r.Reliability, r.ReliabilityMin, r.FullyReached)
	fmt.Fprintf(w, "  eventually       reliability mean %.4f, min %.4f over the nodes alive at the end; %d deliveries by catch-up (%d within the window)\n", r.EventualReliability, r.EventualReliabilityMin, r.HistoryDeliveries, r.CaughtUpInWindow)
	ratio := "n/a"
	if r.PayloadBytesPerNodeRound > 0 {
		ratio = fmt.Sprintf("%.2f%%", 100*r.CatchUpBytesPerNodeRound/r.PayloadBytesPerNodeRound)
	}
	fmt.Fprintf(w, "  catch-up         %.0f bytes per node-round, payload %.0f bytes per node-round (catch-up/payload %s)\n", r.CatchUpBytesPerNodeRound, r.PayloadBytesPerNodeRound, ratio)
	fmt.Fprintf(w, "  redundancy (RMR) %.4f   last delivery hop mean %.2f, max %d\n", r.RMR, r.LDH, r.LDHMax)
	fmt.Fprintf(w, "  overlay          %d live nodes, connected %v (%d components), isolated %d, asymmetric links %d\n", r.LiveNodes, r.Connected, r.Components, r.Isolated, r.AsymmetricLinks)
	fmt.Fprintf(w, "  views            active %.2f, passive %.2f on average; %.2f neighbour changes per node-minute while broadcasting\n", r.ActiveViewAvg, r.PassiveViewAvg, r.NeighborChangesPerNodeMinute)
	fmt.Fprintf(w, "  graph            clustering coefficient %.5f, average shortest path %.2f, max %d\n", r.ClusteringCoefficient, r.AvgShortestPath, r.MaxShortestPath)
	fmt.Fprintf(w, "  healing          %s rounds\n", heal)
	fmt.Fprintf(w, "  signaling        %d link setups while broadcasting, %d needed the server (server_signal_fraction %.4f); %d shuffle replies through the overlay, no link\n",
		r.LinkSetups, r.ServerSignals, r.ServerSignalFraction, r.ShuffleRepliesRouted)
	if r.Attackers > 0 {
		defences := "on"
		if !r.Defences {
			defences = "off"
		}
		fmt.Fprintf(w, "  attack           %s by %.0f%% of the nodes, defences %s: honest reliability mean %.4f, min %.4f, honest RMR %.4f\n", r.Attack, r.Attackers*100, defences, r.HonestReliability, r.HonestReliabilityMin, r.HonestRMR)
		fmt.Fprintf(w, "                   %d honest nodes eclipsed (no honest neighbour); attackers hold %.1f%% of honest active and %.1f%% of honest passive views\n", r.Eclipsed, 100*r.HostileInActive, 100*r.PoisonedPassive)
		fmt.Fprintf(w, "                   %d crafted messages injected, %d refused; %d flood broadcasts, %.1f delivered per honest node; %d links closed by peer scoring\n", r.InjectedMessages, r.RefusedFromAttackers, r.FloodBroadcasts, r.HostileDeliveriesPerHonestNode, r.ScoredOut)
	}
	fmt.Fprintf(w, "  effort           %d events over %.0f simulated seconds in %.1f s wall, peak heap %.0f MiB\n", r.Events, r.SimulatedSeconds, r.WallSeconds, float64(r.PeakHeapBytes)/(1<<20))
}
