package demo

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestICENetworks checks what the nodes gather on: loopback and, by default, each of this
// machine's own addresses alone (never a whole LAN), while the page and signaling stay on
// loopback.
func TestICENetworks(t *testing.T) {
	for _, host := range []bool{true, false} {
		cfg := DefaultConfig()
		cfg.Listen, cfg.Nodes, cfg.HostAddresses = "127.0.0.1:0", 0, host
		d, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		got := d.ICENetworks()
		want := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		if host {
			want = append(want, HostAddresses()...)
		}
		if !slices.Equal(got, want) {
			t.Errorf("HostAddresses %v: ICE networks %v, want %v", host, got, want)
		}
		for _, p := range got[1:] {
			if p.Bits() != p.Addr().BitLen() || p.Addr().IsLoopback() || p.Addr().IsLinkLocalUnicast() {
				t.Errorf("%v is not one address of this machine", p)
			}
		}
		if ap, err := netip.ParseAddrPort(d.Addr().String()); err != nil || !ap.Addr().IsLoopback() {
			t.Errorf("the page listens on %v (%v), want loopback", d.Addr(), err)
		}
		var desc strings.Builder
		if err := d.Describe(&desc); err != nil || !strings.Contains(desc.String(), "gather ICE candidates on 127.0.0.0/8") {
			t.Errorf("Describe: %v\n%s", err, desc.String())
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("this machine's own addresses: %v", HostAddresses())
}
