package gossip

import (
	"errors"
	"fmt"
	"time"
)

// Broadcast hardening: the bounds a hostile neighbour meets in the broadcast tree (see the
// Config fields under "Defences"). Each is a token bucket or a cap in driver time, so the core
// stays deterministic; each refusal is counted in Stats and reported in Ready.Misbehaviour
// for peer scoring; each one is off at 0, and Config.DisableDefences turns them all off for
// side-by-side figures.
//
//   - Forwarding is limited per link (LinkRate, LinkByteRate) and per origin (OriginRate,
//     OriginByteRate). A Gossip beyond a budget is refused like a bad one: neither delivered,
//     nor forwarded, nor remembered (RefusedLinkRate, RefusedOriginRate). gossipsub drops what
//     exceeds its limits as well; the budgets are far above honest traffic (a few messages a
//     second per origin) so that honest broadcasts are never touched. The link is charged
//     after the cheap checks and before the signature check, so a flooding link also costs
//     no CPU beyond its budget; the origin is charged only for messages that verified, so a
//     forger cannot spend a real origin's budget.
//   - Missing-message entries are capped per announcing peer (MissingMaxPerPeer), so one
//     neighbour's IHaves of fake IDs cannot fill the table (MissingMaxIDs) and crowd out real
//     announcements (ExcessIHave).
//   - Grafts sent are limited by one bucket (GraftRate): a Graft over budget waits for the
//     next GraftRetryTimeout instead of going out. Grafts answered are limited per neighbour
//     (GraftAnswerRate); a Graft over it is not answered with the payload (ExcessGraft).
//   - An announcer grafted for a message whose payload came neither from it nor from anyone
//     else within PromiseTimeout of the Graft broke its promise (BrokenPromise, gossipsub's
//     P7 behaviour penalty). The next announcer is grafted after GraftRetryTimeout already;
//     the blame waits longer, because a payload that queues behind others on a busy link is
//     late, not withheld (gossipsub waits its IWantFollowupTime the same way). A payload
//     the grafted peer did send keeps its promise even when this node refuses it (a rate
//     limit, a replay): the refusal has its own report.
//   - The Graft cache and the seen set are bounded in bytes (CacheMaxBytes, SeenMaxBytes) as
//     well as in count.

// bucket is a token bucket kept as what was spent, so that its zero value is a full bucket and
// a bucket that refilled completely is no different from none.
type bucket struct {
	used float64
	at   time.Duration
}

// refill returns the tokens spent after refilling at rate (per second) up to now.
func (b *bucket) refill(now time.Duration, rate float64) float64 {
	if now > b.at {
		b.used -= rate * (now - b.at).Seconds()
		if b.used < 0 {
			b.used = 0
		}
		b.at = now
	}
	return b.used
}

// allows reports whether cost fits in a bucket of burst refilled at rate, without spending it.
// A rate of 0 is no limit.
func (b *bucket) allows(now time.Duration, rate, burst, cost float64) bool {
	return rate <= 0 || b.refill(now, rate)+cost <= burst
}

// take spends cost if it fits and reports whether it did.
func (b *bucket) take(now time.Duration, rate, burst, cost float64) bool {
	if !b.allows(now, rate, burst, cost) {
		return false
	}
	if rate > 0 {
		b.used += cost
	}
	return true
}

// limiter is a pair of buckets: messages and bytes.
type limiter struct {
	msgs, bytes bucket
}

// rateLimit is one limit's settings: messages per second and burst, bytes per second and
// burst.
type rateLimit struct {
	rate, burst, byteRate, byteBurst int
}

func (l *limiter) allows(now time.Duration, r rateLimit, size int) bool {
	return l.msgs.allows(now, float64(r.rate), float64(r.burst), 1) &&
		l.bytes.allows(now, float64(r.byteRate), float64(r.byteBurst), float64(size))
}

func (l *limiter) spend(r rateLimit, size int) {
	if r.rate > 0 {
		l.msgs.used++
	}
	if r.byteRate > 0 {
		l.bytes.used += float64(size)
	}
}

func (cfg *Config) linkLimit() rateLimit {
	return rateLimit{cfg.LinkRate, cfg.LinkBurst, cfg.LinkByteRate, cfg.LinkByteBurst}
}

func (cfg *Config) originLimit() rateLimit {
	return rateLimit{cfg.OriginRate, cfg.OriginBurst, cfg.OriginByteRate, cfg.OriginByteBurst}
}

// messageBytes is what a Gossip costs the byte budgets and the cache: its payload and proof.
func messageBytes(m *Message) int { return len(m.Payload) + len(m.Proof) }

// seenEntryBytes is an estimate of what one seen ID costs in memory: the 16-byte key and the
// map's per-entry overhead (about 2×), plus its 24-byte record in the expiry queue. The seen
// set holds no payloads, so its byte bound is a count bound derived from this estimate.
const seenEntryBytes = 64

// seenCap is the number of IDs the seen set may hold: SeenMaxIDs, or fewer when SeenMaxBytes
// is set and smaller.
func (cfg *Config) seenCap() int {
	if cfg.SeenMaxBytes > 0 {
		return max(1, min(cfg.SeenMaxIDs, cfg.SeenMaxBytes/seenEntryBytes))
	}
	return cfg.SeenMaxIDs
}

// DisableDefences turns off every bound of the broadcast hardening (rate limits per link and
// per origin, the per-peer cap on missing entries, the Graft budgets, the byte bounds of the
// cache and the seen set) and the silent-neighbour check, leaving the count and age bounds of
// the paper's Plumtree: what the simulator's `--defences=false` runs, for figures beside the
// defended ones. Misbehaviour that needs no bound (bad signatures, replays, broken promises)
// is still reported.
func (cfg *Config) DisableDefences() {
	cfg.LinkRate, cfg.LinkBurst, cfg.LinkByteRate, cfg.LinkByteBurst = 0, 0, 0, 0
	cfg.OriginRate, cfg.OriginBurst, cfg.OriginByteRate, cfg.OriginByteBurst = 0, 0, 0, 0
	cfg.MissingMaxPerPeer = 0
	cfg.GraftRate, cfg.GraftBurst = 0, 0
	cfg.GraftAnswerRate, cfg.GraftAnswerBurst = 0, 0
	cfg.CacheMaxBytes, cfg.SeenMaxBytes = 0, 0
	cfg.NeighborHelloTimeout = 0
}

// validateDefences checks the defence fields: none negative, and every rate that is on has a
// burst that holds at least one message (of MaxPayload bytes, for the byte budgets).
func (cfg *Config) validateDefences() []error {
	var errs []error
	nonNegative := func(name string, v int) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative (0 turns it off), got %d", name, v))
		}
	}
	pair := func(rateName string, rate int, burstName string, burst, least int) {
		nonNegative(rateName, rate)
		nonNegative(burstName, burst)
		if rate > 0 && burst < least {
			errs = append(errs, fmt.Errorf("%s must be at least %d when %s is set, got %d", burstName, least, rateName, burst))
		}
	}
	pair("LinkRate", cfg.LinkRate, "LinkBurst", cfg.LinkBurst, 1)
	pair("LinkByteRate", cfg.LinkByteRate, "LinkByteBurst", cfg.LinkByteBurst, cfg.MaxPayload)
	pair("OriginRate", cfg.OriginRate, "OriginBurst", cfg.OriginBurst, 1)
	pair("OriginByteRate", cfg.OriginByteRate, "OriginByteBurst", cfg.OriginByteBurst, cfg.MaxPayload)
	pair("GraftRate", cfg.GraftRate, "GraftBurst", cfg.GraftBurst, 1)
	pair("GraftAnswerRate", cfg.GraftAnswerRate, "GraftAnswerBurst", cfg.GraftAnswerBurst, 1)
	nonNegative("MissingMaxPerPeer", cfg.MissingMaxPerPeer)
	nonNegative("MaxPromises", cfg.MaxPromises)
	if cfg.PromiseTimeout < 0 {
		errs = append(errs, fmt.Errorf("PromiseTimeout must not be negative, got %v", cfg.PromiseTimeout))
	}
	nonNegative("CacheMaxBytes", cfg.CacheMaxBytes)
	nonNegative("SeenMaxBytes", cfg.SeenMaxBytes)
	if cfg.CacheMaxBytes > 0 && cfg.CacheMaxBytes < cfg.MaxPayload {
		errs = append(errs, fmt.Errorf("CacheMaxBytes (%d) must hold one payload of MaxPayload (%d)", cfg.CacheMaxBytes, cfg.MaxPayload))
	}
	if cfg.SeenMaxBytes > 0 && cfg.SeenMaxBytes < seenEntryBytes {
		errs = append(errs, fmt.Errorf("SeenMaxBytes (%d) must hold one ID (%d bytes)", cfg.SeenMaxBytes, seenEntryBytes))
	}
	if len(errs) > 0 {
		return []error{fmt.Errorf("defences: %w", errors.Join(errs...))}
	}
	return nil
}

// linkLimiter returns the forwarding budget of the link from peer. Neighbours have one each
// (dropped at NeighborDown); every other sender (links still being set up) shares one, so the
// table is bounded by the active view.
func (c *Core) linkLimiter(from string) *limiter {
	key := from
	if !c.isNeighbor(from) {
		key = ""
	}
	l := c.linkLimits[key]
	if l == nil {
		if c.linkLimits == nil {
			c.linkLimits = make(map[string]*limiter)
		}
		l = &limiter{}
		c.linkLimits[key] = l
	}
	return l
}

// promiseKey names one promise: the announcer grafted and the message it announced.
type promiseKey struct {
	peer string
	id   MessageID
}

// promise is a promiseKey with the time it is judged.
type promise struct {
	promiseKey
	due time.Duration
}

// awaitPromise records that peer, grafted for id GraftRetryTimeout ago, has not sent the
// payload yet: it is judged at PromiseTimeout after the Graft (at once when PromiseTimeout is
// not longer than GraftRetryTimeout). When MaxPromises are waiting, the oldest is dropped
// unjudged: a flood of promises must not grow the table, and dropping gives the benefit of
// the doubt.
func (c *Core) awaitPromise(peer string, id MessageID) {
	wait := c.cfg.PromiseTimeout - c.cfg.GraftRetryTimeout
	if wait <= 0 || c.cfg.MaxPromises <= 0 {
		c.breakPromise(peer, id)
		return
	}
	if c.promises == nil {
		c.promises = make(map[promiseKey]time.Duration)
	}
	k := promiseKey{peer: peer, id: id}
	if _, waiting := c.promises[k]; !waiting {
		for len(c.promises) >= c.cfg.MaxPromises && len(c.promiseQ) > 0 {
			p := c.promiseQ[0]
			c.promiseQ = c.promiseQ[1:]
			if due, ok := c.promises[p.promiseKey]; ok && due == p.due {
				c.endPromise(p.promiseKey)
				c.stats.PromisesDropped++
			}
		}
		// Until it is judged, the promise holds one of the peer's MissingMaxPerPeer
		// announcer slots: a peer that announces made-up IDs gets MissingMaxPerPeer Grafts
		// per PromiseTimeout, not per GraftRetryTimeout.
		c.countAnnouncer(peer)
	}
	due := c.now + wait
	c.promises[k] = due
	c.promiseQ = append(c.promiseQ, promise{promiseKey: k, due: due})
}

// keepPromise marks a payload for id from peer as the promise kept, whatever becomes of it.
func (c *Core) keepPromise(peer string, id MessageID) {
	if k := (promiseKey{peer: peer, id: id}); len(c.promises) > 0 {
		if _, waiting := c.promises[k]; waiting {
			c.endPromise(k)
		}
	}
}

// endPromise forgets a waiting promise and frees its announcer slot.
func (c *Core) endPromise(k promiseKey) {
	delete(c.promises, k)
	c.uncountAnnouncer(k.peer)
}

// judgePromises reports the promises due by now whose message has still not arrived from
// anyone. Their deadlines come in promiseQ's order (one constant wait after each Graft).
func (c *Core) judgePromises() {
	n := 0
	for ; n < len(c.promiseQ) && c.promiseQ[n].due <= c.now; n++ {
		p := c.promiseQ[n]
		due, ok := c.promises[p.promiseKey]
		if !ok || due != p.due {
			continue // kept, or dropped and awaited again later
		}
		c.endPromise(p.promiseKey)
		if _, received := c.seen[p.id]; received {
			continue
		}
		c.breakPromise(p.peer, p.id)
	}
	if n > 0 {
		c.promiseQ = c.promiseQ[n:]
		if len(c.promiseQ) == 0 {
			c.promiseQ = nil // let the backing array go
		}
	}
}

// breakPromise counts and reports peer's broken promise for id.
func (c *Core) breakPromise(peer string, id MessageID) {
	c.stats.BrokenPromises++
	c.report(Misbehaviour{Peer: peer, Reason: BrokenPromise, ID: id})
}

// report adds a misbehaviour report to Ready, or counts it when Ready has too many.
func (c *Core) report(mb Misbehaviour) {
	if len(c.out.Misbehaviour) >= c.cfg.MaxMisbehaviourReports {
		c.stats.MisbehaviourDropped++
		return
	}
	c.out.Misbehaviour = append(c.out.Misbehaviour, mb)
}

// countAnnouncer and uncountAnnouncer keep announced[peer], the missing entries peer
// announced, for MissingMaxPerPeer.
func (c *Core) countAnnouncer(peer string) {
	if c.announced == nil {
		c.announced = make(map[string]int)
	}
	c.announced[peer]++
}

func (c *Core) uncountAnnouncer(peer string) {
	if n := c.announced[peer]; n > 1 {
		c.announced[peer] = n - 1
	} else {
		delete(c.announced, peer)
	}
}
