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

// TestSharedUDPSocketCarriesLinks: with the default UDPSocket.Shared, every link a Transport
// answers runs over its one shared socket (one local port for all of them, the socket's), and
// frames flow on each; the links it offers have sockets of their own (see newPeerConn), and so
// do all links with it off.
func TestSharedUDPSocketCarriesLinks(t *testing.T) {
	for _, tc := range []struct {
		shared, hubDials bool
		wantPorts        int // distinct local ports of the hub's 4 links
	}{
		{shared: true, hubDials: false, wantPorts: 1},
		{shared: true, hubDials: true, wantPorts: 4},
		{shared: false, hubDials: false, wantPorts: 4},
	} {
		t.Run(fmt.Sprintf("shared=%v,hub_dials=%v", tc.shared, tc.hubDials), func(t *testing.T) {
			h := newHub(t)
			hubNode := newNode(t, h, func(c *Config) { c.UDPSocket.Shared = tc.shared })
			const peers = 4
			var others []*node
			for range peers {
				o := newNode(t, h, nil)
				others = append(others, o)
				if tc.hubDials {
					hubNode.Dial(o.ID())
				} else {
					o.Dial(hubNode.ID())
				}
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
			if len(ports) != tc.wantPorts {
				t.Errorf("the %d links use %d local ports, want %d", peers, len(ports), tc.wantPorts)
			}
			st := hubNode.stack.(*pionStack)
			switch {
			case !tc.shared && st.ownMux != nil:
				t.Error("UDPSocket.Shared false, yet the Transport opened a shared socket")
			case tc.shared && !tc.hubDials:
				var muxPorts []int
				for _, a := range st.ownMux.addrs() {
					muxPorts = append(muxPorts, a.(*net.UDPAddr).Port)
				}
				for p := range ports {
					if len(muxPorts) != 1 || muxPorts[0] != p {
						t.Errorf("links use port %d, the shared socket listens on %v", p, muxPorts)
					}
				}
			}
		})
	}
}

// TestSharedUDPSocketTwoLinksOnePair: a link closed by one end and dialled again at once by
// that end (so the closing connection and the new one, offered the other way round, coexist
// for a while between two shared sockets) comes up and carries frames. (Glare, both ends
// offering at once, is TestGlareLeavesOneLink, which runs with the shared socket too.)
func TestSharedUDPSocketTwoLinksOnePair(t *testing.T) {
	h := newHub(t)
	a, b := newNode(t, h, nil), newNode(t, h, nil)
	a.Dial(b.ID())
	a.rec.waitEvent(t, link.LinkUp, b.ID())
	b.rec.waitEvent(t, link.LinkUp, a.ID())
	// b redials: its offer reaches a while the first link is live, and becomes its successor.
	b.Transport.mu.Lock()
	old := b.Transport.links[a.ID()]
	b.Transport.mu.Unlock()
	b.closeConn(old, "test: redial")
	b.Dial(a.ID())
	waitCond(t, "a new link between a and b", func() bool {
		evs := a.rec.snapshot()
		return count(evs, link.LinkUp, b.ID()) >= 2 || (count(evs, link.LinkDown, b.ID()) >= 1 && count(evs, link.LinkUp, b.ID()) >= 2)
	})
	b.rec.waitUntil(t, "b's second LinkUp", func(evs []link.Event) bool { return count(evs, link.LinkUp, a.ID()) >= 2 })
	for i := range 20 {
		if err := b.Send(a.ID(), []byte(fmt.Sprintf("frame %d", i))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	a.rec.waitUntil(t, "20 frames on the new link", func(evs []link.Event) bool { return len(frames(evs, b.ID())) >= 20 })
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
