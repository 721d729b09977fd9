package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/link"
	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/scoring"
)

// NodeSource is what NodeCollector reads: *node.Node and *node.WebRTCNode provide it.
type NodeSource interface {
	Stats() node.Stats
	Neighbors() []node.Neighbor
}

// knownPaths are always exported for rtcmesh_links, at zero when no neighbour uses them, so a
// dashboard sees a path type appear as a change of value rather than a new series.
var knownPaths = []link.Path{link.PathHost, link.PathSrflx, link.PathPrflx, link.PathRelay, link.PathMemory}

// unknownPath labels a neighbour whose link is not (or no longer) up.
const unknownPath = "unknown"

// NodeCollector exports one node's membership, broadcast and link counters.
type NodeCollector struct {
	node NodeSource

	activeView, passiveView             *prometheus.Desc
	membershipReceived, membershipSent  *prometheus.Desc
	peerDowns, rejoins, membershipInval *prometheus.Desc
	membershipDefences                  membershipDefences

	links, linksOpen *prometheus.Desc

	broadcasts, delivered, duplicates *prometheus.Desc
	gossipSent, gossipReceived        *prometheus.Desc
	cache, seen, missing              *prometheus.Desc
	eager, lazy, gossipInvalid        *prometheus.Desc
	refused, origins                  *prometheus.Desc

	historyMessages, historyBytes, historyDelivered, historyDuplicates *prometheus.Desc
	pendingPulls, catchUpThrottled, unsent, unsentDropped              *prometheus.Desc

	framesSent, framesReceived, badFrames *prometheus.Desc
	framesDropped, slowPeers              *prometheus.Desc
	deliveriesDropped, eventsDropped      *prometheus.Desc
	catchUpFramesDropped                  *prometheus.Desc

	// The broadcast defences and peer scoring.
	ihaveExcess, graftsThrottled, graftsRefused, brokenPromises *prometheus.Desc
	cacheBytes, seenBytes                                       *prometheus.Desc
	scorePeers, scoreNegative, scoreRefused, scoreMin           *prometheus.Desc
	scoreDisconnects, scoreOffences, scoreFirstDeliveries       *prometheus.Desc
	refusedLinks, refusedMessages                               *prometheus.Desc
}

// NewNodeCollector returns a collector reading n at every scrape.
func NewNodeCollector(n NodeSource) *NodeCollector {
	return &NodeCollector{
		node:                 n,
		membershipDefences:   newMembershipDefences(),
		activeView:           newDesc("membership", "active_view_size", "Peers in the HyParView active view (the node's neighbours)."),
		passiveView:          newDesc("membership", "passive_view_size", "Peers in the HyParView passive view (backups for repairs)."),
		membershipReceived:   newDesc("membership", "messages_received_total", "HyParView messages handed to the membership core, by type.", "type"),
		membershipSent:       newDesc("membership", "messages_sent_total", "HyParView messages the membership core emitted, by type.", "type"),
		peerDowns:            newDesc("membership", "peer_downs_total", "Link failures (failed dials, lost links, failed sends) reported to the membership core."),
		rejoins:              newDesc("membership", "rejoins_total", "Joins restarted through a contact because both views ran empty."),
		membershipInval:      newDesc("membership", "invalid_messages_total", "HyParView messages the membership core refused."),
		links:                newDesc("", "links", "Neighbours by the path their link takes (host, srflx, prflx, relay, memory; unknown while the link is not up).", "path"),
		linksOpen:            newDesc("", "links_open", "Open links, neighbours or not (a link opened for a shuffle reply or a refused request counts until it idles out)."),
		broadcasts:           newDesc("gossip", "broadcasts_total", "Messages this node broadcast."),
		delivered:            newDesc("gossip", "delivered_total", "Other nodes' messages delivered to this node's application live, through the broadcast tree (those caught up on are counted in rtcmesh_gossip_history_delivered_total)."),
		duplicates:           newDesc("gossip", "duplicates_total", "Payloads received again after the first copy."),
		gossipSent:           newDesc("gossip", "messages_sent_total", "Plumtree messages the broadcast core emitted, by type.", "type"),
		gossipReceived:       newDesc("gossip", "messages_received_total", "Plumtree messages handed to the broadcast core, by type.", "type"),
		cache:                newDesc("gossip", "cache_messages", "Payloads held to answer GRAFTs."),
		seen:                 newDesc("gossip", "seen_ids", "Message IDs remembered for duplicate suppression."),
		missing:              newDesc("gossip", "missing_messages", "Messages announced by IHAVE but not yet received."),
		eager:                newDesc("gossip", "eager_peers", "Neighbours the broadcast tree sends payloads to."),
		lazy:                 newDesc("gossip", "lazy_peers", "Neighbours that get announcements (IHAVE) only."),
		gossipInvalid:        newDesc("gossip", "invalid_messages_total", "Plumtree messages the broadcast core refused."),
		refused:              newDesc("gossip", "refused_total", "Broadcasts refused before delivery or forwarding, by reason: signature (forged or modified), replay (a sequence number seen before), clock (time outside the skew window), self-origin (claims this node), link-rate (beyond the sending link's forwarding budget), origin-rate (beyond the origin's budget).", "reason"),
		origins:              newDesc("gossip", "origins", "Origins whose sequence numbers the node tracks for replay protection."),
		historyMessages:      newDesc("gossip", "history_messages", "Broadcasts kept for catch-up (the recent window neighbours that missed them fetch from)."),
		historyBytes:         newDesc("gossip", "history_bytes", "Payload and signature bytes of the broadcasts kept for catch-up."),
		historyDelivered:     newDesc("gossip", "history_delivered_total", "Deliveries that came by catch-up (missed while paused, cut off or not yet joined) rather than through the broadcast tree."),
		historyDuplicates:    newDesc("gossip", "history_duplicates_total", "Catch-up payloads received for messages already delivered."),
		pendingPulls:         newDesc("gossip", "pending_pulls", "Messages asked of a neighbour by catch-up and not yet received."),
		catchUpThrottled:     newDesc("gossip", "catch_up_throttled_total", "Catch-up answers not sent because the asking neighbour's budget was spent (a peer asking too much shows here)."),
		unsent:               newDesc("gossip", "unsent_messages", "This node's broadcasts made with no neighbour, kept to push to its next one."),
		unsentDropped:        newDesc("gossip", "unsent_dropped_total", "Broadcasts made with no neighbour dropped from the store-and-forward list to keep it bounded (catch-up still offers them)."),
		framesSent:           newDesc("node", "frames_sent_total", "Protocol frames handed to links."),
		framesReceived:       newDesc("node", "frames_received_total", "Protocol frames received from links."),
		badFrames:            newDesc("node", "bad_frames_total", "Frames the wire format or a core refused; each closed its link."),
		framesDropped:        newDesc("node", "frames_dropped_total", "Frames dropped because a peer's pending queue was full, or its send queue while catch-up frames filled it."),
		slowPeers:            newDesc("node", "slow_peers_total", "Links closed because their send queue was full."),
		deliveriesDropped:    newDesc("node", "deliveries_dropped_total", "Deliveries the application did not read in time (the oldest are dropped)."),
		eventsDropped:        newDesc("node", "events_dropped_total", "Neighbour events the application did not read in time (the oldest are dropped)."),
		catchUpFramesDropped: newDesc("node", "catch_up_frames_dropped_total", "Catch-up frames (DIGEST, HAVE, PULL, HISTORY) dropped because a link's catch-up queue was full or the link went down; the core asks again."),
		ihaveExcess:          newDesc("gossip", "ihave_excess_total", "Announcements (IHAVE entries) ignored because their announcer already had its cap of missing messages pending."),
		graftsThrottled:      newDesc("gossip", "grafts_throttled_total", "GRAFTs this node held back because its GRAFT budget was spent (sent later)."),
		graftsRefused:        newDesc("gossip", "grafts_refused_total", "GRAFTs not answered with a payload because the asking neighbour's budget was spent."),
		brokenPromises:       newDesc("gossip", "broken_promises_total", "Announcers grafted for a message that then did not arrive in time."),
		cacheBytes:           newDesc("gossip", "cache_bytes", "Payload and signature bytes held to answer GRAFTs."),
		seenBytes:            newDesc("gossip", "seen_bytes", "Estimated memory of the seen set (64 bytes an ID)."),
		scorePeers:           newDesc("score", "peers", "Peers with a score record (bounded)."),
		scoreNegative:        newDesc("score", "negative_peers", "Peers whose score is below 0."),
		scoreRefused:         newDesc("score", "refused_peers", "Peers refused now: their score fell below the threshold and their cooling period has not ended."),
		scoreMin:             newDesc("score", "min", "The lowest score of a peer with a record (0 when none)."),
		scoreDisconnects:     newDesc("score", "disconnects_total", "Peers disconnected because their score fell below the threshold."),
		scoreOffences:        newDesc("score", "offences_total", "Offences recorded against peers, by offence.", "offence"),
		scoreFirstDeliveries: newDesc("score", "first_deliveries_total", "Broadcasts credited to the peer that brought them first."),
		refusedLinks:         newDesc("node", "refused_links_total", "Links closed because peer scoring refused their peer (at the verdict, or when it linked again while cooling)."),
		refusedMessages:      newDesc("node", "refused_messages_total", "Messages from or to refused peers dropped."),
	}
}

// Describe implements prometheus.Collector.
func (c *NodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.activeView, c.passiveView, c.membershipReceived, c.membershipSent, c.peerDowns, c.rejoins, c.membershipInval,
		c.links, c.linksOpen,
		c.broadcasts, c.delivered, c.duplicates, c.gossipSent, c.gossipReceived, c.cache, c.seen, c.missing,
		c.eager, c.lazy, c.gossipInvalid, c.refused, c.origins,
		c.historyMessages, c.historyBytes, c.historyDelivered, c.historyDuplicates,
		c.pendingPulls, c.catchUpThrottled, c.unsent, c.unsentDropped,
		c.framesSent, c.framesReceived, c.badFrames, c.framesDropped, c.slowPeers, c.deliveriesDropped, c.eventsDropped,
		c.catchUpFramesDropped,
		c.ihaveExcess, c.graftsThrottled, c.graftsRefused, c.brokenPromises, c.cacheBytes, c.seenBytes,
		c.scorePeers, c.scoreNegative, c.scoreRefused, c.scoreMin, c.scoreDisconnects, c.scoreOffences, c.scoreFirstDeliveries,
		c.refusedLinks, c.refusedMessages,
	} {
		ch <- d
	}
	c.membershipDefences.describe(ch)
}

// Collect implements prometheus.Collector. It reads the node twice (Stats, then Neighbors),
// each a consistent snapshot taken on the node's own goroutine; a closed node reads as zero.
func (c *NodeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.node.Stats()
	m, g := s.Membership, s.Gossip

	ch <- gauge(c.activeView, float64(m.ActiveSize))
	ch <- gauge(c.passiveView, float64(m.PassiveSize))
	for t := membership.Join; t <= membership.ShuffleReply; t++ {
		ch <- counter(c.membershipReceived, m.MessagesReceived[t], t.String())
		ch <- counter(c.membershipSent, m.MessagesSent[t], t.String())
	}
	ch <- counter(c.peerDowns, m.PeerDowns)
	ch <- counter(c.rejoins, m.Rejoins)
	ch <- counter(c.membershipInval, m.InvalidMessages)
	c.membershipDefences.collect(ch, m)

	byPath := make(map[string]int, len(knownPaths))
	for _, p := range knownPaths {
		byPath[string(p)] = 0
	}
	for _, nb := range c.node.Neighbors() {
		p := string(nb.Path)
		if p == "" {
			p = unknownPath
		}
		byPath[p]++
	}
	for p, n := range byPath {
		ch <- gauge(c.links, float64(n), p)
	}
	ch <- gauge(c.linksOpen, float64(s.Links))

	ch <- counter(c.broadcasts, g.Broadcasts)
	ch <- counter(c.delivered, g.Delivered)
	ch <- counter(c.duplicates, g.Duplicates)
	for t := gossip.Gossip; t <= gossip.History; t++ {
		ch <- counter(c.gossipSent, g.Sent[t], t.String())
		ch <- counter(c.gossipReceived, g.Received[t], t.String())
	}
	ch <- gauge(c.cache, float64(g.CachedMessages))
	ch <- gauge(c.seen, float64(g.SeenIDs))
	ch <- gauge(c.missing, float64(g.PendingMissing))
	ch <- gauge(c.eager, float64(g.EagerPeers))
	ch <- gauge(c.lazy, float64(g.LazyPeers))
	ch <- counter(c.gossipInvalid, g.InvalidMessages)
	for _, r := range []struct {
		reason gossip.Refusal
		n      uint64
	}{
		{gossip.RefusedSignature, g.RefusedSignature},
		{gossip.RefusedReplay, g.RefusedReplay},
		{gossip.RefusedClock, g.RefusedClock},
		{gossip.RefusedSelfOrigin, g.RefusedSelfOrigin},
		{gossip.RefusedLinkRate, g.RefusedLinkRate},
		{gossip.RefusedOriginRate, g.RefusedOriginRate},
	} {
		ch <- counter(c.refused, r.n, r.reason.String())
	}
	ch <- gauge(c.origins, float64(g.Origins))
	ch <- gauge(c.historyMessages, float64(g.HistoryMessages))
	ch <- gauge(c.historyBytes, float64(g.HistoryBytes))
	ch <- counter(c.historyDelivered, g.HistoryDelivered)
	ch <- counter(c.historyDuplicates, g.HistoryDuplicates)
	ch <- gauge(c.pendingPulls, float64(g.PendingPulls))
	ch <- counter(c.catchUpThrottled, g.CatchUpThrottled)
	ch <- gauge(c.unsent, float64(g.Unsent))
	ch <- counter(c.unsentDropped, g.UnsentDropped)

	ch <- counter(c.framesSent, s.FramesSent)
	ch <- counter(c.framesReceived, s.FramesReceived)
	ch <- counter(c.badFrames, s.BadFrames)
	ch <- counter(c.framesDropped, s.FramesDropped)
	ch <- counter(c.slowPeers, s.SlowPeers)
	ch <- counter(c.deliveriesDropped, s.DeliveriesDropped)
	ch <- counter(c.eventsDropped, s.EventsDropped)
	ch <- counter(c.catchUpFramesDropped, s.CatchUpFramesDropped)

	ch <- counter(c.ihaveExcess, g.IHaveExcess)
	ch <- counter(c.graftsThrottled, g.GraftsThrottled)
	ch <- counter(c.graftsRefused, g.GraftsRefused)
	ch <- counter(c.brokenPromises, g.BrokenPromises)
	ch <- gauge(c.cacheBytes, float64(g.CacheBytes))
	ch <- gauge(c.seenBytes, float64(g.SeenBytes))
	sc := s.Scoring
	ch <- gauge(c.scorePeers, float64(sc.Peers))
	ch <- gauge(c.scoreNegative, float64(sc.Negative))
	ch <- gauge(c.scoreRefused, float64(sc.Refused))
	ch <- gauge(c.scoreMin, sc.MinScore)
	ch <- counter(c.scoreDisconnects, sc.Disconnects)
	for _, o := range scoring.Offences() {
		ch <- counter(c.scoreOffences, sc.Offences[o], o.String())
	}
	ch <- counter(c.scoreFirstDeliveries, sc.FirstDeliveries)
	ch <- counter(c.refusedLinks, s.RefusedLinks)
	ch <- counter(c.refusedMessages, s.RefusedMessages)
}
