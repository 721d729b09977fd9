// Package scoring keeps a score per peer ID from what the peer did, and decides which peers
// to disconnect and refuse for a while. It is a pure, deterministic component in the style of
// the protocol cores (no goroutines, wall clock, global random source or network): the driver
// passes its time to every call, and overlay.Peer composes it with the cores.
//
// The score follows the shape of gossipsub v1.1's peer score, written for Plumtree:
//
//		score = FirstDeliveryWeight · min(firstDeliveries, FirstDeliveryCap)
//		      + Σ over offences o of Weight[o] · count[o]²        (Weight[o] ≤ 0)
//
//	  - firstDeliveries counts the broadcasts this peer was the first to bring (gossipsub's P2),
//	    capped so that a peer cannot bank credit to spend on misbehaviour later.
//	  - count[o] counts one offence (see Offence): invalid signatures (gossipsub's P4), floods
//	    (payloads beyond a forwarding budget), IHave spam (weight 0 by default: counted only),
//	    Graft spam, broken promises (announcements whose payload never came after a Graft:
//	    gossipsub's P7), the HyParView messages membership refused (membership spam, stranger
//	    walks), and catch-up Pulls a peer left unanswered. The square
//	    makes a few isolated events, which an honest peer can cause on a bad link, cheap, and a
//	    sustained attack expensive fast.
//	  - Every counter decays: it is multiplied by its Decay every DecayInterval of driver time,
//	    and a counter below DecayToZero is zero. Decay is applied lazily, when a peer's record
//	    is read or written, from the record's own time, so the result depends only on the
//	    driver's times and not on how often it calls.
//
// A peer whose score falls below DisconnectThreshold is refused for CoolingPeriod: the driver
// closes its link, the overlay drops its messages and sends it nothing, and the runtime
// refuses to dial it or accept it. When the cooling period ends the peer starts again from a
// clean record. Records are bounded (MaxPeers, MaxRefused); a record whose counters all
// decayed to zero is the same as none and is dropped.
package scoring

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Offence is a kind of misbehaviour that lowers a peer's score.
type Offence uint8

// The offences, with the gossip refusals that feed them (see overlay).
const (
	// InvalidSignature: the peer sent a broadcast whose proof did not verify. Every relay
	// verifies before it forwards, so only the peer itself can be at fault.
	InvalidSignature Offence = iota
	// Flood: the peer sent payloads beyond its link's forwarding budget, or, as an origin,
	// broadcast beyond its origin budget.
	Flood
	// IHaveSpam: the peer announced more missing messages than this node tracks for one peer.
	IHaveSpam
	// GraftSpam: the peer sent Grafts beyond the answer budget.
	GraftSpam
	// BrokenPromise: the peer announced a message, was grafted for it, and did not send it.
	BrokenPromise
	// MembershipSpam: the peer sent a HyParView message the membership core refused because
	// of what the peer did: a SHUFFLE_REPLY this node never asked for or larger than the
	// shuffle it answers, or more messages of one type than the per-peer rate allows (a
	// NEIGHBOR or JOIN storm). An honest peer does so only by a rare race (a reply later than
	// ShuffleReplyTimeout).
	MembershipSpam
	// StrangerWalk: the peer, not a neighbour, sent a SHUFFLE or FORWARD_JOIN, which travel
	// along active links only. An honest neighbour does so in a race with a DISCONNECT, so the
	// default weight is light.
	StrangerWalk
	// UnansweredPull: the peer listed messages for catch-up and answered none of this node's
	// Pull for them (gossip.UnansweredPull): a silent dropper that still takes part in
	// catch-up. An honest neighbour fails to answer only when its answer budget is spent.
	UnansweredPull
	// SilentNeighbor: the peer became a neighbour and sent nothing within the gossip core's
	// NeighborHelloTimeout, though every core greets a new neighbour at once
	// (gossip.SilentNeighbor): an active-view slot held with no broadcast protocol behind it.
	// An honest neighbour is silent only on a link that stalled at once.
	SilentNeighbor

	numOffences
)

var offenceNames = [numOffences]string{"invalid_signature", "flood", "ihave_spam", "graft_spam", "broken_promise",
	"membership_spam", "stranger_walk", "unanswered_pull", "silent_neighbor"}

// String returns the offence's metric label, e.g. "broken_promise".
func (o Offence) String() string {
	if o < numOffences {
		return offenceNames[o]
	}
	return fmt.Sprintf("Offence(%d)", uint8(o))
}

// Offences lists every offence, in order, for metrics.
func Offences() []Offence {
	out := make([]Offence, numOffences)
	for i := range out {
		out[i] = Offence(i)
	}
	return out
}

// Config configures a Scorer. DefaultConfig returns the defaults; the zero value (Enabled
// false) keeps no scores.
type Config struct {
	// Enabled turns scoring on. Off, New returns a Scorer that records nothing and refuses
	// no one.
	Enabled bool
	// DecayInterval is the step of decay: every counter is multiplied by its decay factor once
	// per DecayInterval of driver time.
	DecayInterval time.Duration
	// DecayToZero: a counter that decays below it is zero.
	DecayToZero float64

	// FirstDeliveryWeight (≥ 0) is the score of one first delivery, FirstDeliveryCap the most
	// first deliveries counted, and FirstDeliveryDecay (in (0, 1)) their decay per interval.
	FirstDeliveryWeight float64
	FirstDeliveryCap    float64
	FirstDeliveryDecay  float64
	// HelloCredit (≥ 0) is what a new neighbour's hello (its first frame, gossip's
	// Ready.Greeted) counts for, in first deliveries: it ranks a peer known to run the
	// broadcast protocol above unknown ones for evictions before any broadcast has shown who
	// delivers. Kept below one delivery, it earns no preference in repairs (membership's
	// RankProven), since a dropper greets too. 0: hellos earn nothing.
	HelloCredit float64

	// Weight (≤ 0) and Decay (in (0, 1)) per offence, indexed by Offence: an offence counted n
	// times (decayed) adds Weight·n² to the score.
	Weight [numOffences]float64
	Decay  [numOffences]float64

	// DisconnectThreshold (< 0): a peer whose score falls below it is disconnected and refused
	// for CoolingPeriod.
	DisconnectThreshold float64
	CoolingPeriod       time.Duration

	// MaxPeers bounds the peers with a record; when it is full, a new peer replaces the one
	// written least recently. MaxRefused bounds the peers refused at once; when it is full,
	// the refusal that ends first is ended early.
	MaxPeers   int
	MaxRefused int
}

// DefaultConfig returns the defaults: decay every second, counters dropped below 0.01; +1 per
// first delivery up to 50 (decay 0.99 a second, about 70 s half-life), a new neighbour's
// hello counted as half a first delivery; offences weighted so
// that 3 invalid signatures (weight -20), or 11 floods, Graft spams, broken promises or
// membership spams (weight -1; 13 for a peer with full first-delivery credit), or 21 stranger
// walks (weight -0.25), or 3 unanswered catch-up Pulls (weight -25), or one silent neighbour
// with no first-delivery credit (weight -150), within their decay (0.99
// a second, about 70 s half-life; invalid signatures 0.999, about 12 min) take a peer below
// the threshold of -100 (IHave spam is counted with weight 0); refused for 10 minutes; at most
// 4,096 records and 1,024 refused peers.
func DefaultConfig() Config {
	c := Config{
		Enabled:             true,
		DecayInterval:       time.Second,
		DecayToZero:         0.01,
		FirstDeliveryWeight: 1,
		FirstDeliveryCap:    50,
		FirstDeliveryDecay:  0.99,
		HelloCredit:         0.5,
		DisconnectThreshold: -100,
		CoolingPeriod:       10 * time.Minute,
		MaxPeers:            4096,
		MaxRefused:          1024,
	}
	for o := range numOffences {
		c.Weight[o], c.Decay[o] = -1, 0.99
	}
	c.Weight[InvalidSignature], c.Decay[InvalidSignature] = -20, 0.999
	c.Weight[StrangerWalk] = -0.25
	c.Weight[UnansweredPull] = -25
	// One silence disconnects a peer with no first-delivery credit; one with full credit
	// (+50), an honest neighbour whose link stalled, stays at -100, just above the threshold.
	c.Weight[SilentNeighbor] = -150
	// Announcements beyond the per-peer cap are counted but cost nothing: an honest neighbour
	// whose payloads queue on a congested link exceeds the cap too, the cap alone already
	// protects the missing-message table, and a liar's made-up IDs surface as broken promises
	// (gossipsub likewise ignores excess IHAVEs without a penalty).
	c.Weight[IHaveSpam] = 0
	return c
}

// DisableDefences turns scoring off (Enabled false), for figures beside the defended runs.
func (c *Config) DisableDefences() { c.Enabled = false }

// Validate reports every invalid field of an enabled Config.
func (c *Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	decay := func(name string, v float64) {
		if !(v > 0 && v < 1) {
			errs = append(errs, fmt.Errorf("%s must be in (0, 1), got %v", name, v))
		}
	}
	if c.DecayInterval <= 0 {
		errs = append(errs, fmt.Errorf("DecayInterval must be positive, got %v", c.DecayInterval))
	}
	if !(c.DecayToZero > 0 && c.DecayToZero < 1) {
		errs = append(errs, fmt.Errorf("DecayToZero must be in (0, 1), got %v", c.DecayToZero))
	}
	if !(c.FirstDeliveryWeight >= 0) || math.IsInf(c.FirstDeliveryWeight, 0) {
		errs = append(errs, fmt.Errorf("FirstDeliveryWeight must be finite and not negative, got %v", c.FirstDeliveryWeight))
	}
	if !(c.FirstDeliveryCap >= 0) || math.IsInf(c.FirstDeliveryCap, 0) {
		errs = append(errs, fmt.Errorf("FirstDeliveryCap must be finite and not negative, got %v", c.FirstDeliveryCap))
	}
	decay("FirstDeliveryDecay", c.FirstDeliveryDecay)
	if !(c.HelloCredit >= 0) || math.IsInf(c.HelloCredit, 0) {
		errs = append(errs, fmt.Errorf("HelloCredit must be finite and not negative, got %v", c.HelloCredit))
	}
	for o := range numOffences {
		if !(c.Weight[o] <= 0) || math.IsInf(c.Weight[o], 0) {
			errs = append(errs, fmt.Errorf("Weight[%v] must be finite and not positive, got %v", o, c.Weight[o]))
		}
		decay(fmt.Sprintf("Decay[%v]", o), c.Decay[o])
	}
	if !(c.DisconnectThreshold < 0) || math.IsInf(c.DisconnectThreshold, 0) {
		errs = append(errs, fmt.Errorf("DisconnectThreshold must be finite and negative, got %v", c.DisconnectThreshold))
	}
	if c.CoolingPeriod <= 0 {
		errs = append(errs, fmt.Errorf("CoolingPeriod must be positive, got %v", c.CoolingPeriod))
	}
	if c.MaxPeers <= 0 {
		errs = append(errs, fmt.Errorf("MaxPeers must be positive, got %d", c.MaxPeers))
	}
	if c.MaxRefused <= 0 {
		errs = append(errs, fmt.Errorf("MaxRefused must be positive, got %d", c.MaxRefused))
	}
	if len(errs) > 0 {
		return fmt.Errorf("scoring: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// Stats are the Scorer's counters and gauges, for metrics: no series per peer, so their
// number stays bounded whatever the peers do.
type Stats struct {
	// Peers is the number of peers with a record; Negative those whose score is below 0;
	// Refused those refused now (cooling).
	Peers, Negative, Refused int
	// MinScore is the lowest score of a peer with a record (0 when none).
	MinScore float64
	// Disconnects counts the peers that fell below DisconnectThreshold.
	Disconnects uint64
	// Offences counts the offences recorded, by Offence; FirstDeliveries the first
	// deliveries credited; Greetings the hellos credited (HelloCredit).
	Offences        [numOffences]uint64
	FirstDeliveries uint64
	Greetings       uint64
	// Evicted counts records dropped to stay within MaxPeers, RefusalsEvicted refusals ended
	// early to stay within MaxRefused.
	Evicted, RefusalsEvicted uint64
}

// record is what the Scorer knows of one peer.
type record struct {
	first    float64
	offences [numOffences]float64
	// at is the driver time the counters were last decayed to (a multiple of DecayInterval).
	at time.Duration
	// touched orders records for eviction: a counter bumped at every write.
	touched uint64
}

// Scorer holds the scores. It is not safe for concurrent use: its driver owns it.
type Scorer struct {
	cfg     Config
	peers   map[string]*record
	refused map[string]time.Duration // peer → end of its cooling period
	// disconnect lists the peers that fell below the threshold since the last Disconnects.
	disconnect []string
	writes     uint64
	stats      Stats
	// latest is the latest driver time any call gave (Rank's time).
	latest time.Duration
}

// New returns a Scorer for cfg, or cfg's validation error.
func New(cfg Config) (*Scorer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Scorer{cfg: cfg, peers: map[string]*record{}, refused: map[string]time.Duration{}}, nil
}

// Enabled reports whether the Scorer keeps scores.
func (s *Scorer) Enabled() bool { return s.cfg.Enabled }

// decay brings r's counters to now.
func (s *Scorer) decay(r *record, now time.Duration) {
	if now <= r.at {
		return
	}
	steps := (now - r.at) / s.cfg.DecayInterval
	if steps <= 0 {
		return
	}
	r.at += steps * s.cfg.DecayInterval
	k := float64(steps)
	// Counters at 0 stay 0: most are, and math.Pow is most of a decay's cost.
	if r.first != 0 {
		r.first = s.zero(r.first * math.Pow(s.cfg.FirstDeliveryDecay, k))
	}
	for o := range numOffences {
		if r.offences[o] != 0 {
			r.offences[o] = s.zero(r.offences[o] * math.Pow(s.cfg.Decay[o], k))
		}
	}
}

func (s *Scorer) zero(v float64) float64 {
	if v < s.cfg.DecayToZero {
		return 0
	}
	return v
}

func (r *record) empty() bool {
	if r.first != 0 {
		return false
	}
	for _, v := range r.offences {
		if v != 0 {
			return false
		}
	}
	return true
}

// score computes r's score (r decayed).
func (s *Scorer) score(r *record) float64 {
	v := s.cfg.FirstDeliveryWeight * math.Min(r.first, s.cfg.FirstDeliveryCap)
	for o := range numOffences {
		v += s.cfg.Weight[o] * r.offences[o] * r.offences[o]
	}
	return v
}

// get returns peer's record decayed to now, creating it (and evicting to make room) when
// create is set; nil when there is none and create is not set.
func (s *Scorer) get(peer string, now time.Duration, create bool) *record {
	r := s.peers[peer]
	if r == nil {
		if !create {
			return nil
		}
		if len(s.peers) >= s.cfg.MaxPeers {
			s.evict(now)
		}
		r = &record{at: now - now%s.cfg.DecayInterval}
		s.peers[peer] = r
	}
	s.decay(r, now)
	if create {
		s.writes++
		r.touched = s.writes
	}
	return r
}

// evict makes room for one record: it drops every record that decayed to nothing and, if
// none did, the one written least recently (a scan: eviction is rare, and a table full of
// peers that all misbehaved recently is an attack worth the time).
func (s *Scorer) evict(now time.Duration) {
	var oldest string
	var oldestAt uint64
	freed := false
	for p, r := range s.peers {
		s.decay(r, now)
		if r.empty() {
			delete(s.peers, p)
			freed = true
			continue
		}
		if oldest == "" || r.touched < oldestAt || (r.touched == oldestAt && p < oldest) {
			oldest, oldestAt = p, r.touched
		}
	}
	if !freed && oldest != "" {
		delete(s.peers, oldest)
		s.stats.Evicted++
	}
}

// Penalise records one offence by peer at driver time now. It returns true when this took
// the peer below DisconnectThreshold: the peer is then refused until now+CoolingPeriod and
// listed by the next Disconnects. A peer already refused, or an empty ID, is ignored.
func (s *Scorer) Penalise(now time.Duration, peer string, o Offence) bool {
	if !s.cfg.Enabled || peer == "" || o >= numOffences || s.Refused(now, peer) {
		return false
	}
	s.latest = max(s.latest, now)
	s.stats.Offences[o]++
	r := s.get(peer, now, true)
	r.offences[o]++
	if s.score(r) >= s.cfg.DisconnectThreshold {
		return false
	}
	s.refuse(now, peer)
	return true
}

// Credit records that peer was the first to bring a broadcast to this node, at now.
func (s *Scorer) Credit(now time.Duration, peer string) {
	if !s.cfg.Enabled || peer == "" || s.Refused(now, peer) {
		return
	}
	s.latest = max(s.latest, now)
	s.stats.FirstDeliveries++
	r := s.get(peer, now, true)
	// Counted up to the cap only, so that the counter, not just the score, stays bounded.
	r.first = math.Min(r.first+1, s.cfg.FirstDeliveryCap)
}

// Greeted credits peer's hello, its first frame as a new neighbour (gossip's Ready.Greeted),
// as HelloCredit first deliveries (their weight, cap and decay): a peer known to run the
// broadcast protocol ranks above unknown ones before any broadcast has shown who delivers.
func (s *Scorer) Greeted(now time.Duration, peer string) {
	if !s.cfg.Enabled || peer == "" || s.cfg.HelloCredit == 0 || s.Refused(now, peer) {
		return
	}
	s.latest = max(s.latest, now)
	s.stats.Greetings++
	r := s.get(peer, now, true)
	r.first = math.Min(r.first+s.cfg.HelloCredit, s.cfg.FirstDeliveryCap)
}

// refuse starts peer's cooling period and forgets its record (it starts clean afterwards).
func (s *Scorer) refuse(now time.Duration, peer string) {
	delete(s.peers, peer)
	if len(s.refused) >= s.cfg.MaxRefused {
		first, firstEnd := "", time.Duration(0)
		for p, end := range s.refused {
			if first == "" || end < firstEnd || (end == firstEnd && p < first) {
				first, firstEnd = p, end
			}
		}
		delete(s.refused, first)
		s.stats.RefusalsEvicted++
	}
	s.refused[peer] = now + s.cfg.CoolingPeriod
	s.stats.Disconnects++
	s.disconnect = append(s.disconnect, peer)
}

// Refused reports whether peer is in its cooling period at now; a period that ended is
// forgotten.
func (s *Scorer) Refused(now time.Duration, peer string) bool {
	s.latest = max(s.latest, now)
	end, ok := s.refused[peer]
	if !ok {
		return false
	}
	if now >= end {
		delete(s.refused, peer)
		return false
	}
	return true
}

// Disconnects returns the peers that fell below the threshold since the last call, in order,
// and clears the list. The slice belongs to the caller.
func (s *Scorer) Disconnects() []string {
	d := s.disconnect
	s.disconnect = nil
	return d
}

// Rank returns peer's score at the latest time the driver gave any call (Score, Penalise,
// Credit, Stats, Refused): what membership.Config.Rank wants, for a caller that has no clock.
// A peer refused now ranks below every other.
func (s *Scorer) Rank(peer string) float64 {
	if !s.cfg.Enabled {
		return 0
	}
	if end, ok := s.refused[peer]; ok && s.latest < end {
		return math.Inf(-1)
	}
	return s.Score(s.latest, peer)
}

// Score returns peer's score at now (0 for a peer with no record, or refused).
func (s *Scorer) Score(now time.Duration, peer string) float64 {
	s.latest = max(s.latest, now)
	r := s.get(peer, now, false)
	if r == nil {
		return 0
	}
	return s.score(r)
}

// Stats returns the counters and gauges at now. It decays every record, O(records).
func (s *Scorer) Stats(now time.Duration) Stats {
	st := s.stats
	st.Peers = len(s.peers)
	seen := false
	for p, r := range s.peers {
		s.decay(r, now)
		if r.empty() {
			delete(s.peers, p)
			st.Peers--
			continue
		}
		v := s.score(r)
		if v < 0 {
			st.Negative++
		}
		if !seen || v < st.MinScore {
			st.MinScore, seen = v, true
		}
	}
	for p, end := range s.refused {
		if now >= end {
			delete(s.refused, p)
		}
	}
	st.Refused = len(s.refused)
	return st
}
