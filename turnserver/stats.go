package turnserver

import "sync/atomic"

// Stats is a snapshot of the server's counters, shaped for export as
// Prometheus metrics: AllocationsActive is a gauge, the rest are counters.
type Stats struct {
	// AllocationsActive is the number of allocations that exist now.
	AllocationsActive int64
	// AllocationsTotal counts allocations created since start.
	AllocationsTotal uint64
	// BytesToPeers and PacketsToPeers count payload relayed from clients
	// out of relay sockets.
	BytesToPeers   uint64
	PacketsToPeers uint64
	// BytesFromPeers and PacketsFromPeers count payload relayed from peers
	// to clients (ChannelData and Data indications).
	BytesFromPeers   uint64
	PacketsFromPeers uint64
	// PermissionRefusals counts CreatePermission, ChannelBind and Connect
	// requests refused by the peer policy (answered 403), plus datagrams a
	// relay socket refused to send (a Send indication or ChannelData to a
	// denied address that somehow had a permission, or to the relay host's
	// own address outside the relay port range).
	PermissionRefusals uint64
	// AuthFailures counts requests with expired, malformed or wrongly signed
	// credentials (answered 401). The first, unauthenticated request of
	// every transaction is a normal challenge and is not counted.
	AuthFailures uint64
	// RetiredSecretAuths counts requests on existing allocations accepted
	// under a secret that Reload has since removed: the allocation keeps the
	// key it was made with. It falls to zero growth once the clients of the
	// old secret have refreshed their credentials or gone.
	RetiredSecretAuths uint64
	// Reloads counts successful Reload calls; ReloadFailures those refused
	// as invalid (the old configuration stays).
	Reloads        uint64
	ReloadFailures uint64
	// QuotaRefusals counts allocations refused by MaxAllocationsPerUser or
	// MaxAllocations.
	QuotaRefusals uint64
	// BandwidthDrops counts datagrams dropped by BandwidthPerAllocation.
	BandwidthDrops uint64
	// TCPQueueDrops counts peer datagrams dropped because a TCP or TLS
	// client's connection could not take them: its send buffer and
	// TCPQueueSize bytes of queue were full.
	TCPQueueDrops uint64
	// UserAllocations is how allocations are spread over users (node IDs)
	// now, as a bounded histogram: a user near MaxAllocationsPerUser shows in
	// Max and the top buckets without naming anyone.
	UserAllocations UserAllocations
}

// BytesRelayed is the payload relayed in both directions.
func (s Stats) BytesRelayed() uint64 { return s.BytesToPeers + s.BytesFromPeers }

// counters are the live, atomically updated values behind Stats.
type counters struct {
	allocationsActive  atomic.Int64
	allocationsTotal   atomic.Uint64
	bytesToPeers       atomic.Uint64
	packetsToPeers     atomic.Uint64
	bytesFromPeers     atomic.Uint64
	packetsFromPeers   atomic.Uint64
	permissionRefusals atomic.Uint64
	authFailures       atomic.Uint64
	retiredSecretAuths atomic.Uint64
	reloads            atomic.Uint64
	reloadFailures     atomic.Uint64
	quotaRefusals      atomic.Uint64
	bandwidthDrops     atomic.Uint64
	tcpQueueDrops      atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		AllocationsActive:  c.allocationsActive.Load(),
		AllocationsTotal:   c.allocationsTotal.Load(),
		BytesToPeers:       c.bytesToPeers.Load(),
		PacketsToPeers:     c.packetsToPeers.Load(),
		BytesFromPeers:     c.bytesFromPeers.Load(),
		PacketsFromPeers:   c.packetsFromPeers.Load(),
		PermissionRefusals: c.permissionRefusals.Load(),
		AuthFailures:       c.authFailures.Load(),
		RetiredSecretAuths: c.retiredSecretAuths.Load(),
		Reloads:            c.reloads.Load(),
		ReloadFailures:     c.reloadFailures.Load(),
		QuotaRefusals:      c.quotaRefusals.Load(),
		BandwidthDrops:     c.bandwidthDrops.Load(),
		TCPQueueDrops:      c.tcpQueueDrops.Load(),
	}
}
