package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtcmesh/rtcmesh/signaling/signalnats"
)

// ClusterSource is what ClusterCollector reads: *signalnats.Cluster provides it.
type ClusterSource interface {
	Stats() signalnats.Stats
}

// ClusterCollector exports a signaling instance's share of a NATS cluster.
type ClusterCollector struct {
	cluster ClusterSource

	connected, local, remote        *prometheus.Desc
	relaysOut, relaysIn, relayErrs  *prometheus.Desc
	replaced, expired, dropped      *prometheus.Desc
	inboxDropped, malformed, pubErr *prometheus.Desc
}

// NewClusterCollector returns a collector reading c at every scrape.
func NewClusterCollector(c ClusterSource) *ClusterCollector {
	return &ClusterCollector{
		cluster:   c,
		connected: newDesc("signal_nats", "connected", "1 while the NATS connection is up."),
		local:     newDesc("signal_nats", "local_peers", "Members of this instance, over all networks."),
		remote:    newDesc("signal_nats", "remote_peers", "Members of other instances this instance knows of (bounded by MaxRemotePeers)."),
		relaysOut: newDesc("signal_nats", "relays_out_total", "Relays published to members of other instances."),
		relaysIn:  newDesc("signal_nats", "relays_in_total", "Relays from other instances delivered to members of this one."),
		relayErrs: newDesc("signal_nats", "relay_errors_total", "Relays from other instances whose target was gone or busy here (the sender is told)."),
		replaced:  newDesc("signal_nats", "replaced_total", "Members closed because a newer connection of the same ID proved its key on another instance."),
		expired:   newDesc("signal_nats", "expired_total", "Members of other instances forgotten after PresenceTTL without an announcement."),
		dropped:   newDesc("signal_nats", "remote_dropped_total", "Announced members of other instances not kept because MaxRemotePeers was reached."),
		inboxDropped: newDesc("signal_nats", "inbox_dropped_total",
			"NATS messages dropped because this instance's inbox (InboxLength) was full."),
		malformed: newDesc("signal_nats", "malformed_total", "NATS messages on this deployment's subjects ignored as unreadable."),
		pubErr:    newDesc("signal_nats", "publish_errors_total", "Publications NATS refused."),
	}
}

// Describe implements prometheus.Collector.
func (c *ClusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connected, c.local, c.remote, c.relaysOut, c.relaysIn, c.relayErrs,
		c.replaced, c.expired, c.dropped, c.inboxDropped, c.malformed, c.pubErr} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ClusterCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.cluster.Stats()
	up := 0.0
	if s.Connected {
		up = 1
	}
	ch <- gauge(c.connected, up)
	ch <- gauge(c.local, float64(s.LocalPeers))
	ch <- gauge(c.remote, float64(s.RemotePeers))
	ch <- counter(c.relaysOut, s.RelaysOut)
	ch <- counter(c.relaysIn, s.RelaysIn)
	ch <- counter(c.relayErrs, s.RelayErrors)
	ch <- counter(c.replaced, s.Replaced)
	ch <- counter(c.expired, s.Expired)
	ch <- counter(c.dropped, s.RemoteDropped)
	ch <- counter(c.inboxDropped, s.InboxDropped)
	ch <- counter(c.malformed, s.Malformed)
	ch <- counter(c.pubErr, s.PublishErrors)
}
