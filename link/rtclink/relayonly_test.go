//go:build !js

package rtclink

import (
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/link"
	"github.com/rtcmesh/rtcmesh/turnserver"
)

// loopbackRelay starts the bundled TURN relay on 127.0.0.1, allowed to relay to loopback (its
// default deny-list refuses it), and returns ICE servers with fresh credentials for nodeID.
func loopbackRelay(tb testing.TB) (*turnserver.Server, func(nodeID string) []ICEServer) {
	tb.Helper()
	cfg := turnserver.DefaultConfig()
	cfg.ListenUDP, cfg.ListenTCP = "127.0.0.1:0", ""
	cfg.PublicIP = netip.MustParseAddr("127.0.0.1")
	cfg.RelayBindIP = cfg.PublicIP
	cfg.RelayPortMin, cfg.RelayPortMax = 0, 0
	cfg.Secret = "relay-only-test-secret-0123456789"
	cfg.AllowedPeers = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.WarnLevel)
	srv, err := turnserver.New(cfg)
	if err != nil {
		tb.Fatalf("TURN relay: %v", err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	return srv, func(nodeID string) []ICEServer {
		user, pass := srv.Credentials(nodeID)
		return []ICEServer{{URLs: srv.URLs(""), Username: user, Credential: pass}}
	}
}

// TestRelayOnly dials from a RelayOnly transport to an ordinary one on loopback, where a direct
// path is available: the link must go through the relay, both ends must report it, frames must
// flow, and the RelayOnly end must never signal a candidate other than its relayed address, nor
// its own address as a relay candidate's related address.
func TestRelayOnly(t *testing.T) {
	srv, servers := loopbackRelay(t)
	h := newHub(t)
	var mu sync.Mutex
	var hidden, open []string // candidates signalled by the RelayOnly end, by the other end
	var hiddenID string
	h.munge = func(from, _ string, s *Signal) {
		var lines []string
		switch s.Type {
		case SignalCandidate:
			lines = []string{s.Candidate}
		default:
			for _, l := range strings.Split(s.SDP, "\n") {
				if strings.HasPrefix(l, "a=candidate:") {
					lines = append(lines, l)
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if from == hiddenID {
			hidden = append(hidden, lines...)
		} else {
			open = append(open, lines...)
		}
	}
	a := newNode(t, h, func(c *Config) {
		c.RelayOnly = true
		c.ICEServers = servers(c.Key.ID())
		mu.Lock()
		hiddenID = c.Key.ID()
		mu.Unlock()
	})
	b := newNode(t, h, func(c *Config) { c.ICEServers = servers(c.Key.ID()) })

	a.Dial(b.ID())
	upA := a.rec.waitEvent(t, link.LinkUp, b.ID())
	upB := b.rec.waitEvent(t, link.LinkUp, a.ID())
	if upA.Path != link.PathRelay || upB.Path != link.PathRelay {
		t.Errorf("paths %q (RelayOnly end) / %q, want relay on both", upA.Path, upB.Path)
	}
	if err := a.Send(b.ID(), []byte("through the relay")); err != nil {
		t.Fatal(err)
	}
	b.rec.waitUntil(t, "frame at b", func(evs []link.Event) bool { return len(frames(evs, a.ID())) == 1 })
	if st := srv.Stats(); st.AllocationsTotal == 0 || st.PacketsToPeers == 0 {
		t.Errorf("relay stats %+v: want an allocation and relayed packets", st)
	}

	mu.Lock()
	defer mu.Unlock()
	candidates := 0
	for _, c := range hidden {
		if strings.TrimSpace(c) == "" {
			continue // end-of-candidates
		}
		candidates++
		if !strings.Contains(c, " typ relay") {
			t.Errorf("RelayOnly transport signalled a non-relay candidate: %s", c)
		}
		// The related address would be the socket the relay was allocated from: the host's
		// own address.
		if strings.Contains(c, " raddr ") && !strings.Contains(c, " raddr 0.0.0.0 ") {
			t.Errorf("RelayOnly transport signalled its own address as related address: %s", c)
		}
	}
	if candidates == 0 {
		t.Error("RelayOnly transport signalled no candidate at all")
	}
	direct := 0
	for _, c := range open {
		if strings.Contains(c, " typ host") {
			direct++
		}
	}
	if direct == 0 {
		t.Errorf("the ordinary end signalled no host candidate, so the test shows nothing: %q", open)
	}
}
