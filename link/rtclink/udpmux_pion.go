//go:build !js

package rtclink

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/pion/ice/v4"
	"github.com/rs/zerolog"
)

// udpMux is a set of UDP sockets, one per local address and all on one port, that carries the
// ICE traffic of all the links of one Transport (pion's ICE UDP mux): a connection's first
// packets are told apart by its ICE username fragment, the rest by the peer's address. A link
// otherwise opens a socket of its own for each local address, and each socket costs a file
// descriptor and a reading goroutine.
//
// It is not shared between Transports: two ICE agents on one socket cannot reach each other,
// because the mux would see both as the same remote address (tried with many nodes in one
// process: their links never formed).
type udpMux struct {
	mux *ice.MultiUDPMuxDefault
}

// newUDPMux opens the sockets: one per address of every interface that is up, inside networks
// (nil: every address except loopback; a loopback network must be listed to be included), all
// on port (0: a free port chosen per address).
func newUDPMux(port int, networks []netip.Prefix, log zerolog.Logger) (*udpMux, error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("rtclink: UDP port %d out of range", port)
	}
	opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithLogger(pionLoggerFactory{log: log}.NewLogger("udpmux"))}
	if networks != nil {
		inside := insideNetworks(networks)
		opts = append(opts, ice.UDPMuxFromPortWithIPFilter(inside))
		for _, p := range networks {
			if p.Addr().IsLoopback() {
				opts = append(opts, ice.UDPMuxFromPortWithLoopback())
				break
			}
		}
	}
	m, err := ice.NewMultiUDPMuxFromPort(port, opts...)
	if err != nil {
		return nil, fmt.Errorf("rtclink: shared UDP socket on port %d: %w", port, err)
	}
	if len(m.GetListenAddresses()) == 0 {
		_ = m.Close()
		return nil, errors.New("rtclink: shared UDP socket: no local address inside the ICE networks")
	}
	return &udpMux{mux: m}, nil
}

// addrs returns the local addresses of the sockets.
func (m *udpMux) addrs() []net.Addr { return m.mux.GetListenAddresses() }

// close closes the sockets; links still using them fail.
func (m *udpMux) close() error { return m.mux.Close() }

// insideNetworks returns an IP filter that keeps addresses inside networks.
func insideNetworks(networks []netip.Prefix) func(net.IP) bool {
	return func(ip net.IP) bool {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return false
		}
		a = a.Unmap()
		for _, p := range networks {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
}
