package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtcmesh/rtcmesh/membership"
)

// membershipDefences exports the counters of the membership core's defences against hostile
// peers (membership.Config, "Defences"): where an eclipse, a JOIN storm, passive-view
// poisoning or a flood shows.
type membershipDefences struct {
	refused, rateLimited, entriesDropped, passiveCapped *prometheus.Desc
	passiveNotSampled, opportunisticRepairs             *prometheus.Desc
	forcedEvictions, evictionsRefused                   *prometheus.Desc
	repairStalls, contactRequests, reportsDropped       *prometheus.Desc
}

func newMembershipDefences() membershipDefences {
	return membershipDefences{
		refused:              newDesc("membership", "refused_total", "HyParView messages refused because of their sender, by reason: unsolicited_shuffle_reply (no shuffle of this node waiting), oversized_shuffle_reply (more entries than the shuffle sent), stranger_shuffle (a SHUFFLE from outside the active view), rate_limited (beyond the per-peer rate).", "reason"),
		rateLimited:          newDesc("membership", "rate_limited_total", "HyParView messages dropped by the per-peer, per-type rate limit, by type.", "type"),
		entriesDropped:       newDesc("membership", "shuffle_entries_dropped_total", "SHUFFLE entries beyond the merge cap, neither merged nor forwarded."),
		passiveCapped:        newDesc("membership", "passive_capped_total", "Passive-view entries that replaced one taught by the same peer, because that peer already taught its cap."),
		passiveNotSampled:    newDesc("membership", "passive_not_sampled_total", "IDs kept out of a full passive view because they ranked worse, in its min-wise sample, than every entry they could have replaced."),
		opportunisticRepairs: newDesc("membership", "opportunistic_repairs_total", "High-priority NEIGHBOR requests a full active view sent to replace neighbours that announce broadcasts but deliver none (no neighbour proved useful, one misbehaved)."),
		forcedEvictions:      newDesc("membership", "forced_evictions_total", "Neighbours evicted to make room for another peer's high-priority NEIGHBOR, JOIN or join-walk end."),
		evictionsRefused:     newDesc("membership", "evictions_refused_total", "Such requests refused because the round's eviction budget was spent or every neighbour was protected."),
		repairStalls:         newDesc("membership", "repair_stalls_total", "Requests for fresh contacts because the repair made no progress for several rounds."),
		contactRequests:      newDesc("membership", "contact_requests_total", "Requests for fresh contacts (NeedContacts) made to the runtime, for any reason."),
		reportsDropped:       newDesc("membership", "misbehaviour_dropped_total", "Membership refusals counted but not reported to peer scoring (beyond the per-round report bound)."),
	}
}

func (d membershipDefences) describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{d.refused, d.rateLimited, d.entriesDropped, d.passiveCapped, d.passiveNotSampled, d.opportunisticRepairs,
		d.forcedEvictions, d.evictionsRefused, d.repairStalls, d.contactRequests, d.reportsDropped} {
		ch <- x
	}
}

func (d membershipDefences) collect(ch chan<- prometheus.Metric, m membership.Stats) {
	for r := membership.RefusedUnsolicitedReply; int(r) < len(m.Refused); r++ {
		ch <- counter(d.refused, m.Refused[r], r.String())
	}
	for t := membership.Join; t <= membership.ShuffleReply; t++ {
		ch <- counter(d.rateLimited, m.RateLimited[t], t.String())
	}
	ch <- counter(d.entriesDropped, m.ShuffleEntriesDropped)
	ch <- counter(d.passiveCapped, m.PassiveCapped)
	ch <- counter(d.passiveNotSampled, m.PassiveNotSampled)
	ch <- counter(d.opportunisticRepairs, m.OpportunisticRepairs)
	ch <- counter(d.forcedEvictions, m.ForcedEvictions)
	ch <- counter(d.evictionsRefused, m.EvictionsRefused)
	ch <- counter(d.repairStalls, m.RepairStalls)
	ch <- counter(d.contactRequests, m.ContactRequests)
	ch <- counter(d.reportsDropped, m.MisbehaviourDropped)
}
