package signalserver

import (
	"container/list"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/rtcmesh/rtcmesh/signaling/internal/tokenbucket"
)

// source is what the server remembers about one source address: its open connections and
// its per-minute budgets of connections and hellos. Guarded by Server.mu.
type source struct {
	key      netip.Prefix
	open     int
	connects *tokenbucket.Bucket
	hellos   *tokenbucket.Bucket
	// idle is the source's element in sources.idle while open is 0, else nil; idleSince is
	// when it got there.
	idle      *list.Element
	idleSince time.Time
}

// sources is the table of sources. A source with open connections stays; one without is
// kept until its budgets have refilled (a minute: each bucket holds one minute's worth), so
// that closing and reopening connections does not reset them. At most maxIdle idle sources are
// kept: beyond that the oldest is forgotten, which only forgives what is left of its budgets,
// and the table holds at most MaxConnections + maxIdle entries.
type sources struct {
	byKey   map[netip.Prefix]*source
	idle    *list.List // of *source, oldest first
	maxIdle int
}

func newSources(maxIdle int) *sources {
	return &sources{byKey: make(map[netip.Prefix]*source), idle: list.New(), maxIdle: maxIdle}
}

// refill is how long an untouched source takes to get its budgets back in full.
const refill = time.Minute

// get returns the source for key, creating it with full budgets. It first forgets the idle
// sources whose budgets are full again.
func (t *sources) get(key netip.Prefix, cfg *Config, now time.Time) *source {
	for e := t.idle.Front(); e != nil; e = t.idle.Front() {
		s := e.Value.(*source)
		if now.Sub(s.idleSince) < refill && t.idle.Len() <= t.maxIdle {
			break
		}
		t.forget(s)
	}
	if s := t.byKey[key]; s != nil {
		return s
	}
	s := &source{key: key}
	// New made sure that these parameters are accepted.
	s.connects, _ = perMinute(cfg.ConnectionsPerSourcePerMinute, now)
	s.hellos, _ = perMinute(cfg.HellosPerSourcePerMinute, now)
	t.byKey[key] = s
	t.setIdle(s, now) // until a connection is admitted
	return s
}

// perMinute is a bucket of n per minute that holds one minute's worth.
func perMinute(n int, now time.Time) (*tokenbucket.Bucket, error) {
	return tokenbucket.New(float64(n)/refill.Seconds(), n, now)
}

func (t *sources) forget(s *source) {
	if s.idle != nil {
		t.idle.Remove(s.idle)
		s.idle = nil
	}
	delete(t.byKey, s.key)
}

func (t *sources) setIdle(s *source, now time.Time) {
	if s.idle == nil {
		s.idle = t.idle.PushBack(s)
		s.idleSince = now
	}
}

// opened counts a connection admitted from s.
func (t *sources) opened(s *source) {
	s.open++
	if s.idle != nil {
		t.idle.Remove(s.idle)
		s.idle = nil
	}
}

// closed counts the end of a connection admitted from s.
func (t *sources) closed(s *source, now time.Time) {
	s.open--
	if s.open == 0 {
		t.setIdle(s, now)
	}
}

// sourceName names a source in messages: the address, or the IPv6 /64.
func sourceName(key netip.Prefix) string {
	if !key.IsValid() {
		return "(unknown)"
	}
	if key.IsSingleIP() {
		return key.Addr().String()
	}
	return key.String()
}

// sourceKey is the source whose limits a request counts against: the client's IP, or for
// IPv6 its /64, as seen by this server or, from a trusted proxy, as the proxy forwarded it.
// An address that cannot be parsed (not TCP) yields the zero prefix: all such requests share
// one source.
func sourceKey(r *http.Request, trusted []netip.Prefix) netip.Prefix {
	peer, ok := parseHost(r.RemoteAddr)
	if !ok {
		return netip.Prefix{}
	}
	if isTrusted(peer, trusted) {
		peer = forwardedClient(peer, r.Header.Values("X-Forwarded-For"), trusted)
	}
	if peer.Is4() {
		return netip.PrefixFrom(peer, 32)
	}
	p, _ := peer.Prefix(64)
	return p
}

// forwardedClient walks X-Forwarded-For from the right (the entry the nearest proxy added)
// and returns the first address that is not a trusted proxy. An entry that does not parse
// ends the walk: the chain of trust is broken, so the last trusted hop is the client.
func forwardedClient(peer netip.Addr, headers []string, trusted []netip.Prefix) netip.Addr {
	var hops []string
	for _, h := range headers {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHost(strings.TrimSpace(hops[i]))
		if !ok {
			return peer
		}
		peer = a
		if !isTrusted(a, trusted) {
			return a
		}
	}
	return peer
}

// parseHost reads an IP address, with or without a port, and unmaps IPv4-in-IPv6.
func parseHost(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone("").Unmap(), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
