package turnserver

import (
	"fmt"
	"net/netip"
)

// RelayAddrs picks Config.PublicIP and Config.RelayBindIP for a relay listening on listens
// (host:port, empty ones skipped). The relay binds to the first listen address that names one
// specific IP (so a relay listening on 127.0.0.1 or on one interface relays from there too),
// otherwise to all interfaces, and advertises public, or else the bind address. Behind a 1:1
// NAT the two differ, which is why public exists. Errors name PublicIP, the field public is
// for.
func RelayAddrs(public netip.Addr, listens ...string) (publicIP, bindIP netip.Addr, err error) {
	for _, l := range listens {
		if ip, ok := hostIP(l); ok {
			bindIP = ip
			break
		}
	}
	if public.IsValid() && public.IsUnspecified() {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("PublicIP %v is unspecified; clients cannot reach it", public)
	}
	if !public.IsValid() {
		if !bindIP.IsValid() {
			return netip.Addr{}, netip.Addr{}, fmt.Errorf("PublicIP is required when no listen address names one specific IP")
		}
		public = bindIP
	}
	if bindIP.IsValid() && bindIP.Is4() != public.Is4() {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("PublicIP %v and the listen address %v are of different address families", public, bindIP)
	}
	if !bindIP.IsValid() && !public.Is4() {
		bindIP = netip.IPv6Unspecified() // relay sockets of the advertised family
	}
	return public, bindIP, nil
}

// hostIP returns the IP of a listen address host:port when it names one specific address,
// and false for a host name, an empty host or an unspecified address (0.0.0.0, ::).
func hostIP(addr string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Addr().IsUnspecified() {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}
