// Package rtcnode runs an rtcmesh node the way it runs for real: the node runtime (package
// node) over WebRTC links (link/rtclink), meeting its peers through a signaling server
// (signaling/signalclient). One identity key proves the node's ID everywhere it is claimed:
// to the signaling server (its hello), to every link peer (the link proof) and to every
// receiver of its broadcasts (their signature).
//
// It is the one place that wires those packages together, for the rtcmesh binary, the demo
// and the browser peer alike; package node itself knows nothing of WebRTC or signaling.
package rtcnode

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link/rtclink"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalclient"
)

// Config configures a node that meets its peers through a signaling server and links to them
// with WebRTC data channels.
type Config struct {
	// Node configures the runtime; Key, Transport, Contacts and NeedContacts are filled in.
	Node node.Config
	// Key is the node's identity key; the node's ID is its hash. Required.
	Key identity.Signer
	// Signal configures the signaling client; Key is filled in, URL and Network are required.
	Signal signalclient.Config
	// Link configures the WebRTC links; Key and Signaler are filled in, and the ICE servers
	// are replaced by those of every welcome.
	Link rtclink.Config
	// PeersPerRequest is how many live peers the node asks the signaling server for when it is
	// isolated and out of contacts.
	PeersPerRequest int
}

// DefaultConfig returns the WAN profile for a node with identity key joining network through
// the signaling server at url (ws://host:port/ws).
func DefaultConfig(key identity.Signer, url, network string) Config {
	return Config{
		Node:            node.DefaultConfig(),
		Key:             key,
		Signal:          signalclient.DefaultConfig(url, key, network),
		Link:            rtclink.DefaultConfig(key, nil),
		PeersPerRequest: 8,
	}
}

// Node is a node.Node whose links are WebRTC data channels, plus its signaling client. The
// overlay does not need the signaling server once the node has neighbours: while the server is
// away the node keeps broadcasting, and the client reconnects on its own.
type Node struct {
	*node.Node
	signal    *signalclient.Client
	signaler  *signaler
	transport *rtclink.Transport
	log       zerolog.Logger
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// Start starts a node: the signaling client connects (and keeps reconnecting), the welcome's
// ICE servers configure the links and its contacts are joined through.
func Start(cfg Config) (*Node, error) {
	if cfg.Key == nil {
		return nil, errors.New("rtcnode: Config.Key is required: the identity key proves the node's ID")
	}
	if cfg.PeersPerRequest < 1 {
		return nil, fmt.Errorf("rtcnode: PeersPerRequest %d must be at least 1", cfg.PeersPerRequest)
	}
	// Peers that require work (Link.PowBits: this node requires it of them, so it must
	// have it too) see it in this node's first link proof. The search runs once per key:
	// a key file keeps the nonce. A server that asks for more gets it before the hello.
	if cfg.Link.PowBits > 0 {
		if _, err := identity.EnsureWork(context.Background(), cfg.Key, cfg.Link.PowBits); err != nil {
			return nil, fmt.Errorf("rtcnode: proof of work for Link.PowBits: %w", err)
		}
	}
	cfg.Signal.Key = cfg.Key
	sc, err := signalclient.New(cfg.Signal)
	if err != nil {
		return nil, fmt.Errorf("rtcnode: signaling client: %w", err)
	}
	sig := newSignaler(sc, cfg.Node.Logger)
	cfg.Link.Key, cfg.Link.Signaler = cfg.Key, sig
	tr, err := rtclink.New(cfg.Link)
	if err != nil {
		return nil, fmt.Errorf("rtcnode: links: %w", err)
	}
	w := &Node{signal: sc, signaler: sig, transport: tr, log: cfg.Node.Logger}
	nc := cfg.Node
	nc.Key, nc.Transport, nc.Contacts = cfg.Key, tr, nil
	// Routed envelopes sign the network, so that none is replayed into another.
	nc.Network = cfg.Signal.Network
	nc.NeedContacts = func() {
		if err := sc.RequestPeers(cfg.PeersPerRequest); err != nil {
			w.log.Debug().Err(err).Msg("asking the signaling server for peers")
		}
	}
	n, err := node.New(nc)
	if err != nil {
		tr.Close()
		return nil, err
	}
	w.Node = n
	sig.node.Store(n)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Add(3)
	go func() {
		defer w.wg.Done()
		w.pumpRoutedSignals()
	}()
	go func() {
		defer w.wg.Done()
		if err := sc.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			w.log.Error().Err(err).Msg("signaling client stopped")
		}
	}()
	go func() {
		defer w.wg.Done()
		w.pumpSignals(nc.Seed)
	}()
	return w, nil
}

// pumpSignals hands what the signaling server sends to the links and the runtime.
func (w *Node) pumpSignals(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	log := w.log
	for ev := range w.signal.Events() {
		switch m := ev.Message.(type) {
		case *signaling.Welcome:
			servers := make([]rtclink.ICEServer, 0, len(m.ICEServers))
			for _, s := range m.ICEServers {
				servers = append(servers, rtclink.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
			}
			w.transport.SetICEServers(servers)
			// Peers must have done the work the server asked of everyone (this node did), so a
			// Sybil that came in by another way gets no link either; never lowered.
			w.transport.RequireWork(m.PowBits)
			log.Info().Int("contacts", len(m.Contacts)).Int("ice_servers", len(servers)).Int("pow_bits", m.PowBits).Msg("welcomed by the signaling server")
			// After a reconnect the node usually has neighbours already: the overlay does
			// not need the server.
			if len(m.Contacts) > 0 && len(w.Neighbors()) == 0 {
				w.joinAny(m.Contacts, rng)
			}
		case *signaling.PeerList:
			// Asked for by NeedContacts: join through a peer that is not a neighbour yet.
			current := map[string]bool{w.ID(): true}
			for _, nb := range w.Neighbors() {
				current[nb.ID] = true
			}
			var fresh []string
			for _, p := range m.Peers {
				if !current[p] {
					fresh = append(fresh, p)
				}
			}
			if len(fresh) > 0 {
				w.joinAny(fresh, rng)
			}
		case *signaling.Offer, *signaling.Answer, *signaling.Candidate:
			HandleServerSignal(w.transport, ev.Message)
		case *signaling.Error:
			log.Warn().Str("code", string(m.Code)).Str("message", m.Message).Msg("signaling server error")
		}
		switch {
		case ev.Disconnected == nil:
		case errors.Is(ev.Disconnected, context.Canceled):
			log.Debug().Msg("disconnected from the signaling server")
		default:
			log.Warn().Err(ev.Disconnected).Msg("signaling server connection lost; the overlay carries on")
		}
	}
}

func (w *Node) joinAny(ids []string, rng *rand.Rand) {
	contact := ids[rng.IntN(len(ids))]
	if err := w.Join(contact); err != nil && !errors.Is(err, node.ErrClosed) {
		w.log.Warn().Err(err).Str("contact", contact).Msg("join")
	}
}

// LinkProofsRefused returns how many links were closed for a bad link proof and for a peer
// key without enough proof of work, and the difficulty now required of peers (metrics'
// LinkProofSource).
func (w *Node) LinkProofsRefused() (badProof, insufficientWork uint64, powBits int) {
	st := w.transport.Stats()
	return st.ProofsRefused, st.WorkRefused, st.PowBits
}

// SignalingConnected reports whether the node is connected to the signaling server now.
func (w *Node) SignalingConnected() bool { return w.signal.Connected() }

// Close leaves the overlay gracefully, closes every link and disconnects from the signaling
// server.
func (w *Node) Close() error {
	err := w.Node.Close()
	w.cancel()
	w.wg.Wait()
	return err
}

// Signaler returns the rtclink.Signaler that carries a Transport's offers, answers and
// candidates through the signaling client c alone (a Transport without a node, such as a
// test's raw peer; Start's links also use the overlay, see signal.go).
func Signaler(c *signalclient.Client) rtclink.Signaler { return newSignaler(c, zerolog.Nop()) }
