package gossip

import (
	"errors"
	"fmt"
	"time"
)

// Silent neighbours.
//
// A neighbour proves that it takes part in the broadcast protocol by sending something. Every
// core greets each new neighbour at once, from both ends, with a Digest (catchUpNeighborUp,
// or sendHello when catch-up is off), and sends a neighbour it has sent nothing to for
// NeighborKeepalive a short Digest (keepalive), so an honest neighbour is never quiet for
// long. Two kinds of hostile neighbour are not heard from:
//
//   - a peer that took an active-view slot with no core behind it (it accepted the NEIGHBOR
//     or JOIN and drops everything) sends nothing at all: reported when it has not greeted
//     within NeighborHelloTimeout of coming up;
//   - a peer whose core took part for a while and then dropped the link without the
//     DISCONNECT that would free this end's slot (a zombie link, kept to starve this node)
//     falls quiet: reported when nothing came for NeighborSilenceTimeout.
//
// Nothing else shows either before the first broadcast, and after it only a broken promise
// would, and a silent peer promises nothing. Each is reported once (SilentNeighbor); peer
// scoring disconnects and refuses it. A neighbour heard from is listed in Ready.Greeted once:
// peer scoring credits it, so that before any broadcast has shown who delivers, evictions
// drop the unproven first (repairs do not prefer it: a dropper greets too).
//
// A frame that arrives just before the local NeighborUp (the other end came up first) counts
// as the hello: the last few senders that were not neighbours are remembered (helloEarlyMax).

// helloEarlyMax is how many recent senders that were not yet neighbours are remembered, so
// that a hello which overtook the local NeighborUp still counts. A frame from a peer that is
// about to become a neighbour precedes its NeighborUp by at most one link's latency, so a few
// slots suffice; more senders in between only make an honest peer's hello count less often,
// never a silent one's.
const helloEarlyMax = 8

// neighborWatch is what the silence check knows of one neighbour.
type neighborWatch struct {
	peer string
	// up is when it became a neighbour; heard when its last frame came (heardAny: ever);
	// sent when this node last sent it anything.
	up, heard, sent time.Duration
	heardAny        bool
	// reported says it was reported silent and not heard from since.
	reported bool
}

// heardPeer is a recent sender that was not a neighbour when its frame came.
type heardPeer struct {
	peer string
	at   time.Duration
}

// helloCheck reports whether silent neighbours are judged (and keepalives sent).
func (c *Core) helloCheck() bool { return c.cfg.NeighborHelloTimeout > 0 }

// watch returns peer's entry, or nil.
func (c *Core) watch(peer string) *neighborWatch {
	for i := range c.watches {
		if c.watches[i].peer == peer {
			return &c.watches[i]
		}
	}
	return nil
}

// sendHello greets a new neighbour, or keeps a quiet link alive: a Digest of the last
// millisecond with salt 0 (IsHello), which a core with catch-up compares with its own (nothing
// to answer, nearly always) and a core without ignores. A new neighbour gets it only when
// catch-up is off: with catch-up on, its link-up Digest is the hello.
func (c *Core) sendHello(peer string) {
	now := c.nowMillis()
	c.send(peer, Message{Type: Digest, Spans: []Span{{From: now - 1, To: now}}})
}

// IsHello reports whether m is a hello or keepalive Digest (sendHello), not one of
// catch-up's, which always have a salt: for drivers that count catch-up's traffic apart.
func IsHello(m *Message) bool { return m.Type == Digest && m.Salt == 0 }

// helloUp starts watching a new neighbour (after its link-up Digest, if any, was sent).
func (c *Core) helloUp(peer string) {
	if !c.helloCheck() {
		return
	}
	if !c.catchUp() {
		c.sendHello(peer)
	}
	w := neighborWatch{peer: peer, up: c.now, sent: c.now}
	for _, h := range c.heardEarly {
		if h.peer == peer && h.at+c.cfg.NeighborHelloTimeout > c.now {
			w.heard, w.heardAny = h.at, true
			c.out.Greeted = append(c.out.Greeted, peer)
			break
		}
	}
	c.watches = append(c.watches, w)
}

// helloDown stops watching peer.
func (c *Core) helloDown(peer string) {
	for i := range c.watches {
		if c.watches[i].peer == peer {
			c.watches = append(c.watches[:i], c.watches[i+1:]...)
			return
		}
	}
}

// heard notes a well-formed frame from peer.
func (c *Core) heard(peer string) {
	if !c.helloCheck() {
		return
	}
	w := c.watch(peer)
	if w == nil {
		for i := range c.heardEarly {
			if c.heardEarly[i].peer == peer {
				// One slot per sender, so that one chatty stranger cannot push an honest
				// peer's early hello out.
				c.heardEarly[i].at = c.now
				return
			}
		}
		if len(c.heardEarly) < helloEarlyMax {
			c.heardEarly = append(c.heardEarly, heardPeer{peer: peer, at: c.now})
		} else {
			c.heardEarly[c.heardNext] = heardPeer{peer: peer, at: c.now}
			c.heardNext = (c.heardNext + 1) % helloEarlyMax
		}
		return
	}
	if !w.heardAny {
		c.out.Greeted = append(c.out.Greeted, peer)
	}
	w.heard, w.heardAny, w.reported = c.now, true, false
}

// sentTo notes that something went to neighbour peer, which makes a keepalive needless.
func (c *Core) sentTo(peer string) {
	if len(c.watches) == 0 {
		return
	}
	if w := c.watch(peer); w != nil {
		w.sent = c.now
	}
}

// silentAt returns when w is judged silent: NeighborHelloTimeout after it came up if it
// never greeted, NeighborSilenceTimeout after its last frame otherwise.
func (c *Core) silentAt(w *neighborWatch) time.Duration {
	if !w.heardAny {
		return w.up + c.cfg.NeighborHelloTimeout
	}
	return w.heard + c.cfg.NeighborSilenceTimeout
}

// tickHello reports the neighbours whose hello or keepalive is overdue, once each, and sends
// the keepalives that are due. A Tick that comes more than NeighborHelloTimeout after the
// earliest judgment was due means this node was away (paused, asleep, starved of CPU), not
// its neighbours: their frames may be waiting unread, so every judgment starts over from now.
func (c *Core) tickHello() {
	if at, ok := c.helloDeadline(); ok && c.now-at > c.cfg.NeighborHelloTimeout {
		c.stats.HelloRestarts++
		for i := range c.watches {
			w := &c.watches[i]
			w.up, w.sent = c.now, c.now
			if w.heardAny {
				w.heard = c.now
			}
		}
		return
	}
	for i := range c.watches {
		w := &c.watches[i]
		if !w.reported && c.silentAt(w) <= c.now {
			w.reported = true
			c.stats.SilentNeighbors++
			c.report(Misbehaviour{Peer: w.peer, Reason: SilentNeighbor})
		}
		if w.sent+c.cfg.NeighborKeepalive <= c.now {
			c.stats.Keepalives++
			c.sendHello(w.peer) // sets w.sent through send
		}
	}
}

// helloDeadline is the earliest time a neighbour is judged silent or a keepalive is due.
func (c *Core) helloDeadline() (time.Duration, bool) {
	at, ok := time.Duration(0), false
	for i := range c.watches {
		w := &c.watches[i]
		d := w.sent + c.cfg.NeighborKeepalive
		if !w.reported {
			d = min(d, c.silentAt(w))
		}
		if !ok || d < at {
			at, ok = d, true
		}
	}
	return at, ok
}

// validateHello checks the silence check's timeouts.
func (cfg *Config) validateHello() []error {
	if cfg.NeighborHelloTimeout < 0 {
		return []error{fmt.Errorf("NeighborHelloTimeout must not be negative (0 turns it off), got %v", cfg.NeighborHelloTimeout)}
	}
	if cfg.NeighborHelloTimeout == 0 {
		return nil
	}
	if cfg.NeighborKeepalive <= 0 || cfg.NeighborSilenceTimeout <= cfg.NeighborKeepalive {
		return []error{errors.New("with NeighborHelloTimeout on, NeighborKeepalive must be positive and NeighborSilenceTimeout longer than it, so an honest neighbour's keepalive always comes in time")}
	}
	return nil
}
