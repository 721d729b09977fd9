//go:build !js

package rtclink

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/rtcmesh/rtcmesh/link"
)

// localPorts returns the local UDP port of the selected candidate pair of each of t's links.
func localPorts(tb testing.TB, t *Transport) map[string]int {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for peer, c := range t.links {
		pc, ok := c.channel.(*pionConn)
		if !ok {
			tb.Fatalf("link to %s: no open pion connection", peer)
		}
		pair, err := pc.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			tb.Fatalf("link to %s: no selected candidate pair: %v", peer, err)
		}
		out[peer] = int(pair.Local.Port)
	}
	return out
}

// TestSharedUDPSocketCarriesLinks: with the default UDPSocket.Shared, all of a Transport's
// links run over its one socket (one port for every link), and frames flow on each; with it
// off, each link has a port of its own.
func TestSharedUDPSocketCarriesLinks(t *testing.T) {
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			h := newHub(t)
			hubNode := newNode(t, h, func(c *Config) { c.UDPSocket.Shared = shared })
			const peers = 4
			var others []*node
			for range peers {
				o := newNode(t, h, nil)
				others = append(others, o)
				hubNode.Dial(o.ID())
			}
			for _, o := range others {
				hubNode.rec.waitEvent(t, link.LinkUp, o.ID())
				o.rec.waitEvent(t, link.LinkUp, hubNode.ID())
				if err := o.Send(hubNode.ID(), []byte("hello from "+o.ID())); err != nil {
					t.Fatal(err)
				}
			}
			for _, o := range others {
				want := "hello from " + o.ID()
				hubNode.rec.waitUntil(t, want, func(evs []link.Event) bool {
					f := frames(evs, o.ID())
					return len(f) == 1 && string(f[0]) == want
				})
			}
			ports := map[int]bool{}
			for _, p := range localPorts(t, hubNode.Transport) {
				ports[p] = true
			}
			st := hubNode.stack.(*pionStack)
			switch {
			case shared && len(ports) != 1:
				t.Errorf("shared socket: the %d links use %d local ports, want 1", peers, len(ports))
			case shared:
				var muxPorts []int
				for _, a := range st.ownMux.addrs() {
					muxPorts = append(muxPorts, a.(*net.UDPAddr).Port)
				}
				for p := range ports {
					if len(muxPorts) != 1 || muxPorts[0] != p {
						t.Errorf("links use port %d, the shared socket listens on %v", p, muxPorts)
					}
				}
			case !shared && len(ports) != peers:
				t.Errorf("a socket per link: the %d links use %d local ports, want %d", peers, len(ports), peers)
			case !shared && st.ownMux != nil:
				t.Error("UDPSocket.Shared false, yet the Transport opened a shared socket")
			}
		})
	}
}

// TestSharedUDPSocketNeedsKnownNetworks: a SettingEngine set by hand (here a bare one) cannot
// be inspected, so its Transport keeps a socket per link rather than listen where the engine
// may not allow; SetICENetworks, which names the networks, gets the shared socket inside them.
func TestSharedUDPSocketNeedsKnownNetworks(t *testing.T) {
	h := newHub(t)
	byHand := newNode(t, h, func(c *Config) {
		c.SettingEngine = &webrtc.SettingEngine{}
		c.UDPSocket.Networks = nil
	})
	if byHand.stack.(*pionStack).ownMux != nil {
		t.Error("a hand-made SettingEngine got a shared socket")
	}
	named := newNode(t, h, nil) // testConfig: SetICENetworks(127.0.0.0/8)
	mux := named.stack.(*pionStack).ownMux
	if mux == nil {
		t.Fatal("SetICENetworks: no shared socket")
	}
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	for _, a := range mux.addrs() {
		ip, _ := netip.AddrFromSlice(a.(*net.UDPAddr).IP)
		if !loopback.Contains(ip.Unmap()) {
			t.Errorf("shared socket on %v, outside %v", a, loopback)
		}
	}
}
