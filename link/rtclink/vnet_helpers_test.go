//go:build !js

package rtclink

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/turnserver"
)

// The virtual network of a NAT lab. vnet addresses exist only inside the
// test process: no packet of these tests reaches a real socket.
const (
	vnetWANCIDR    = "1.2.3.0/24"
	vnetServerIP   = "1.2.3.4" // STUN/TURN server on the WAN
	vnetServerPort = 3478
	vnetTURNRealm  = "rtcmesh"
	// vnetTURNSecret is the shared secret of the lab's TURN server; the
	// credentials are minted with turnserver.Credentials, as the signaling
	// server does, and checked by pion's TURN REST handler.
	vnetTURNSecret = "vnet-lab-shared-secret"
)

// vnetLAN describes one home network: the NAT router's address on the WAN,
// its LAN prefix and the address of the one host on it. The two LANs use
// different prefixes so that a host candidate of one LAN can never be
// mistaken for an address on the other: checks to it die at the WAN router.
type vnetLAN struct {
	wanIP  string
	cidr   string
	hostIP string
}

var vnetLANs = [2]vnetLAN{
	{wanIP: "1.2.3.10", cidr: "10.1.0.0/24", hostIP: "10.1.0.2"},
	{wanIP: "1.2.3.20", cidr: "10.2.0.0/24", hostIP: "10.2.0.2"},
}

// NAT behaviours of the matrix (RFC 4787 terms). vnet creates a mapping per
// (local address, bound) where bound depends on MappingBehavior, and admits
// inbound packets on a mapping only from the remotes FilteringBehavior says.
var (
	// natFullCone: endpoint-independent mapping and filtering.
	natFullCone = vnet.NATType{
		MappingBehavior:   vnet.EndpointIndependent,
		FilteringBehavior: vnet.EndpointIndependent,
	}
	// natEasy: endpoint-independent mapping, address-and-port-dependent
	// filtering ("port-restricted cone"), what most home routers do.
	natEasy = vnet.NATType{
		MappingBehavior:   vnet.EndpointIndependent,
		FilteringBehavior: vnet.EndpointAddrPortDependent,
	}
	// natHard: address-and-port-dependent mapping ("symmetric"): a new
	// public port for every destination, so the STUN-learnt port is useless
	// to anyone but the STUN server.
	natHard = vnet.NATType{
		MappingBehavior:   vnet.EndpointAddrPortDependent,
		FilteringBehavior: vnet.EndpointAddrPortDependent,
	}
)

// vnetLab is a WAN router with a STUN/TURN server on it and two LAN routers
// behind NATs, each with one host network for an rtclink Transport.
type vnetLab struct {
	wan   *vnet.Router
	hosts [2]*vnet.Net
	turn  *turn.Server

	mu sync.Mutex
	// allocatedBy counts TURN allocations per user ID (the node ID part of
	// the REST username), proving the minted credentials were accepted.
	allocatedBy map[string]int
}

// newVnetLab builds and starts the lab; it is torn down when the test ends,
// after everything registered later (the transports) has been closed.
//
// build must be held by no one else while a lab is built: vnet.NewRouter and
// vnet.NewNet take MAC addresses from an unsynchronised package counter in
// pion/transport (v5.1.4), so labs built in parallel subtests race. Only
// construction is serialised; the labs then run concurrently.
func newVnetLab(tb testing.TB, build *sync.Mutex, natA, natB vnet.NATType, logger zerolog.Logger) *vnetLab {
	tb.Helper()
	build.Lock()
	defer build.Unlock()
	// vnet calls its LoggerFactory unconditionally: a nil one panics.
	lf := pionLoggerFactory{log: logger.With().Str("lab", "vnet").Logger()}
	lab := &vnetLab{allocatedBy: map[string]int{}}

	wan, err := vnet.NewRouter(&vnet.RouterConfig{Name: "wan", CIDR: vnetWANCIDR, LoggerFactory: lf})
	if err != nil {
		tb.Fatalf("vnet WAN router: %v", err)
	}
	lab.wan = wan
	serverNet, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{vnetServerIP}})
	if err != nil {
		tb.Fatalf("vnet server net: %v", err)
	}
	if err := wan.AddNet(serverNet); err != nil {
		tb.Fatalf("vnet add server net: %v", err)
	}
	for i, nat := range []vnet.NATType{natA, natB} {
		lan := vnetLANs[i]
		nat := nat // the router keeps the pointer
		r, err := vnet.NewRouter(&vnet.RouterConfig{
			Name:          "lan" + strconv.Itoa(i),
			CIDR:          lan.cidr,
			StaticIPs:     []string{lan.wanIP},
			NATType:       &nat,
			LoggerFactory: lf,
		})
		if err != nil {
			tb.Fatalf("vnet LAN %d router: %v", i, err)
		}
		host, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{lan.hostIP}})
		if err != nil {
			tb.Fatalf("vnet LAN %d host: %v", i, err)
		}
		if err := r.AddNet(host); err != nil {
			tb.Fatalf("vnet LAN %d add host: %v", i, err)
		}
		if err := wan.AddRouter(r); err != nil {
			tb.Fatalf("vnet LAN %d add router: %v", i, err)
		}
		lab.hosts[i] = host
	}
	// Start on the root starts every child router too.
	if err := wan.Start(); err != nil {
		tb.Fatalf("vnet start: %v", err)
	}
	tb.Cleanup(func() {
		if err := wan.Stop(); err != nil {
			tb.Errorf("vnet stop: %v", err)
		}
	})

	pc, err := serverNet.ListenPacket("udp4", net.JoinHostPort(vnetServerIP, strconv.Itoa(vnetServerPort)))
	if err != nil {
		tb.Fatalf("vnet TURN listen: %v", err)
	}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:         vnetTURNRealm,
		AuthHandler:   turn.LongTermTURNRESTAuthHandler(vnetTURNSecret, lf.NewLogger("turn")),
		LoggerFactory: lf,
		EventHandler: turn.EventHandler{
			OnAllocationCreated: func(_, _ net.Addr, _, userID, _ string, _ net.Addr, _ int) {
				lab.mu.Lock()
				lab.allocatedBy[userID]++
				lab.mu.Unlock()
			},
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: pc,
			// Relay sockets live on the same virtual host as the server.
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: net.ParseIP(vnetServerIP),
				Address:      vnetServerIP,
				Net:          serverNet,
			},
		}},
	})
	if err != nil {
		_ = pc.Close()
		tb.Fatalf("vnet TURN server: %v", err)
	}
	lab.turn = srv
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Errorf("vnet TURN close: %v", err)
		}
	})
	return lab
}

// allocations returns how many TURN allocations user nodeID made.
func (l *vnetLab) allocations(nodeID string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.allocatedBy[nodeID]
}

// vnetSettings makes pion gather and connect on host only: UDP over IPv4
// (vnet has no IPv6 and we do not test TCP candidates), no mDNS (vnet has
// no multicast).
func vnetSettings(host *vnet.Net) *webrtc.SettingEngine {
	se := &webrtc.SettingEngine{}
	se.SetNet(host)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return se
}

// vnetICEServers returns the lab server as STUN and, if withTURN, as TURN
// with fresh ephemeral credentials for nodeID, as a signaling welcome would.
func vnetICEServers(nodeID string, withTURN bool) []ICEServer {
	hostPort := fmt.Sprintf("%s:%d", vnetServerIP, vnetServerPort)
	servers := []ICEServer{{URLs: []string{"stun:" + hostPort}}}
	if withTURN {
		user, pass := turnserver.Credentials(vnetTURNSecret, nodeID, time.Hour, time.Now())
		servers = append(servers, ICEServer{
			URLs:       []string{"turn:" + hostPort + "?transport=udp"},
			Username:   user,
			Credential: pass,
		})
	}
	return servers
}

// newVnetNode starts a Transport on a lab host, registered in h. mod, if
// set, adjusts the config after the vnet settings are in place.
func newVnetNode(tb testing.TB, h *hub, host *vnet.Net, withTURN bool, mod func(*Config)) *node {
	tb.Helper()
	return newNode(tb, h, func(c *Config) {
		c.MDNS = MDNSDisabled
		c.SettingEngine = vnetSettings(host)
		// A hand-made engine: the Transport cannot see its vnet, so it keeps a socket per
		// link (in the vnet) rather than open a shared one on the real network.
		c.UDPSocket.Networks = nil
		c.ICEServers = vnetICEServers(c.Key.ID(), withTURN)
		if mod != nil {
			mod(c)
		}
	})
}
