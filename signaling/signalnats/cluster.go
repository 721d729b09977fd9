// Package signalnats lets several rtcmesh signaling instances share networks through NATS:
// it implements signalserver.Cluster on a NATS connection (nats.go), so a node connected to
// one instance meets, and exchanges offers, answers and candidates with, nodes connected to
// any other. NATS does the distribution; this package only names subjects and keeps a table.
//
// Subjects, under Config.Prefix (P) and with a network written in hex (N, since network
// names may hold dots):
//
//   - P.node.N.ID: the node ID's own subject, subscribed by the instance it is connected to.
//     Relays (the frame as the sender's instance stamped it, with the proven sender in the
//     From header), claims (a newer connection of ID proved its key elsewhere: the older one
//     is closed with replaced) and errors about relays (the target was gone or busy) go here.
//   - P.presence.N: presence. Each instance announces its members of N when they join
//     ("join"), when they leave ("gone") and every PresenceInterval ("here", in chunks), and
//     forgets another instance's member not announced for PresenceTTL: an instance that dies
//     without a word is forgotten within PresenceTTL.
//   - P.sync: a new instance asks every other to announce all its members now.
//
// Only signaling instances may connect to NATS. Clients never see it: an instance stamps the
// proven ID of a sender before it publishes, and the receiving instance trusts that stamp, so
// whoever can publish on these subjects can speak under any node's name. Protect NATS with
// credentials (Config.User/Password, Token, CredsFile) and keep it off public networks.
//
// Concurrency: one goroutine handles every message NATS delivers (in order, through a bounded
// channel), and one announces presence and forgets expired members. The table is guarded by
// one mutex, never held while calling the signaling server.
package signalnats

import (
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

// Header names of node-subject messages.
const (
	hdrKind     = "Rtcmesh-Kind"     // relay, claim, error
	hdrInstance = "Rtcmesh-Instance" // the publishing instance
	hdrFrom     = "Rtcmesh-From"     // relay: the proven sender; error: the relay's target
	hdrTime     = "Rtcmesh-Time"     // claim: registration time, Unix nanoseconds
	hdrCode     = "Rtcmesh-Code"     // error: the signaling error code
)

// presence is the body of a presence message.
type presence struct {
	Kind     string   `json:"k"` // join, here, gone
	Instance string   `json:"i"`
	IDs      []string `json:"ids"`
}

// Stats is a snapshot of a Cluster's counters.
type Stats struct {
	// Connected reports whether the NATS connection is up now.
	Connected bool
	// LocalPeers is the members of this instance, and RemotePeers those of other instances
	// it knows of, over all networks.
	LocalPeers, RemotePeers int
	// RelaysOut counts relays published to other instances, RelaysIn those delivered here
	// from them, and RelayErrors those that could not be delivered here (target gone or
	// busy; the sender is told).
	RelaysOut, RelaysIn, RelayErrors uint64
	// Replaced counts members of this instance closed because a newer connection of the same
	// ID proved its key on another instance.
	Replaced uint64
	// Expired counts other instances' members forgotten after PresenceTTL without an
	// announcement; RemoteDropped those not kept because MaxRemotePeers was reached.
	Expired, RemoteDropped uint64
	// InboxDropped counts NATS messages dropped because the inbox (InboxLength) was full, and
	// Malformed those ignored as unreadable.
	InboxDropped, Malformed uint64
	// PublishErrors counts publications NATS refused (connection closed, payload too large).
	PublishErrors uint64
}

// Cluster is a signalserver.Cluster on NATS. Create it with Dial, hand it to one server in
// signalserver.Config.Cluster, and Close it after the server has shut down.
type Cluster struct {
	cfg   Config
	log   zerolog.Logger
	inst  string
	nc    *nats.Conn
	inbox chan *nats.Msg

	mu       sync.Mutex
	host     signalserver.ClusterHost
	local    map[string]map[string]*localPeer // network -> ID
	remote   map[string]*remoteNet            // network -> members elsewhere
	nRemote  int
	stats    Stats
	subs     []*nats.Subscription
	stop     chan struct{}
	stopped  bool
	wg       sync.WaitGroup
	attached bool
}

// localPeer is a member of this instance.
type localPeer struct {
	at  time.Time // registration, names the connection for Replace
	sub *nats.Subscription
}

// remoteNet is the members of one network on other instances, in a map and a slice (for
// O(k) samples).
type remoteNet struct {
	byID  map[string]*remotePeer
	order []*remotePeer
}

type remotePeer struct {
	id, inst string
	expires  time.Time
	slot     int
}

// Dial validates cfg and connects to NATS. The cluster starts working when a server attaches
// to it.
func Dial(cfg Config) (*Cluster, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	inst := cfg.Instance
	if inst == "" {
		var b [8]byte
		if _, err := crand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("signalnats: drawing an instance name: %w", err)
		}
		inst = hex.EncodeToString(b[:])
	}
	c := &Cluster{
		cfg:    cfg,
		log:    cfg.Logger.With().Str("instance", inst).Logger(),
		inst:   inst,
		inbox:  make(chan *nats.Msg, cfg.InboxLength),
		local:  make(map[string]map[string]*localPeer),
		remote: make(map[string]*remoteNet),
		stop:   make(chan struct{}),
	}
	opts := []nats.Option{
		nats.Name("rtcmesh-signal-" + inst),
		nats.NoEcho(), // an instance never needs its own publications
		nats.Timeout(cfg.ConnectTimeout),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				c.mu.Lock()
				c.stats.InboxDropped++
				c.mu.Unlock()
				return
			}
			c.log.Warn().Err(err).Msg("nats")
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			c.log.Warn().Err(err).Msg("disconnected from nats; reconnecting")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("reconnected to nats")
			c.requestSync() // presence may have been missed meanwhile
		}),
	}
	switch {
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("signalnats: connecting to %s: %w", redactAll(cfg.URLs), err)
	}
	c.nc = nc
	c.log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("connected to nats")
	return c, nil
}

func redactAll(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = u
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				out[i] = u[:scheme+3] + "***@" + u[at+1:]
			}
		}
	}
	return strings.Join(out, ",")
}

// Instance returns this instance's name.
func (c *Cluster) Instance() string { return c.inst }

// Stats returns a snapshot of the counters.
func (c *Cluster) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Connected = c.nc.IsConnected()
	s.RemotePeers = c.nRemote
	for _, m := range c.local {
		s.LocalPeers += len(m)
	}
	return s
}

// Attach implements signalserver.Cluster: it subscribes to presence and sync, starts the
// goroutines and asks the other instances to announce their members.
func (c *Cluster) Attach(host signalserver.ClusterHost) error {
	c.mu.Lock()
	if c.attached {
		c.mu.Unlock()
		return errors.New("signalnats: a cluster serves one server; it is attached already")
	}
	c.attached, c.host = true, host
	c.mu.Unlock()
	for _, subj := range []string{c.cfg.Prefix + ".presence.*", c.cfg.Prefix + ".sync"} {
		sub, err := c.nc.ChanSubscribe(subj, c.inbox)
		if err != nil {
			return fmt.Errorf("signalnats: subscribing to %s: %w", subj, err)
		}
		c.mu.Lock()
		c.subs = append(c.subs, sub)
		c.mu.Unlock()
	}
	// One round trip, so the subscriptions are in place at the server before the other
	// instances are asked to announce their members.
	if err := c.nc.FlushTimeout(c.cfg.ConnectTimeout); err != nil {
		c.log.Warn().Err(err).Msg("nats did not confirm the subscriptions; presence may arrive late")
	}
	c.wg.Add(2)
	go c.handleLoop()
	go c.presenceLoop()
	c.requestSync()
	return nil
}

// Close stops the cluster and closes the NATS connection without a word: the other
// instances forget this one's members within PresenceTTL (or at once for those the server
// said goodbye to before, through Left). Call it after the server has shut down.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	close(c.stop)
	c.mu.Unlock()
	if c.nc.IsConnected() {
		c.nc.Flush() // what the server said last (gone, errors) still goes out
	}
	c.nc.Close()
	c.wg.Wait()
	return nil
}

func (c *Cluster) nodeSubject(network, id string) string {
	return c.cfg.Prefix + ".node." + hex.EncodeToString([]byte(network)) + "." + id
}

func (c *Cluster) presenceSubject(network string) string {
	return c.cfg.Prefix + ".presence." + hex.EncodeToString([]byte(network))
}

// publish sends m, counting a refusal. NATS buffers it: this never blocks on the network.
func (c *Cluster) publish(m *nats.Msg) {
	if err := c.nc.PublishMsg(m); err != nil {
		c.mu.Lock()
		c.stats.PublishErrors++
		c.mu.Unlock()
		c.log.Debug().Err(err).Str("subject", m.Subject).Msg("publish failed")
	}
}

// publishLocked is publish for a caller holding c.mu.
func (c *Cluster) publishLocked(m *nats.Msg) {
	if err := c.nc.PublishMsg(m); err != nil {
		c.stats.PublishErrors++
		c.log.Debug().Err(err).Str("subject", m.Subject).Msg("publish failed")
	}
}

func (c *Cluster) presenceMsg(network, kind string, ids []string) *nats.Msg {
	body, _ := json.Marshal(presence{Kind: kind, Instance: c.inst, IDs: ids}) // cannot fail
	return &nats.Msg{Subject: c.presenceSubject(network), Data: body}
}

// Joined implements signalserver.Cluster.
func (c *Cluster) Joined(network, id string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	m := c.local[network]
	if m == nil {
		m = make(map[string]*localPeer)
		c.local[network] = m
	}
	p := m[id]
	if p == nil {
		p = &localPeer{}
		sub, err := c.nc.ChanSubscribe(c.nodeSubject(network, id), c.inbox)
		if err != nil {
			c.log.Warn().Err(err).Str("id", id).Msg("cannot subscribe to a node's subject; relays from other instances will miss it")
		}
		p.sub = sub
		m[id] = p
	}
	p.at = at
	c.dropRemoteLocked(network, id)
	claim := nats.NewMsg(c.nodeSubject(network, id))
	claim.Header.Set(hdrKind, "claim")
	claim.Header.Set(hdrInstance, c.inst)
	claim.Header.Set(hdrTime, strconv.FormatInt(at.UnixNano(), 10))
	c.publishLocked(claim)
	c.publishLocked(c.presenceMsg(network, "join", []string{id}))
}

// Left implements signalserver.Cluster.
func (c *Cluster) Left(network, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.local[network]
	p := m[id]
	if p == nil {
		return
	}
	delete(m, id)
	if len(m) == 0 {
		delete(c.local, network)
	}
	if p.sub != nil {
		p.sub.Unsubscribe()
	}
	if !c.stopped {
		c.publishLocked(c.presenceMsg(network, "gone", []string{id}))
	}
}

// Present implements signalserver.Cluster.
func (c *Cluster) Present(network, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	rn := c.remote[network]
	if rn == nil {
		return false
	}
	p := rn.byID[id]
	return p != nil && c.cfg.Now().Before(p.expires)
}

// Count implements signalserver.Cluster.
func (c *Cluster) Count(network string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rn := c.remote[network]; rn != nil {
		return len(rn.order)
	}
	return 0
}

// Sample implements signalserver.Cluster: a partial Fisher–Yates shuffle of the network's
// remote members (whose order carries no meaning).
func (c *Cluster) Sample(network string, k int, rng *rand.Rand) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	rn := c.remote[network]
	if rn == nil || k <= 0 {
		return nil
	}
	n := len(rn.order)
	want := min(k, n)
	out := make([]string, 0, want)
	for i := 0; i < want; i++ {
		j := i + rng.IntN(n-i)
		rn.order[i], rn.order[j] = rn.order[j], rn.order[i]
		rn.order[i].slot, rn.order[j].slot = i, j
		out = append(out, rn.order[i].id)
	}
	return out
}

// Relay implements signalserver.Cluster.
func (c *Cluster) Relay(network, from, to string, frame []byte) error {
	m := nats.NewMsg(c.nodeSubject(network, to))
	m.Header.Set(hdrKind, "relay")
	m.Header.Set(hdrInstance, c.inst)
	m.Header.Set(hdrFrom, from)
	m.Data = frame
	if err := c.nc.PublishMsg(m); err != nil {
		c.mu.Lock()
		c.stats.PublishErrors++
		c.mu.Unlock()
		return fmt.Errorf("signalnats: relay to %s: %w", to, err)
	}
	c.mu.Lock()
	c.stats.RelaysOut++
	c.mu.Unlock()
	return nil
}

// requestSync asks every other instance to announce all its members now.
func (c *Cluster) requestSync() {
	c.publish(&nats.Msg{Subject: c.cfg.Prefix + ".sync", Data: []byte(c.inst)})
}

// handleLoop handles what NATS delivers, in order.
func (c *Cluster) handleLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case m := <-c.inbox:
			c.handle(m)
		}
	}
}

func (c *Cluster) handle(m *nats.Msg) {
	rest, ok := strings.CutPrefix(m.Subject, c.cfg.Prefix+".")
	if !ok {
		c.malformed(m, "foreign subject")
		return
	}
	switch {
	case rest == "sync":
		c.announceAll()
	case strings.HasPrefix(rest, "presence."):
		network, err := hex.DecodeString(strings.TrimPrefix(rest, "presence."))
		if err != nil {
			c.malformed(m, "network is not hex")
			return
		}
		var p presence
		if err := json.Unmarshal(m.Data, &p); err != nil || p.Instance == "" || p.Instance == c.inst {
			c.malformed(m, "presence body")
			return
		}
		c.handlePresence(string(network), &p)
	case strings.HasPrefix(rest, "node."):
		hexNet, id, ok := strings.Cut(strings.TrimPrefix(rest, "node."), ".")
		network, err := hex.DecodeString(hexNet)
		if !ok || err != nil || id == "" {
			c.malformed(m, "node subject")
			return
		}
		c.handleNode(string(network), id, m)
	default:
		c.malformed(m, "unknown subject")
	}
}

func (c *Cluster) malformed(m *nats.Msg, why string) {
	c.mu.Lock()
	c.stats.Malformed++
	c.mu.Unlock()
	c.log.Debug().Str("subject", m.Subject).Str("why", why).Msg("ignored a nats message")
}

func (c *Cluster) handlePresence(network string, p *presence) {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range p.IDs {
		if signaling.ValidateID(id) != nil {
			c.stats.Malformed++
			continue
		}
		switch p.Kind {
		case "join":
			c.setRemoteLocked(network, id, p.Instance, now, true)
		case "here":
			c.setRemoteLocked(network, id, p.Instance, now, false)
		case "gone":
			if rn := c.remote[network]; rn != nil {
				if e := rn.byID[id]; e != nil && e.inst == p.Instance {
					c.dropRemoteLocked(network, id)
				}
			}
		default:
			c.stats.Malformed++
			return
		}
	}
}

// setRemoteLocked records id as a member of network on inst until now+PresenceTTL. A member
// of this instance is not recorded, and a periodic announcement ("here", !fresh) does not take
// over an entry of another instance that has not expired: that announcement may predate the
// move of the node to the other instance.
func (c *Cluster) setRemoteLocked(network, id, inst string, now time.Time, fresh bool) {
	if c.local[network][id] != nil {
		return
	}
	rn := c.remote[network]
	if rn == nil {
		rn = &remoteNet{byID: make(map[string]*remotePeer)}
		c.remote[network] = rn
	}
	if e := rn.byID[id]; e != nil {
		if e.inst == inst || fresh || !now.Before(e.expires) {
			e.inst, e.expires = inst, now.Add(c.cfg.PresenceTTL)
		}
		return
	}
	if c.nRemote >= c.cfg.MaxRemotePeers {
		c.stats.RemoteDropped++
		if len(rn.order) == 0 {
			delete(c.remote, network)
		}
		return
	}
	e := &remotePeer{id: id, inst: inst, expires: now.Add(c.cfg.PresenceTTL), slot: len(rn.order)}
	rn.byID[id] = e
	rn.order = append(rn.order, e)
	c.nRemote++
}

func (c *Cluster) dropRemoteLocked(network, id string) {
	rn := c.remote[network]
	if rn == nil {
		return
	}
	e := rn.byID[id]
	if e == nil {
		return
	}
	delete(rn.byID, id)
	last := len(rn.order) - 1
	rn.order[e.slot] = rn.order[last]
	rn.order[e.slot].slot = e.slot
	rn.order[last] = nil
	rn.order = rn.order[:last]
	c.nRemote--
	if len(rn.order) == 0 {
		delete(c.remote, network)
	}
}

func (c *Cluster) handleNode(network, id string, m *nats.Msg) {
	inst := m.Header.Get(hdrInstance)
	if inst == "" || inst == c.inst {
		c.malformed(m, "no instance")
		return
	}
	c.mu.Lock()
	host := c.host
	c.mu.Unlock()
	switch m.Header.Get(hdrKind) {
	case "relay":
		from := m.Header.Get(hdrFrom)
		if signaling.ValidateID(from) != nil {
			c.malformed(m, "relay sender")
			return
		}
		code := host.Deliver(network, from, id, m.Data)
		c.mu.Lock()
		if code == "" {
			c.stats.RelaysIn++
		} else {
			c.stats.RelayErrors++
		}
		c.mu.Unlock()
		if code != "" {
			// Tell the sender, on its own subject, as the server would have told it at once.
			e := nats.NewMsg(c.nodeSubject(network, from))
			e.Header.Set(hdrKind, "error")
			e.Header.Set(hdrInstance, c.inst)
			e.Header.Set(hdrFrom, id)
			e.Header.Set(hdrCode, string(code))
			c.publish(e)
		}
	case "error":
		target, code := m.Header.Get(hdrFrom), signaling.ErrorCode(m.Header.Get(hdrCode))
		var text string
		switch code {
		case signaling.CodeUnknownTarget:
			text = fmt.Sprintf("%q is not connected in network %q", target, network)
		case signaling.CodeTargetBusy:
			text = fmt.Sprintf("%q has too much waiting to be written; try again later", target)
		default:
			c.malformed(m, "error code")
			return
		}
		if signaling.ValidateID(target) != nil {
			c.malformed(m, "error target")
			return
		}
		frame, err := signaling.Marshal(&signaling.Error{Code: code, Message: text, To: target})
		if err != nil {
			c.log.Error().Err(err).Msg("marshal relay error")
			return
		}
		host.Deliver(network, "", id, frame) // a sender that left meanwhile needs no answer
	case "claim":
		t, err := strconv.ParseInt(m.Header.Get(hdrTime), 10, 64)
		if err != nil {
			c.malformed(m, "claim time")
			return
		}
		c.mu.Lock()
		p := c.local[network][id]
		var replace bool
		var at time.Time
		// The newer registration wins; equal times are settled by instance name, so two
		// instances never both close theirs. Times come from two instances' clocks: with
		// skew larger than the gap between a node's two connections the older one may stay
		// until its own timeout (PongTimeout), which is harmless (relays go to the node's
		// subject, so the newer connection gets them too) and never closes the newer one.
		if p != nil && (t > p.at.UnixNano() || t == p.at.UnixNano() && inst > c.inst) {
			replace, at = true, p.at
			c.stats.Replaced++
		}
		if p == nil || replace {
			// Until the old connection is gone its ID is local here; record the new owner so
			// relays find it as soon as it is.
			saved := c.local[network][id]
			if saved != nil {
				delete(c.local[network], id)
			}
			c.setRemoteLocked(network, id, inst, c.cfg.Now(), true)
			if saved != nil {
				c.local[network][id] = saved
			}
		}
		c.mu.Unlock()
		if replace {
			host.Replace(network, id, at)
		}
	default:
		c.malformed(m, "node message kind")
	}
}

// presenceLoop announces this instance's members and forgets expired ones, every
// PresenceInterval.
func (c *Cluster) presenceLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.PresenceInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.announceAll()
			c.expire()
		}
	}
}

// announceAll publishes every member of this instance, network by network, in chunks.
func (c *Cluster) announceAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	for network, m := range c.local {
		ids := make([]string, 0, min(len(m), c.cfg.PresenceChunk))
		for id := range m {
			ids = append(ids, id)
			if len(ids) == c.cfg.PresenceChunk {
				c.publishLocked(c.presenceMsg(network, "here", ids))
				ids = ids[:0]
			}
		}
		if len(ids) > 0 {
			c.publishLocked(c.presenceMsg(network, "here", ids))
		}
	}
}

// expire forgets other instances' members whose presence is older than PresenceTTL.
func (c *Cluster) expire() {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for network, rn := range c.remote {
		var gone []string
		for id, e := range rn.byID {
			if !now.Before(e.expires) {
				gone = append(gone, id)
			}
		}
		for _, id := range gone {
			c.dropRemoteLocked(network, id)
			c.stats.Expired++
		}
	}
}

// Compile-time check.
var _ signalserver.Cluster = (*Cluster)(nil)
