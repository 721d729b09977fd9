package turnserver

import (
	"net/netip"
	"testing"
)

func TestRelayAddrs(t *testing.T) {
	v4, v6 := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::7")
	cases := []struct {
		name             string
		public           netip.Addr
		listens          []string
		wantPub, wantBnd netip.Addr
		wantErr          bool
	}{
		{"specific listen address, no public IP", netip.Addr{}, []string{"10.1.2.3:3478"}, netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("10.1.2.3"), false},
		{"behind 1:1 NAT", v4, []string{"10.1.2.3:3478"}, v4, netip.MustParseAddr("10.1.2.3"), false},
		{"all interfaces with public IP", v4, []string{"0.0.0.0:3478"}, v4, netip.Addr{}, false},
		{"all IPv6 interfaces with IPv6 public IP", v6, []string{"[::]:3478"}, v6, netip.IPv6Unspecified(), false},
		{"first specific listen address wins", netip.Addr{}, []string{"", "0.0.0.0:3478", "127.0.0.1:3479"}, netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1"), false},
		{"all interfaces without public IP", netip.Addr{}, []string{"0.0.0.0:3478"}, netip.Addr{}, netip.Addr{}, true},
		{"host name without public IP", netip.Addr{}, []string{"localhost:3478"}, netip.Addr{}, netip.Addr{}, true},
		{"mixed families", v6, []string{"10.1.2.3:3478"}, netip.Addr{}, netip.Addr{}, true},
		{"unspecified public IP", netip.IPv4Unspecified(), []string{"10.1.2.3:3478"}, netip.Addr{}, netip.Addr{}, true},
	}
	for _, tc := range cases {
		pub, bind, err := RelayAddrs(tc.public, tc.listens...)
		if (err != nil) != tc.wantErr || pub != tc.wantPub || bind != tc.wantBnd {
			t.Errorf("%s: got %v, %v, %v; want %v, %v, error %v", tc.name, pub, bind, err, tc.wantPub, tc.wantBnd, tc.wantErr)
		}
	}
}
