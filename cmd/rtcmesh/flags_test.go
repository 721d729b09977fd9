package main

import (
	"net/netip"
	"slices"
	"testing"
)

func TestPortRange(t *testing.T) {
	for in, want := range map[string]portRange{"0": {}, "49152-65535": {49152, 65535}, "3478-3478": {3478, 3478}, " 10 - 20 ": {10, 20}} {
		var p portRange
		if err := p.Set(in); err != nil || p != want {
			t.Errorf("Set(%q) = %+v, %v; want %+v", in, p, err, want)
		}
	}
	for _, in := range []string{"", "5000", "0-10", "10-0", "20-10", "1-65536", "a-b", "-5", "5-"} {
		p := portRange{1, 2}
		if err := p.Set(in); err == nil {
			t.Errorf("Set(%q) accepted as %+v", in, p)
		}
	}
}

func TestListAndPrefixFlags(t *testing.T) {
	var l listFlag
	for _, v := range []string{"a,b", " c ,, ", "d"} {
		if err := l.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(l, listFlag{"a", "b", "c", "d"}) {
		t.Errorf("list %q, want a b c d", l)
	}
	var p prefixList
	if err := p.Set("10.0.0.0/8, 192.168.1.7,fd00::/8,10.1.2.3/16"); err != nil {
		t.Fatal(err)
	}
	want := prefixList{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("10.1.0.0/16")}
	if !slices.Equal(p, want) {
		t.Errorf("prefixes %v, want %v", p, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.org", "10.0.0/8"} {
		var q prefixList
		if err := q.Set(bad); err == nil {
			t.Errorf("prefix list accepted %q as %v", bad, q)
		}
	}
}
