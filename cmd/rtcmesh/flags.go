package main

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
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

// repeatedFlag is a flag that may be given several times, each value one item as it is
// (no comma splitting: a secret may hold any character).
type repeatedFlag []string

func (r *repeatedFlag) String() string {
	if r == nil || len(*r) == 0 {
		return ""
	}
	return fmt.Sprintf("(%d values)", len(*r)) // never the values: they are secrets
}

func (r *repeatedFlag) Set(s string) error {
	*r = append(*r, s)
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

// prefixList is the value of a flag holding CIDRs (--allow-peers, --ice-networks): they are
// comma-separated, the flag may be repeated, and a bare IP stands for itself alone.
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (l *prefixList) Set(s string) error {
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return fmt.Errorf("%q is neither a CIDR nor an IP address", item)
			}
			*l = append(*l, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR: %w", item, err)
		}
		*l = append(*l, p.Masked())
	}
	return nil
}

// invalidConfig matches the prefix a package's validate puts before its problems.
var invalidConfig = regexp.MustCompile(`\w+: invalid config: `)

// flagErrors turns what a package's Validate found into a usage error in the terms of the
// command line: fields maps each Config field name the errors may name to the flag that sets
// it. The packages validate; the command only translates, so the two cannot disagree.
func flagErrors(err error, fields map[string]string) error {
	names := slices.Sorted(maps.Keys(fields))
	for i, n := range names {
		names[i] = regexp.QuoteMeta(n)
	}
	field := regexp.MustCompile(`\b(` + strings.Join(names, "|") + `)\b`)
	msg := invalidConfig.ReplaceAllString(err.Error(), "")
	msg = field.ReplaceAllStringFunc(msg, func(f string) string { return fields[f] })
	return usageError{errors.New(msg)}
}
