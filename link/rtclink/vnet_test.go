//go:build !js

package rtclink

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/transport/v5/vnet"
	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/link"
)

// vnetOutcome is what a NAT matrix case expects of a dial.
type vnetOutcome int

const (
	// vnetDirect: the link opens without the relay, through the NATs'
	// mappings: srflx or prflx. pion gathers each srflx candidate on a socket
	// of its own, so checks from a host socket leave through another mapping
	// and the peer learns it as prflx; on vnet that pair wins every time.
	// Never host: neither LAN can reach the other's private addresses.
	vnetDirect vnetOutcome = iota
	// vnetRelayed: the link opens through the TURN relay.
	vnetRelayed
	// vnetAnyPath: the link opens; any path is acceptable (logged).
	vnetAnyPath
	// vnetFails: the dial ends in LinkDown (dial timeout or ICE failure).
	vnetFails
)

// TestVnetNATTraversal dials between two hosts behind NATs of various
// behaviours on pion's virtual network, with the lab's STUN/TURN server on
// the WAN, and checks the path chosen and that frames flow both ways.
func TestVnetNATTraversal(t *testing.T) {
	cases := []vnetCase{
		{"FullConeToFullCone", natFullCone, natFullCone, true, vnetDirect},
		{"EasyToEasy", natEasy, natEasy, true, vnetDirect},
		{"HardToHard", natHard, natHard, true, vnetRelayed},
		{"EasyToHard", natEasy, natHard, true, vnetAnyPath},
		{"HardToHardWithoutTURN", natHard, natHard, false, vnetFails},
	}
	before := runtime.NumGoroutine()
	// The group returns when every parallel case has finished and cleaned up.
	t.Run("Matrix", func(t *testing.T) { vnetMatrix(t, cases) })
	// Transports, TURN server and routers leave nothing running.
	start := time.Now()
	waitCond(t, "goroutines to return to baseline", func() bool { return runtime.NumGoroutine() <= before })
	t.Logf("goroutines back to %d within %v", before, time.Since(start).Round(time.Millisecond))
}

// vnetCase is one cell of the NAT matrix: node a behind natA dials node b
// behind natB; withTURN gives both the lab server as TURN as well as STUN.
type vnetCase struct {
	name       string
	natA, natB vnet.NATType
	withTURN   bool
	want       vnetOutcome
}

func vnetMatrix(t *testing.T, cases []vnetCase) {
	var build sync.Mutex // see newVnetLab
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Each case has its own virtual network, server and hub, and
			// nothing in them depends on the other cases.
			t.Parallel()
			labLog := &syncBuffer{}
			lab := newVnetLab(t, &build, tc.natA, tc.natB, zerolog.New(labLog).Level(zerolog.DebugLevel))
			h := newHub(t)
			mod := func(c *Config) {
				if tc.want == vnetFails {
					// ICE gives up after disconnected+failed timeouts of
					// checking without success; the dial timeout backs it.
					c.ICEDisconnectedTimeout = time.Second
					c.ICEFailedTimeout = 2 * time.Second
					c.DialTimeout = 5 * time.Second
				}
			}
			a := newVnetNode(t, h, lab.hosts[0], tc.withTURN, mod)
			b := newVnetNode(t, h, lab.hosts[1], tc.withTURN, mod)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("lab log:\n%s\nnode a log:\n%s\nnode b log:\n%s", labLog, a.log, b.log)
				}
			})

			start := time.Now()
			a.Dial(b.ID())
			if tc.want == vnetFails {
				evs := a.rec.waitUntil(t, "dial result", func(evs []link.Event) bool {
					return count(evs, link.LinkUp, b.ID())+count(evs, link.LinkDown, b.ID()) > 0
				})
				if count(evs, link.LinkUp, b.ID()) > 0 {
					t.Fatalf("link opened between symmetric NATs without TURN; events: %v", evs)
				}
				down := a.rec.waitEvent(t, link.LinkDown, b.ID())
				if down.Reason != link.ReasonDialTimeout && !strings.HasPrefix(down.Reason, link.ReasonConnectionFailed) {
					t.Fatalf("LinkDown reason %q, want %q or %q", down.Reason, link.ReasonDialTimeout, link.ReasonConnectionFailed)
				}
				if lab.allocations(a.ID())+lab.allocations(b.ID()) != 0 {
					t.Fatal("TURN allocations made although no TURN server was configured")
				}
				if n := count(b.rec.snapshot(), link.LinkUp, a.ID()); n != 0 {
					t.Fatalf("acceptor reported %d LinkUp for a failed dial", n)
				}
				t.Logf("dial failed after %v: %s", time.Since(start).Round(time.Millisecond), down.Reason)
				return
			}

			upA := a.rec.waitEvent(t, link.LinkUp, b.ID())
			upB := b.rec.waitEvent(t, link.LinkUp, a.ID())
			t.Logf("link up after %v: path %s at dialer, %s at acceptor",
				time.Since(start).Round(time.Millisecond), upA.Path, upB.Path)
			for _, p := range []link.Path{upA.Path, upB.Path} {
				switch tc.want {
				case vnetDirect:
					if p != link.PathSrflx && p != link.PathPrflx {
						t.Fatalf("path %q, want a direct one through the NATs (srflx or prflx)", p)
					}
				case vnetRelayed:
					if p != link.PathRelay {
						t.Fatalf("path %q, want relay", p)
					}
				case vnetAnyPath:
					if p != link.PathHost && p != link.PathSrflx && p != link.PathPrflx && p != link.PathRelay {
						t.Fatalf("path %q is not a valid path", p)
					}
				}
			}
			// Both nodes allocated on the lab's TURN server with the
			// credentials minted by turnserver.Credentials: the server's
			// TURN REST handler accepted them and took the node ID as user.
			for _, n := range []*node{a, b} {
				if lab.allocations(n.ID()) == 0 {
					t.Fatalf("node %s made no TURN allocation", short(n.ID()))
				}
			}

			// Frames both ways, sizes across the virtual MTU (1500): SCTP
			// fragments the large ones.
			const nFrames = 40
			size := func(i int) int { return []int{8, 700, 1400, 4 << 10, 16 << 10}[i%5] }
			sendAll(t, a, b.ID(), nFrames, size)
			sendAll(t, b, a.ID(), nFrames, size)
			vnetWaitFrames(t, b, a.ID(), nFrames)
			vnetWaitFrames(t, a, b.ID(), nFrames)
			checkInOrder(t, frames(b.rec.snapshot(), a.ID()), nFrames, size)
			checkInOrder(t, frames(a.rec.snapshot(), b.ID()), nFrames, size)

			// An orderly close reaches the peer across the NATs.
			a.CloseLink(b.ID(), "matrix case done")
			if down := b.rec.waitEvent(t, link.LinkDown, a.ID()); !strings.HasPrefix(down.Reason, link.ReasonClosedByPeer) {
				t.Fatalf("acceptor LinkDown reason %q, want %q", down.Reason, link.ReasonClosedByPeer)
			}
		})
	}
}

// vnetWaitFrames waits until n has received want frames from peer.
func vnetWaitFrames(tb testing.TB, n *node, peer string, want int) {
	tb.Helper()
	n.rec.waitUntil(tb, "frames from "+short(peer), func(evs []link.Event) bool {
		return len(frames(evs, peer)) >= want
	})
}
