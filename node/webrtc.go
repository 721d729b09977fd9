package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link/rtclink"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalclient"
)

// WebRTCConfig configures a node that meets its peers through a signaling server and links
// to them with WebRTC data channels: the way rtcmesh runs for real.
type WebRTCConfig struct {
	// Node configures the runtime; Transport, ID, Contacts and NeedContacts are filled in.
	Node Config
	// Identity is the node's certificate; the node's ID is derived from it. Required.
	Identity *identity.Identity
	// Signal configures the signaling client; ID is filled in, URL and Network are required.
	Signal signalclient.Config
	// Link configures the WebRTC links; Identity and Signaler are filled in, and the ICE
	// servers are replaced by those of every welcome.
	Link rtclink.Config
	// PeersPerRequest is how many live peers the node asks the signaling server for when it is
	// isolated and out of contacts.
	PeersPerRequest int
}

// DefaultWebRTCConfig returns the WAN profile for a node with identity id joining network
// through the signaling server at url (ws://host:port/ws).
func DefaultWebRTCConfig(id *identity.Identity, url, network string) WebRTCConfig {
	var sid string
	if id != nil {
		sid = id.ID()
	}
	return WebRTCConfig{
		Node:            DefaultConfig(),
		Identity:        id,
		Signal:          signalclient.DefaultConfig(url, sid, network),
		Link:            rtclink.DefaultConfig(id, nil),
		PeersPerRequest: 8,
	}
}

// WebRTCNode is a Node whose links are WebRTC data channels, plus its signaling client. The
// overlay does not need the signaling server once the node has neighbours: while the server is
// away the node keeps broadcasting, and the client reconnects on its own.
type WebRTCNode struct {
	*Node
	signal    *signalclient.Client
	transport *rtclink.Transport
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// StartWebRTC starts a node: the signaling client connects (and keeps reconnecting), the
// welcome's ICE servers configure the links and its contacts are joined through.
func StartWebRTC(cfg WebRTCConfig) (*WebRTCNode, error) {
	if cfg.Identity == nil {
		return nil, errors.New("node: WebRTCConfig.Identity is required")
	}
	if cfg.PeersPerRequest < 1 {
		return nil, fmt.Errorf("node: PeersPerRequest %d must be at least 1", cfg.PeersPerRequest)
	}
	id := cfg.Identity.ID()
	cfg.Signal.ID = id
	sc, err := signalclient.New(cfg.Signal)
	if err != nil {
		return nil, fmt.Errorf("node: signaling client: %w", err)
	}
	cfg.Link.Identity, cfg.Link.Signaler = cfg.Identity, signaler{sc}
	tr, err := rtclink.New(cfg.Link)
	if err != nil {
		return nil, fmt.Errorf("node: links: %w", err)
	}
	w := &WebRTCNode{signal: sc, transport: tr}
	nc := cfg.Node
	nc.Transport, nc.ID, nc.Contacts = tr, id, nil
	logger := nc.Logger
	nc.NeedContacts = func() {
		if err := sc.RequestPeers(cfg.PeersPerRequest); err != nil {
			logger.Debug().Err(err).Msg("asking the signaling server for peers")
		}
	}
	n, err := New(nc)
	if err != nil {
		tr.Close()
		return nil, err
	}
	w.Node = n
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Add(2)
	go func() {
		defer w.wg.Done()
		if err := sc.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error().Err(err).Msg("signaling client stopped")
		}
	}()
	go func() {
		defer w.wg.Done()
		w.pumpSignals(nc.Seed)
	}()
	return w, nil
}

// pumpSignals hands what the signaling server sends to the links and the runtime.
func (w *WebRTCNode) pumpSignals(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	log := w.cfg.Logger
	for ev := range w.signal.Events() {
		switch m := ev.Message.(type) {
		case *signaling.Welcome:
			servers := make([]rtclink.ICEServer, 0, len(m.ICEServers))
			for _, s := range m.ICEServers {
				servers = append(servers, rtclink.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
			}
			w.transport.SetICEServers(servers)
			log.Info().Int("contacts", len(m.Contacts)).Int("ice_servers", len(servers)).Msg("welcomed by the signaling server")
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
		case *signaling.Offer:
			w.transport.HandleSignal(m.From, rtclink.Signal{Type: rtclink.SignalOffer, SDP: m.SDP})
		case *signaling.Answer:
			w.transport.HandleSignal(m.From, rtclink.Signal{Type: rtclink.SignalAnswer, SDP: m.SDP})
		case *signaling.Candidate:
			w.transport.HandleSignal(m.From, rtclink.Signal{Type: rtclink.SignalCandidate, Candidate: m.Candidate})
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

func (w *WebRTCNode) joinAny(ids []string, rng *rand.Rand) {
	contact := ids[rng.IntN(len(ids))]
	if err := w.Join(contact); err != nil && !errors.Is(err, ErrClosed) {
		w.cfg.Logger.Warn().Err(err).Str("contact", contact).Msg("join")
	}
}

// SignalingConnected reports whether the node is connected to the signaling server now.
func (w *WebRTCNode) SignalingConnected() bool { return w.signal.Connected() }

// Close leaves the overlay gracefully, closes every link and disconnects from the signaling
// server.
func (w *WebRTCNode) Close() error {
	err := w.Node.Close()
	w.cancel()
	w.wg.Wait()
	return err
}

// signaler sends the links' signals through the signaling client.
type signaler struct{ c *signalclient.Client }

func (s signaler) SendSignal(to string, sig rtclink.Signal) error {
	switch sig.Type {
	case rtclink.SignalOffer:
		return s.c.SendOffer(to, sig.SDP)
	case rtclink.SignalAnswer:
		return s.c.SendAnswer(to, sig.SDP)
	case rtclink.SignalCandidate:
		return s.c.SendCandidate(to, sig.Candidate)
	}
	return fmt.Errorf("node: unknown signal type %q", sig.Type)
}
