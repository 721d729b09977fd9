package turnserver

import (
	"net/netip"
)

// DefaultDeniedPeers returns the peer ranges a public relay must not relay
// to: every range of the IANA IPv4 and IPv6 special-purpose address
// registries (RFC 6890 and its updates) that is not globally reachable, that
// is loopback, RFC 1918 private networks, carrier-grade NAT, link-local
// (which holds cloud metadata services such as 169.254.169.254), "this
// network", IETF protocol assignments, documentation, benchmarking,
// multicast and reserved/broadcast IPv4 space; and IPv6 unspecified,
// loopback, discard-only, documentation, benchmarking, local-use NAT64,
// SRv6 SIDs, unique-local, site-local, link-local and multicast.
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d), NAT64 (64:ff9b::/96) and 6to4
// (2002::/16) addresses are checked as the IPv4 address they carry. Each call
// returns a fresh slice.
func DefaultDeniedPeers() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),       // "this network"; 0.0.0.0 reaches the host itself
		netip.MustParsePrefix("10.0.0.0/8"),      // RFC 1918
		netip.MustParsePrefix("100.64.0.0/10"),   // RFC 6598 carrier-grade NAT
		netip.MustParsePrefix("127.0.0.0/8"),     // loopback
		netip.MustParsePrefix("169.254.0.0/16"),  // link-local, cloud metadata
		netip.MustParsePrefix("172.16.0.0/12"),   // RFC 1918
		netip.MustParsePrefix("192.0.0.0/24"),    // RFC 6890 IETF protocol assignments
		netip.MustParsePrefix("192.0.2.0/24"),    // RFC 5737 documentation (TEST-NET-1)
		netip.MustParsePrefix("192.88.99.0/24"),  // RFC 7526 deprecated 6to4 relay anycast
		netip.MustParsePrefix("192.168.0.0/16"),  // RFC 1918
		netip.MustParsePrefix("198.18.0.0/15"),   // RFC 2544 benchmarking
		netip.MustParsePrefix("198.51.100.0/24"), // RFC 5737 documentation (TEST-NET-2)
		netip.MustParsePrefix("203.0.113.0/24"),  // RFC 5737 documentation (TEST-NET-3)
		netip.MustParsePrefix("224.0.0.0/4"),     // multicast
		netip.MustParsePrefix("240.0.0.0/4"),     // reserved, includes broadcast 255.255.255.255
		netip.MustParsePrefix("::/128"),          // unspecified
		netip.MustParsePrefix("::1/128"),         // loopback
		netip.MustParsePrefix("64:ff9b:1::/48"),  // RFC 8215 local-use NAT64
		netip.MustParsePrefix("100::/64"),        // RFC 6666 discard-only
		netip.MustParsePrefix("2001::/23"),       // RFC 2928 IETF protocol assignments (TEREDO, ORCHID, ...)
		netip.MustParsePrefix("2001:db8::/32"),   // RFC 3849 documentation
		netip.MustParsePrefix("3fff::/20"),       // RFC 9637 documentation
		netip.MustParsePrefix("5f00::/16"),       // RFC 9602 SRv6 SIDs
		netip.MustParsePrefix("fc00::/7"),        // unique local
		netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
		netip.MustParsePrefix("fe80::/10"),       // link-local
		netip.MustParsePrefix("ff00::/8"),        // multicast
	}
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052 well-known NAT64 prefix
	sixToFour   = netip.MustParsePrefix("2002::/16")    // RFC 3056 6to4
)

// peerPolicy decides which peer addresses clients may relay to. It is
// immutable after construction and safe for concurrent use.
type peerPolicy struct {
	allowed []netip.Prefix
	denied  []netip.Prefix
}

// allows reports whether relaying to ip is permitted: explicitly allowed
// ranges win, then every form of the address (as given, unmapped, and the
// IPv4 address embedded in NAT64 or 6to4 addresses) is checked against the
// deny-list.
func (p *peerPolicy) allows(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.WithZone("")
	var buf [2]netip.Addr
	forms := embeddedForms(buf[:0], ip)
	for _, form := range forms {
		if containsAddr(p.allowed, form) {
			return true
		}
	}
	for _, form := range forms {
		if containsAddr(p.denied, form) {
			return false
		}
	}
	return true
}

// embeddedForms returns ip and the IPv4 address it carries, if any, so that a
// deny-list entry for 127.0.0.0/8 also catches ::ffff:127.0.0.1 and
// 64:ff9b::7f00:1.
// The forms are appended to forms, so a caller can keep them on its stack.
func embeddedForms(forms []netip.Addr, ip netip.Addr) []netip.Addr {
	forms = append(forms, ip)
	if ip.Is4In6() {
		return append(forms, ip.Unmap())
	}
	if !ip.Is6() {
		return forms
	}
	b := ip.As16()
	switch {
	case nat64Prefix.Contains(ip):
		forms = append(forms, netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	case sixToFour.Contains(ip):
		forms = append(forms, netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
	}
	return forms
}

func containsAddr(prefixes []netip.Prefix, ip netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
