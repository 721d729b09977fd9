// Package gossip implements Plumtree (Leitão, Pereira, Rodrigues, "Epidemic Broadcast Trees",
// SRDS 2007), the broadcast protocol of rtcmesh, as a deterministic state machine.
//
// Plumtree runs over the neighbours that membership (HyParView) reports. Every neighbour starts
// as an eager peer, to which a message's payload is pushed at once; a node that receives a
// payload twice PRUNEs the second sender into its lazy set, to which only announcements (IHAVE)
// are sent, in batches. The eager links converge to a spanning tree, so each broadcast crosses
// each node about once. A node that hears of a message (IHAVE) but does not receive it within a
// timeout GRAFTs the announcer back into the tree, which repairs it after failures; an
// optional optimisation swaps an eager link for a lazy one whose announcements arrive much
// earlier (by Config.OptimizationThreshold hops).
//
// Like package membership, the core touches no network, clock, goroutine or global random
// source: the driver calls NeighborUp/NeighborDown, Broadcast, Step and Tick and collects what
// to send and what to deliver with Ready.
package gossip

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"
)

// MessageID identifies a broadcast. It is drawn at random by the origin's core, so IDs from
// different origins do not collide in practice (128 bits).
type MessageID [16]byte

// String returns the ID in hex.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// MessageType identifies a Plumtree message.
type MessageType uint8

// The Plumtree messages. The numeric values are part of the wire format (see package wire)
// and must never be reused.
const (
	// Gossip carries a broadcast's payload (eager push).
	Gossip MessageType = 1
	// IHave announces, in a batch, messages the sender has received (lazy push).
	IHave MessageType = 2
	// Graft asks the receiver to make the sender an eager peer again and, if ID is set and the
	// receiver still holds that message, to send it.
	Graft MessageType = 3
	// Prune asks the receiver to make the sender a lazy peer: the sender received a payload
	// twice.
	Prune MessageType = 4

	// The catch-up (anti-entropy) messages, which neighbours exchange to find and fetch the
	// broadcasts one of them missed (see catchup.go).

	// Digest summarises the messages the sender holds whose origin Time falls in each of
	// Spans: one span for the periodic summary, several for a detailed answer.
	Digest MessageType = 5
	// Have lists, in Refs, the messages the sender holds in Spans (those that differed in a
	// Digest); with Reply set it lists only those the receiver lacks and asks for no answer.
	Have MessageType = 6
	// Pull asks for the messages named in Refs.
	Pull MessageType = 7
	// History carries a message's payload as Gossip does, but in answer to a Pull: it is
	// delivered with Delivery.History set and not forwarded through the tree.
	History MessageType = 8
)

var messageTypeNames = [...]string{Gossip: "GOSSIP", IHave: "IHAVE", Graft: "GRAFT", Prune: "PRUNE",
	Digest: "DIGEST", Have: "HAVE", Pull: "PULL", History: "HISTORY"}

// String returns the message type's name as the paper writes it, e.g. "GRAFT".
func (t MessageType) String() string {
	if int(t) < len(messageTypeNames) && messageTypeNames[t] != "" {
		return messageTypeNames[t]
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Valid reports whether t is one of the defined message types.
func (t MessageType) Valid() bool { return t >= Gossip && t <= History }

// carriesPayload reports whether messages of type t carry a broadcast (Gossip, History).
func (t MessageType) carriesPayload() bool { return t == Gossip || t == History }

// Announcement names one message in an IHave batch.
type Announcement struct {
	ID MessageID
	// Hops is the hop count at which the announcer received the message (0 for its origin).
	Hops uint16
}

// Span is a range of origin times [From, To) in milliseconds, with a summary of the messages
// a node holds whose Time falls in it.
type Span struct {
	From, To int64
	// Count is the number of messages (Digest; in a Have, the number of Refs in the span).
	Count uint32
	// Hash is the sum of the messages' fingerprints under the Digest's Salt (Digest only).
	Hash uint64
}

// MessageRef names a message by its origin Time and ID. Catch-up lists messages this way so
// that the holder finds each one in its history, which is ordered by time, without an index.
type MessageRef struct {
	Time int64
	ID   MessageID
}

// Message is one Plumtree message, a flat struct: only the fields its Type documents are
// meaningful. The sender is passed to Step by the driver.
type Message struct {
	Type MessageType
	// Reply marks a Have that answers a Have: it lists only what the receiver lacks, and the
	// receiver pulls and answers nothing more (Have).
	Reply bool
	// Hops is the number of links the payload has crossed, counting the one it is on: the
	// origin sends 1 (Gossip). Relays change it, so it is not signed. A History carries the
	// hops at which its sender received the message, plus one.
	Hops uint16
	// ID is the broadcast this message is about (Gossip, History, Graft). A Graft with a zero
	// ID only repairs the tree.
	ID MessageID
	// Origin is the node that broadcast the message (Gossip, History).
	Origin string
	// Seq is the origin's sequence number for this broadcast: 1 for its first, one more for
	// each next (Gossip, History). Signed; relays forward it unchanged.
	Seq uint64
	// Time is the origin's clock in milliseconds when it broadcast the message: the time of
	// its core's last Tick (Gossip, History). The runtime ticks with wall-clock time since the
	// Unix epoch, the simulator with simulated time. Signed; relays forward it unchanged.
	Time int64
	// Payload is the application's data (Gossip, History). The core never modifies it.
	Payload []byte
	// Proof is the origin's proof that it broadcast ID, Origin, Seq, Time and Payload, made by
	// its Config.Auth (the runtime's: public key ‖ signature) and opaque to the core; empty
	// when unsigned (Gossip, History). Relays forward it unchanged.
	Proof []byte
	// IHave is the batch of announcements (IHave).
	IHave []Announcement
	// Salt keys the message fingerprints summed in Spans' Hash (Digest). A fresh random salt
	// per Digest keeps a peer from choosing message IDs whose fingerprints cancel out.
	Salt uint64
	// Spans are, in a Digest, consecutive time ranges with the sender's Count and Hash for
	// each; in a Have, the time ranges its Refs cover (every message the sender holds in them
	// is listed, unless Reply is set).
	Spans []Span
	// Refs name messages: those the sender holds in Spans (Have), or those it asks for (Pull).
	Refs []MessageRef
}

// Envelope is a message the driver must deliver to a peer.
type Envelope struct {
	To  string
	Msg Message
}

// Delivery is a broadcast handed to the application, exactly once per message ID for as long as
// the ID is remembered (Config.SeenMaxIDs, Config.SeenMaxAge).
type Delivery struct {
	ID     MessageID
	Origin string
	// Hops is the number of links the payload crossed to get here; 0 for the node's own
	// broadcasts, which are delivered locally at once.
	Hops uint16
	// Seq and Time are the origin's sequence number and clock (ms) of the message (see
	// Message). Catch-up builds on Seq: see Core.HighWater.
	Seq     uint64
	Time    int64
	Payload []byte
	// From is the peer whose link the payload came on (the first to deliver it: what peer
	// scoring credits); empty for the node's own broadcasts.
	From string
	// History is set when the message came by catch-up (a History answering this node's
	// Pull) rather than through the broadcast tree: the application can tell a late delivery
	// of something sent a while ago (Time) from live traffic.
	History bool
}

// Authenticator signs this node's broadcasts and verifies other origins'. The runtime's signs
// with the node's identity key and puts public key ‖ signature in the proof; with none
// (Config.Auth nil, as in the simulator) broadcasts are unsigned and every origin is taken at
// its word, while sequence numbers and times are still checked.
type Authenticator interface {
	// Sign returns the proof for m, a Gossip whose ID, Origin, Seq, Time and Payload are set
	// (Hops and Proof are not covered: Hops changes on every link). An error fails the
	// Broadcast.
	Sign(m *Message) ([]byte, error)
	// Verify checks m.Proof against m's ID, Origin, Seq, Time and Payload, and that the proof
	// was made by m.Origin's key. A non-nil error refuses the message (RefusedSignature).
	// It must not keep or modify m.
	Verify(m *Message) error
}

// Refusal is why a Gossip (or History) that was well formed was refused: it is neither delivered nor
// forwarded, and the link it came on is reported in Ready.Misbehaviour. From ExcessIHave on,
// it names misbehaviour that is not a refused Gossip.
type Refusal uint8

// The reasons a Gossip is refused, in the order the core checks them.
const (
	// RefusedSelfOrigin: the message claims this node as its origin, but this node does not
	// remember sending it.
	RefusedSelfOrigin Refusal = 1
	// RefusedClock: the origin's Time is further than Config.MaxClockSkew from this node's
	// clock (too old, or from the future).
	RefusedClock Refusal = 2
	// RefusedReplay: the origin's sequence number was already delivered, or is older than
	// the Config.ReplayWindow this node remembers, or the message predates the origin's
	// last restart.
	RefusedReplay Refusal = 3
	// RefusedSignature: Config.Auth refused the proof (a forged origin, a modified message,
	// a missing or malformed proof).
	RefusedSignature Refusal = 4
	// RefusedLinkRate: the link it came on spent its forwarding budget (Config.LinkRate,
	// Config.LinkByteRate). Checked before the signature.
	RefusedLinkRate Refusal = 5
	// RefusedOriginRate: its origin spent its budget (Config.OriginRate,
	// Config.OriginByteRate). Checked after the signature, so the origin did send it; the
	// link may be an honest relay that admitted a different part of the origin's flood.
	RefusedOriginRate Refusal = 6

	// Misbehaviour that is not a refused Gossip; ID and Origin are unset unless noted.

	// ExcessIHave: the peer's IHave named messages beyond Config.MissingMaxPerPeer; they were
	// ignored (one report per IHave).
	ExcessIHave Refusal = 7
	// ExcessGraft: the peer's Graft came beyond Config.GraftAnswerRate and was not answered
	// with the payload (ID is the Graft's).
	ExcessGraft Refusal = 8
	// BrokenPromise: the peer announced message ID, was grafted for it, and the payload did
	// not arrive within Config.GraftRetryTimeout.
	BrokenPromise Refusal = 9
	// UnansweredPull: the neighbour listed messages in a catch-up Have (or Digest exchange),
	// was sent a Pull for them, and answered none of them within twice
	// Config.CatchUpPullTimeout: the catch-up counterpart of BrokenPromise, and what a silent
	// dropper that still takes part in catch-up does to a node it cut off.
	UnansweredPull Refusal = 10
	// SilentNeighbor: the neighbour sent nothing within Config.NeighborHelloTimeout of
	// becoming one, or nothing for Config.NeighborSilenceTimeout since, though every core
	// greets a new neighbour at once and keeps quiet links alive (see hello.go): a slot held
	// with no broadcast protocol behind it.
	SilentNeighbor Refusal = 11
)

var refusalNames = [...]string{RefusedSelfOrigin: "self-origin", RefusedClock: "clock", RefusedReplay: "replay", RefusedSignature: "signature",
	RefusedLinkRate: "link-rate", RefusedOriginRate: "origin-rate", ExcessIHave: "ihave-excess", ExcessGraft: "graft-excess",
	BrokenPromise: "broken-promise", UnansweredPull: "unanswered-pull", SilentNeighbor: "silent-neighbor"}

// String returns the reason's short name, e.g. "replay".
func (r Refusal) String() string {
	if int(r) < len(refusalNames) && refusalNames[r] != "" {
		return refusalNames[r]
	}
	return fmt.Sprintf("Refusal(%d)", uint8(r))
}

// Misbehaviour reports one refused Gossip, or another misbehaviour of a peer (ExcessIHave,
// ExcessGraft, BrokenPromise, UnansweredPull): the peer whose link it came on, and why. The peer is not
// necessarily the author of a refused Gossip: an honest relay can forward a message this node
// refuses for its clock, as a replay (it was new to the relay), as this node's own from before
// a restart, or beyond its origin's budget (RefusedOriginRate), but never one with a bad
// signature, because every relay verifies before it forwards. Peer scoring weighs the reasons.
type Misbehaviour struct {
	Peer   string
	Reason Refusal
	// ID and Origin are the refused message's, as claimed.
	ID     MessageID
	Origin string
	// Err is Config.Auth's error (RefusedSignature only).
	Err error
}

// Ready is what the driver must do after NeighborUp, NeighborDown, Broadcast, Step or Tick:
// send Messages (per destination in order) and hand Deliveries to the application. The slices
// belong to the caller.
type Ready struct {
	Messages   []Envelope
	Deliveries []Delivery
	// Misbehaviour lists the Gossips refused since the last Ready, in order, at most
	// Config.MaxMisbehaviourReports of them (the rest are only counted, in
	// Stats.MisbehaviourDropped). The runtime hands them to peer scoring.
	Misbehaviour []Misbehaviour
	// Greeted lists the neighbours heard from for the first time since they became
	// neighbours (with Config.NeighborHelloTimeout on): each runs the broadcast protocol, and
	// peer scoring credits that (see hello.go).
	Greeted []string
}

// Empty reports whether there is nothing to do.
func (rd Ready) Empty() bool {
	return len(rd.Messages) == 0 && len(rd.Deliveries) == 0 && len(rd.Misbehaviour) == 0 && len(rd.Greeted) == 0
}

// Stats are counters and gauges a driver may export as metrics.
type Stats struct {
	EagerPeers, LazyPeers int
	// CachedMessages is the number of payloads held to answer Grafts; SeenIDs the number of
	// message IDs remembered for duplicate suppression; PendingMissing the number of messages
	// heard of by IHave but not yet received.
	CachedMessages, SeenIDs, PendingMissing int
	// Broadcasts counts this node's own broadcasts; Delivered counts deliveries of other
	// nodes' messages; Duplicates counts payloads received again.
	Broadcasts, Delivered, Duplicates uint64
	// Sent and Received count messages by type.
	Sent, Received [History + 1]uint64
	// InvalidMessages counts messages Step refused with an error.
	InvalidMessages uint64
	// RefusedSelfOrigin, RefusedClock, RefusedReplay and RefusedSignature count the Gossips
	// refused for each Refusal (not errors of Step: see Core.Step). MisbehaviourDropped
	// counts the refusals left out of a full Ready.Misbehaviour.
	RefusedSelfOrigin, RefusedClock, RefusedReplay, RefusedSignature uint64
	MisbehaviourDropped                                              uint64
	// Origins is the number of origins whose sequence numbers are tracked (at most
	// Config.MaxOrigins); OriginsEvicted counts origins forgotten to stay within it;
	// OriginRestarts counts origins seen to start numbering again (a restart).
	Origins        int
	OriginsEvicted uint64
	OriginRestarts uint64
	// HistoryMessages and HistoryBytes are the messages held for catch-up and their payload
	// and proof bytes (at most Config.CatchUpMaxMessages and Config.CatchUpMaxBytes).
	HistoryMessages, HistoryBytes int
	// HistoryDelivered counts deliveries that came by catch-up (Delivery.History);
	// HistoryDuplicates counts History payloads that were already delivered.
	HistoryDelivered, HistoryDuplicates uint64
	// PendingPulls is the number of messages asked for by Pull and not yet received.
	PendingPulls int
	// CatchUpThrottled counts catch-up answers (Have, detailed Digest, History) not sent
	// because the asking peer's budget (Config.CatchUpPeerRate) was spent.
	CatchUpThrottled uint64
	// Unsent is the number of this node's broadcasts made while it had no neighbour and kept
	// to push to its next one (store-and-forward); UnsentDropped counts those dropped to stay
	// within Config.MaxUnsent.
	Unsent        int
	UnsentDropped uint64

	// The defences (see limits.go). RefusedLinkRate and RefusedOriginRate count the Gossips
	// refused beyond a link's or an origin's budget; IHaveExcess the announcements ignored
	// beyond MissingMaxPerPeer; GraftsThrottled the Grafts this node held back beyond
	// GraftRate (sent later); GraftsRefused the Grafts not answered beyond a peer's
	// GraftAnswerRate; BrokenPromises the Grafts whose payload never came (BrokenPromise);
	// PromisesDropped the promises left unjudged beyond MaxPromises.
	RefusedLinkRate, RefusedOriginRate uint64
	IHaveExcess                        uint64
	GraftsThrottled, GraftsRefused     uint64
	BrokenPromises, PromisesDropped    uint64
	// UnansweredPulls counts the Pulls no History answered (UnansweredPull).
	UnansweredPulls uint64
	// SilentNeighbors counts the neighbours reported as SilentNeighbor; Keepalives the
	// Digests sent to neighbours that had been sent nothing for NeighborKeepalive.
	SilentNeighbors, Keepalives uint64
	// HelloRestarts counts the Ticks that came so late (this node was away) that every
	// neighbour's silence was judged afresh from then.
	HelloRestarts uint64
	// CacheBytes is the payload and proof bytes held in the Graft cache (at most
	// CacheMaxBytes); SeenBytes the estimated memory of the seen set (at most SeenMaxBytes).
	CacheBytes, SeenBytes int
}

// Config configures one Plumtree core. DefaultConfig returns the paper's settings.
type Config struct {
	// Self is this node's ID. Required.
	Self string
	// Rand is this node's random source (message IDs). Required and never shared, so a seeded
	// source makes the core deterministic.
	Rand *rand.Rand
	// Flood turns Plumtree off and makes the core the paper's eager-push baseline: every
	// neighbour stays eager, duplicates are never pruned, no IHave is sent.
	Flood bool

	// LazyFlushInterval is how long announcements for a lazy peer are held so they travel
	// in one IHave (the paper's lazy-push dispatch policy). 0 sends each at once.
	LazyFlushInterval time.Duration
	// LazyBatchMax sends a lazy peer's IHave as soon as this many announcements are queued.
	// It also bounds the announcements accepted in one IHave from a peer.
	LazyBatchMax int
	// MissingTimeout (the paper's timeout 1) is how long after the first IHave for a message
	// that has not arrived the core waits before it GRAFTs the announcer. It should exceed
	// the typical extra delay of the eager path, or every announcement becomes a Graft.
	MissingTimeout time.Duration
	// GraftRetryTimeout (the paper's timeout 2, shorter than MissingTimeout) is how long after
	// a Graft the core waits for the payload before it GRAFTs the next announcer.
	GraftRetryTimeout time.Duration
	// OptimizationThreshold: when a message arrives through the tree at least this many hops
	// later than a lazy peer announced it, the lazy link replaces the eager one (the paper uses
	// 3 for a single sender, 7 for many). 0 turns the optimisation off.
	OptimizationThreshold int
	// OptimizationQuiet > 0 lets the optimisation swap only while no other message may be in
	// flight through this node: none delivered within OptimizationQuiet before, and none
	// announced but not yet received. A swap (a Prune to the old parent, a Graft to the new
	// one) while other broadcasts are in flight cuts the subtree below off from the messages
	// the new parent had announced rather than pushed; they wait MissingTimeout and are
	// grafted, each Graft adds an eager link whose duplicates prune others while messages are
	// in flight, and with many senders the tree never settles (BenchmarkManySenders: at
	// threshold 7 without it, 500 nodes and 10 broadcasts a second, 85 Grafts per broadcast
	// and deliveries 2.3 s late; with it, none). Broadcasts a second apart (the papers'
	// setting) keep the optimisation's shorter tree. 0 swaps whenever the threshold is met
	// (the paper).
	OptimizationQuiet time.Duration
	// CacheMaxMessages and CacheMaxAge bound the payloads kept to answer Grafts.
	CacheMaxMessages int
	CacheMaxAge      time.Duration
	// SeenMaxIDs and SeenMaxAge bound the set of delivered message IDs used to drop
	// duplicates. A message older than SeenMaxAge may be delivered again if it resurfaces;
	// keep SeenMaxAge well above any path's delay.
	SeenMaxIDs int
	SeenMaxAge time.Duration
	// MissingMaxIDs bounds the messages tracked as announced but not received, and
	// MissingMaxAnnouncers the announcers remembered for each.
	MissingMaxIDs        int
	MissingMaxAnnouncers int
	// MaxPayload bounds a payload accepted from Broadcast or a peer (bytes).
	MaxPayload int

	// Auth signs this node's broadcasts and verifies everyone else's before they are
	// delivered or forwarded. nil means unsigned: the simulator leaves the cryptography out,
	// and a runtime on an open network must never do so.
	Auth Authenticator
	// MaxClockSkew refuses a Gossip whose origin Time is further than this from this node's
	// clock (RefusedClock). It must exceed the real clock differences plus a broadcast's
	// delay, and be below half of SeenMaxAge: a message is then refused by its time once
	// its ID may have left the seen set, so a replay is refused either by its time or,
	// within the skew, by its ID (and by its sequence number).
	MaxClockSkew time.Duration
	// ReplayWindow is how many sequence numbers below the highest one received from an
	// origin are remembered (a bitmap); an older one is refused as a replay (RefusedReplay).
	// A positive multiple of 64.
	ReplayWindow int
	// MaxOrigins bounds the origins whose sequence numbers are tracked; the one heard from
	// least recently is forgotten to make room. This stays safe: a replay of a forgotten
	// origin's message is still refused by its time (MaxClockSkew) or by its ID (the seen
	// set, which holds IDs for longer than twice the skew as long as fewer than SeenMaxIDs
	// messages arrive in that time). Only messages that verify create an origin's state.
	MaxOrigins int
	// MaxMisbehaviourReports bounds Ready.Misbehaviour; further refusals between two Readys
	// are only counted.
	MaxMisbehaviourReports int

	// CatchUpWindow is how far back, in origin time, broadcasts are kept and offered to
	// neighbours by catch-up (anti-entropy, see catchup.go), so that a node that was paused,
	// cut off or not yet joined gets what it missed, delivered with Delivery.History set.
	// 0 turns catch-up off. Any message older than the larger of MaxClockSkew and
	// CatchUpWindow is refused (RefusedClock).
	CatchUpWindow time.Duration
	// CatchUpMaxMessages and CatchUpMaxBytes (payload and proof bytes) bound the history
	// kept for catch-up; the oldest messages leave first.
	CatchUpMaxMessages int
	CatchUpMaxBytes    int
	// CatchUpInterval is how often the node sends a summary Digest to one of its neighbours,
	// each in turn. It also sends one to every new neighbour, and to its other neighbours
	// CatchUpSettle after it caught up on something, so what one node fetched spreads.
	CatchUpInterval time.Duration
	// CatchUpSettle leaves out of every Digest the messages sent less than this long ago,
	// which the tree is still delivering, and is the delay before the Digests that spread
	// what was caught up on.
	CatchUpSettle time.Duration
	// CatchUpSpans is how many spans a detailed Digest splits the window into, and the most a
	// Digest or Have may carry.
	CatchUpSpans int
	// CatchUpMaxRefs bounds the Refs of one Have or Pull, sent or accepted. A node whose
	// answer would list more than a quarter of it answers a summary Digest with a detailed one
	// first, so that only the spans that differ are listed.
	CatchUpMaxRefs int
	// CatchUpPeerRate (bytes per second) and CatchUpPeerBurst (bytes) bound what this node
	// sends in answer to one neighbour's catch-up (Have, detailed Digest, History), counted
	// in estimated encoded bytes by a token bucket per neighbour: a peer cannot make it send
	// more, so catch-up cannot amplify a flood. An answer over budget is not sent; the next
	// Digest asks again. The burst must hold a History of MaxPayload bytes.
	CatchUpPeerRate  int
	CatchUpPeerBurst int
	// CatchUpPullTimeout is how long a message asked for by Pull is not asked of another
	// peer; its answer is still taken for twice as long, after which a Pull the peer answered
	// none of is reported (UnansweredPull). CatchUpMaxPulls bounds the messages
	// asked for and not yet received.
	CatchUpPullTimeout time.Duration
	CatchUpMaxPulls    int
	// MaxUnsent bounds this node's broadcasts made while it has no neighbour, which are kept
	// and pushed as live broadcasts to its next neighbour (store-and-forward at the origin);
	// beyond it the oldest is dropped from that list (catch-up still offers it).
	MaxUnsent int

	// Defences against hostile neighbours (see limits.go). Every one is off at 0, and
	// DisableDefences turns them all off. The defaults are far above honest traffic (a few
	// broadcasts a second per origin), so that they never touch an honest broadcast.

	// LinkRate (messages per second) and LinkBurst bound the new Gossips accepted from one
	// link, LinkByteRate (bytes per second) and LinkByteBurst their payload and proof bytes: a
	// Gossip beyond either is refused (RefusedLinkRate). A link carries every origin's
	// messages, so these bound the whole overlay's broadcast rate as one node sees it.
	// Neighbours have a budget each; all other links share one.
	LinkRate, LinkBurst         int
	LinkByteRate, LinkByteBurst int
	// OriginRate, OriginBurst, OriginByteRate and OriginByteBurst bound, the same way, the
	// Gossips accepted from one origin, whichever link brings them (RefusedOriginRate). The
	// budget lives with the origin's sequence-number state (MaxOrigins).
	OriginRate, OriginBurst         int
	OriginByteRate, OriginByteBurst int
	// MissingMaxPerPeer bounds the missing-message entries (MissingMaxIDs in all) one peer
	// may be an announcer of; its announcements beyond it are ignored (ExcessIHave).
	MissingMaxPerPeer int
	// GraftRate (per second) and GraftBurst bound the Grafts this node sends for missing
	// messages; one beyond waits GraftRetryTimeout and tries again (Stats.GraftsThrottled).
	GraftRate, GraftBurst int
	// GraftAnswerRate (per second) and GraftAnswerBurst bound the Grafts answered with a
	// payload, per neighbour; one beyond is not answered (ExcessGraft).
	GraftAnswerRate, GraftAnswerBurst int
	// PromiseTimeout is how long after its Graft an announcer has to deliver the payload
	// (or anyone else has) before it is reported as a BrokenPromise; it should be longer
	// than GraftRetryTimeout, so that a payload slowed by a busy link is late rather than
	// broken (gossipsub waits 3 s for an IWANT; a Plumtree payload of up to MaxPayload may
	// queue behind many others on one ordered channel, and a busy but honest neighbour
	// scored out as a liar costs the tree a link). At most GraftRetryTimeout: judged when
	// the next announcer is grafted.
	// MaxPromises bounds the promises waiting to be judged; beyond it the oldest is dropped
	// unjudged (Stats.PromisesDropped). Reporting is not a bound, so DisableDefences keeps
	// both.
	PromiseTimeout time.Duration
	MaxPromises    int
	// CacheMaxBytes bounds the payload and proof bytes of the Graft cache, beside
	// CacheMaxMessages: the oldest leave first. At least MaxPayload.
	CacheMaxBytes int
	// NeighborHelloTimeout is how long a new neighbour has to send its first frame (every
	// core greets a new neighbour with a Digest at once, see hello.go) before it is reported
	// as SilentNeighbor; NeighborSilenceTimeout how long a neighbour heard from before may
	// then stay quiet. Every core sends a neighbour it has sent nothing to for
	// NeighborKeepalive a short Digest, so an honest neighbour is quiet for at most that
	// long plus a link's latency. Both timeouts must be well above a link's delay under
	// load. NeighborHelloTimeout 0 turns the check and the keepalives off; a node with it
	// off and catch-up off sends no hello, so every node of a network must have one of the
	// two on once any node judges.
	NeighborHelloTimeout   time.Duration
	NeighborSilenceTimeout time.Duration
	NeighborKeepalive      time.Duration
	// SeenMaxBytes bounds the estimated memory of the seen set (64 bytes an ID), beside
	// SeenMaxIDs.
	SeenMaxBytes int
}

// DefaultConfig returns Plumtree's settings for a WAN of WebRTC links: optimisation threshold
// 7 (many senders), only when no other message arrived in the last 500 ms
// (OptimizationQuiet), timeouts of a few hundred milliseconds, caches bounded to a few minutes,
// and catch-up over the last 5 minutes (at most 4,096 messages or 16 MiB), a Digest to one
// neighbour every 10 s, at most 512 KiB/s of answers to any one neighbour. The defences:
// per link 500 messages/s (burst 1,000) and 4 MiB/s (burst 16 MiB); per origin 20 messages/s
// (burst 200) and 256 KiB/s (burst 4 MiB); 256 missing entries per announcer; 100 Grafts/s
// sent (burst 500) and 50/s answered per neighbour (burst 500); a promise judged 10 s after its
// Graft (at most 1,024 waiting); a 16 MiB cache and a 4 MiB seen set.
// Self and Rand must still be set, and Auth on any network that is not simulated.
func DefaultConfig() Config {
	return Config{
		LazyFlushInterval:      50 * time.Millisecond,
		LazyBatchMax:           64,
		MissingTimeout:         1 * time.Second,
		GraftRetryTimeout:      500 * time.Millisecond,
		OptimizationThreshold:  7,
		OptimizationQuiet:      500 * time.Millisecond,
		CacheMaxMessages:       4096,
		CacheMaxAge:            2 * time.Minute,
		SeenMaxIDs:             65536,
		SeenMaxAge:             10 * time.Minute,
		MissingMaxIDs:          4096,
		MissingMaxAnnouncers:   8,
		MaxPayload:             60 * 1024,
		MaxClockSkew:           2 * time.Minute,
		ReplayWindow:           1024,
		MaxOrigins:             8192,
		MaxMisbehaviourReports: 64,
		CatchUpWindow:          5 * time.Minute,
		CatchUpMaxMessages:     4096,
		CatchUpMaxBytes:        16 << 20,
		CatchUpInterval:        10 * time.Second,
		CatchUpSettle:          2 * time.Second,
		CatchUpSpans:           16,
		CatchUpMaxRefs:         1024,
		CatchUpPeerRate:        512 << 10,
		CatchUpPeerBurst:       1 << 20,
		CatchUpPullTimeout:     5 * time.Second,
		CatchUpMaxPulls:        4096,
		MaxUnsent:              256,
		LinkRate:               500,
		LinkBurst:              1000,
		LinkByteRate:           4 << 20,
		LinkByteBurst:          16 << 20,
		OriginRate:             20,
		OriginBurst:            200,
		OriginByteRate:         256 << 10,
		OriginByteBurst:        4 << 20,
		MissingMaxPerPeer:      256,
		GraftRate:              100,
		GraftBurst:             500,
		GraftAnswerRate:        50,
		GraftAnswerBurst:       500,
		PromiseTimeout:         10 * time.Second,
		MaxPromises:            1024,
		CacheMaxBytes:          16 << 20,
		NeighborHelloTimeout:   5 * time.Second,
		NeighborSilenceTimeout: time.Minute,
		NeighborKeepalive:      20 * time.Second,
		SeenMaxBytes:           4 << 20,
	}
}
