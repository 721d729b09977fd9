package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// listFlag is a flag holding a list of strings. It may be repeated and each value may hold
// several comma-separated items (--turn-url a --turn-url b, or --turn-url a,b), so that the
// whole list also fits in one environment variable. Empty items are ignored.
type listFlag []string

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *listFlag) Set(s string) error {
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

// portRange is the value of --relay-ports: "MIN-MAX" (inclusive), or "0" for ports picked
// by the operating system.
type portRange struct{ min, max uint16 }

func (p *portRange) String() string {
	if p == nil || (p.min == 0 && p.max == 0) {
		return "0"
	}
	return fmt.Sprintf("%d-%d", p.min, p.max)
}

func (p *portRange) Set(s string) error {
	if s == "0" {
		*p = portRange{}
		return nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return fmt.Errorf("port range %q is not MIN-MAX (or 0 to let the system pick)", s)
	}
	minPort, err := parsePort(lo)
	if err != nil {
		return fmt.Errorf("port range %q: %w", s, err)
	}
	maxPort, err := parsePort(hi)
	if err != nil {
		return fmt.Errorf("port range %q: %w", s, err)
	}
	if minPort > maxPort {
		return fmt.Errorf("port range %q: MIN is above MAX", s)
	}
	*p = portRange{min: minPort, max: maxPort}
	return nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// ipFlag is an optional IP address flag; the zero value means unset.
type ipFlag struct{ addr netip.Addr }

func (f *ipFlag) String() string {
	if f == nil || !f.addr.IsValid() {
		return ""
	}
	return f.addr.String()
}

func (f *ipFlag) Set(s string) error {
	if s == "" {
		f.addr = netip.Addr{}
		return nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("%q is not an IP address", s)
	}
	f.addr = a.Unmap()
	return nil
}

// listenAddr turns a listen flag's value into an address: "off" (or empty) disables the
// listener, so that a listener on by default can also be switched off through the
// environment, where an empty value means "not set".
func listenAddr(s string) string {
	if s == "off" {
		return ""
	}
	return s
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
