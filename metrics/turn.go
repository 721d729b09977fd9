package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtcmesh/rtcmesh/turnserver"
)

// TURNSource is what TURNCollector reads: *turnserver.Server provides it.
type TURNSource interface {
	Stats() turnserver.Stats
}

// The direction label of the relayed traffic families.
const (
	directionToPeer   = "to_peer"   // from clients out of relay sockets
	directionFromPeer = "from_peer" // from peers back to clients
)

// TURNCollector exports the TURN relay's allocations, traffic and refusals.
type TURNCollector struct {
	server TURNSource

	active, total                  *prometheus.Desc
	bytes, packets                 *prometheus.Desc
	permission, auth, quota, drops *prometheus.Desc
	tcpDrops, retired              *prometheus.Desc
	reloads, reloadFailures        *prometheus.Desc
	userAllocs, userMax            *prometheus.Desc
}

// NewTURNCollector returns a collector reading s at every scrape.
func NewTURNCollector(s TURNSource) *TURNCollector {
	return &TURNCollector{
		server:         s,
		active:         newDesc("turn", "allocations", "Allocations that exist now."),
		total:          newDesc("turn", "allocations_total", "Allocations created."),
		bytes:          newDesc("turn", "relayed_bytes_total", "Payload bytes relayed, to_peer (client to peer) or from_peer (peer to client).", "direction"),
		packets:        newDesc("turn", "relayed_packets_total", "Datagrams relayed, to_peer (client to peer) or from_peer (peer to client).", "direction"),
		permission:     newDesc("turn", "permission_refusals_total", "Permissions, channel binds and datagrams refused by the peer deny-list."),
		auth:           newDesc("turn", "auth_failures_total", "Requests with expired, malformed or wrongly signed credentials."),
		quota:          newDesc("turn", "quota_refusals_total", "Allocations refused by the per-user or server-wide quota."),
		drops:          newDesc("turn", "bandwidth_drops_total", "Datagrams dropped by the per-allocation bandwidth limit."),
		tcpDrops:       newDesc("turn", "tcp_queue_drops_total", "Peer datagrams dropped because a TCP or TLS client's connection could not take them."),
		retired:        newDesc("turn", "retired_secret_auths_total", "Requests on existing allocations accepted under a secret a reload has removed."),
		reloads:        newDesc("turn", "reloads_total", "Reloads of the secrets and peer lists."),
		reloadFailures: newDesc("turn", "reload_failures_total", "Reloads refused as invalid; the previous secrets and peer lists stayed."),
		userAllocs:     newDesc("turn", "user_allocations", "Users (node IDs) by the allocations each holds now; the count is the users with any."),
		userMax:        newDesc("turn", "user_allocations_max", "The most allocations one user holds now."),
	}
}

// Describe implements prometheus.Collector.
func (c *TURNCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.active, c.total, c.bytes, c.packets, c.permission, c.auth, c.quota, c.drops,
		c.tcpDrops, c.retired, c.reloads, c.reloadFailures, c.userAllocs, c.userMax} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *TURNCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.server.Stats()
	ch <- gauge(c.active, float64(s.AllocationsActive))
	ch <- counter(c.total, s.AllocationsTotal)
	ch <- counter(c.bytes, s.BytesToPeers, directionToPeer)
	ch <- counter(c.bytes, s.BytesFromPeers, directionFromPeer)
	ch <- counter(c.packets, s.PacketsToPeers, directionToPeer)
	ch <- counter(c.packets, s.PacketsFromPeers, directionFromPeer)
	ch <- counter(c.permission, s.PermissionRefusals)
	ch <- counter(c.auth, s.AuthFailures)
	ch <- counter(c.quota, s.QuotaRefusals)
	ch <- counter(c.drops, s.BandwidthDrops)
	ch <- counter(c.tcpDrops, s.TCPQueueDrops)
	ch <- counter(c.retired, s.RetiredSecretAuths)
	ch <- counter(c.reloads, s.Reloads)
	ch <- counter(c.reloadFailures, s.ReloadFailures)
	ch <- gauge(c.userMax, float64(s.UserAllocations.Max))
	// A const histogram: cumulative buckets over a fixed set of bounds, whatever the number of
	// users.
	buckets := make(map[float64]uint64, len(turnserver.UserAllocationBuckets))
	var cumulative uint64
	for i, bound := range turnserver.UserAllocationBuckets {
		cumulative += s.UserAllocations.Buckets[i]
		buckets[float64(bound)] = cumulative
	}
	ch <- prometheus.MustNewConstHistogram(c.userAllocs, uint64(s.UserAllocations.Users), float64(s.AllocationsActive), buckets)
}
