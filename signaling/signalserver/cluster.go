package signalserver

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rtcmesh/rtcmesh/signaling"
)

// Cluster lets several signaling servers share networks: a node connected to one instance can
// be sampled as a contact by, and receive offers, answers and candidates from, nodes connected
// to another. Package signalnats implements it on NATS. A Server without one (Config.Cluster
// nil) is a single instance and behaves exactly as before clusters existed.
//
// The server calls Joined and Left while holding its hub lock, so an implementation must never
// call the ClusterHost from inside those methods, nor hold its own lock while calling it.
type Cluster interface {
	// Attach is called once, by New, with the server's side of the contract.
	Attach(host ClusterHost) error
	// Joined says that id proved its key in a hello and is now the member of network on this
	// instance, registered at `at`. The cluster announces it and claims the ID: an older
	// connection of id on another instance is closed with replaced.
	Joined(network, id string, at time.Time)
	// Left says that the member id of network on this instance is gone (not replaced by a
	// newer connection on this instance, which calls Joined instead).
	Left(network, id string)
	// Present reports whether id is a member of network on another instance.
	Present(network, id string) bool
	// Count is the number of members of network on other instances.
	Count(network string) int
	// Sample returns up to k distinct random members of network on other instances, drawn
	// with rng (the server serialises its use).
	Sample(network string, k int, rng *rand.Rand) []string
	// Relay hands frame, an offer, answer, candidate or peer-left whose sender the server
	// stamped as from (the proven ID of a local member), to the instance holding to. Delivery
	// is asynchronous: a target that turns out to be gone or busy there is reported back to
	// from as a non-fatal error through ClusterHost.Deliver.
	Relay(network, from, to string, frame []byte) error
}

// ClusterHost is the server's side of a Cluster, called from the cluster's own goroutines.
type ClusterHost interface {
	// Deliver queues frame for the local member to of network. from is the proven sender the
	// frame was stamped with on its instance (recorded as a correspondent, for peer-left), or
	// "" for a frame from the server itself (an error about an earlier relay). It returns ""
	// or the code the sender should be told: unknown_target or target_busy.
	Deliver(network, from, to string, frame []byte) signaling.ErrorCode
	// Replace closes, with replaced, the local member id of network that registered at
	// `registered` (and no newer connection of the same ID): another instance admitted a
	// newer connection that proved the same key.
	Replace(network, id string, registered time.Time)
}

// clusterHost is the Server's ClusterHost; a separate type keeps the methods off Server's API.
type clusterHost struct{ s *Server }

func (h clusterHost) Deliver(network, from, to string, frame []byte) signaling.ErrorCode {
	s := h.s
	s.mu.Lock()
	var target *conn
	if n := s.networks[network]; n != nil && !s.closing {
		target = n.members[to]
	}
	if target != nil && from != "" {
		target.corr.add(from)
	}
	s.mu.Unlock()
	if target == nil {
		return signaling.CodeUnknownTarget
	}
	if !target.enqueueRelay(frame) {
		return signaling.CodeTargetBusy
	}
	if from != "" {
		s.relayed.Add(1)
	}
	return ""
}

func (h clusterHost) Replace(network, id string, registered time.Time) {
	s := h.s
	s.mu.Lock()
	var old *conn
	if n := s.networks[network]; n != nil {
		if c := n.members[id]; c != nil && c.registeredAt.Equal(registered) {
			old = c
		}
	}
	s.mu.Unlock()
	if old != nil {
		old.log.Info().Str("id", id).Msg("replaced by a newer connection on another instance that proved the same key")
		old.fatal(signaling.CodeReplaced, fmt.Sprintf("a newer connection proved your identity key (id %s): it is in use elsewhere", id))
	}
}

// networkSizeLocked is the number of members of n on every instance.
func (s *Server) networkSizeLocked(name string, local int) int {
	if s.cfg.Cluster == nil {
		return local
	}
	return local + s.cfg.Cluster.Count(name)
}

// sampleAllLocked returns up to k random member IDs of n other than self, drawn from this
// instance's members and, with a Cluster, every other instance's: how many come from each is
// drawn member by member without replacement (a hypergeometric draw), so every member of the
// network is equally likely to be picked wherever it is connected.
func (s *Server) sampleAllLocked(n *network, k int, self *conn) []string {
	cl := s.cfg.Cluster
	if cl == nil {
		return s.sampleLocked(n, k, self)
	}
	local, remote := len(n.order), cl.Count(n.name)
	if self != nil && self.registered && self.net == n {
		local-- // self is never picked
	}
	fromRemote := 0
	for i := 0; i < k && local+remote > 0; i++ {
		if s.rng.IntN(local+remote) < remote {
			fromRemote++
			remote--
		} else {
			local--
		}
	}
	out := s.sampleLocked(n, k-fromRemote, self)
	if fromRemote > 0 {
		seen := make(map[string]struct{}, len(out))
		for _, id := range out {
			seen[id] = struct{}{}
		}
		for _, id := range cl.Sample(n.name, fromRemote, s.rng) {
			if _, dup := seen[id]; !dup && (self == nil || id != self.id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// relayRemote hands m to the instance that holds to, if another instance does. It reports
// whether to is held elsewhere (the relay is then answered, or refused, here).
func (c *conn) relayRemote(to string, m signaling.Message) bool {
	s := c.srv
	cl := s.cfg.Cluster
	if cl == nil || !cl.Present(c.network, to) {
		return false
	}
	s.mu.Lock()
	ok := c.registered
	if ok {
		c.corr.add(to)
	}
	s.mu.Unlock()
	if !ok {
		return false
	}
	frame, err := signaling.Marshal(m)
	if err != nil {
		c.log.Error().Err(err).Msg("marshal relay")
		return true
	}
	if err := cl.Relay(c.network, c.id, to, frame); err != nil {
		c.log.Debug().Err(err).Str("to", to).Msg("relay to another instance failed")
		c.refuse(signaling.CodeTargetBusy, fmt.Sprintf("%q is on another instance that cannot be reached now; try again later", to), to)
		return true
	}
	s.relayed.Add(1)
	s.clusterRelayed.Add(1)
	return true
}
