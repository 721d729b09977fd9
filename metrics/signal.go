package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

// SignalSource is what SignalCollector reads: *signalserver.Server provides it.
type SignalSource interface {
	Stats() signalserver.Stats
}

// SignalCollector exports the signaling server's connections and counters.
type SignalCollector struct {
	server SignalSource

	connections, peers, networks  *prometheus.Desc
	welcomed, relayed, rejections *prometheus.Desc
	queued, sources, maxConns     *prometheus.Desc
}

// NewSignalCollector returns a collector reading s at every scrape.
func NewSignalCollector(s SignalSource) *SignalCollector {
	return &SignalCollector{
		server:      s,
		connections: newDesc("signal", "connections", "Open WebSocket connections, including those not yet past hello."),
		peers:       newDesc("signal", "peers", "Connections that completed hello (members of a network)."),
		networks:    newDesc("signal", "networks", "Networks with at least one member."),
		welcomed:    newDesc("signal", "welcomed_total", "Hellos accepted."),
		relayed:     newDesc("signal", "messages_relayed_total", "Offers, answers and candidates relayed to their target."),
		rejections: newDesc("signal", "rejections_total",
			"Errors sent to clients and slow-consumer disconnects, by error code: among them connections refused for server_full, source_full and source_rate_limited, and relays refused for target_busy.", "reason"),
		queued:   newDesc("signal", "queued_bytes", "Bytes of frames waiting to be written to all connections (bounded by MaxQueuedBytes)."),
		sources:  newDesc("signal", "sources", "Source addresses tracked for the per-source limits."),
		maxConns: newDesc("signal", "max_connections", "The connection limit in force: the configured one, or lower to fit the open-file limit."),
	}
}

// Describe implements prometheus.Collector.
func (c *SignalCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connections, c.peers, c.networks, c.welcomed, c.relayed, c.rejections, c.queued, c.sources, c.maxConns} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Rejection reasons appear once they have occurred.
func (c *SignalCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.server.Stats()
	ch <- gauge(c.connections, float64(s.Connections))
	ch <- gauge(c.peers, float64(s.Peers))
	ch <- gauge(c.networks, float64(s.Networks))
	ch <- counter(c.welcomed, s.Welcomed)
	ch <- counter(c.relayed, s.MessagesRelayed)
	ch <- gauge(c.queued, float64(s.QueuedBytes))
	ch <- gauge(c.sources, float64(s.Sources))
	ch <- gauge(c.maxConns, float64(s.MaxConnections))
	for code, n := range s.Rejections {
		ch <- counter(c.rejections, n, string(code))
	}
}
