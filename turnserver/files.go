package turnserver

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

// maxListFileLimit bounds Config.MaxListFile (64 MiB).
const maxListFileLimit = maxTableSize * 64

// ReadSecretsFile reads shared secrets from a file, one per line, in order; blank lines and
// lines starting with # are skipped and surrounding blanks trimmed, so a secret can hold any
// other character (commas included). Secrets are never quoted in errors. A file larger than
// maxSize bytes (Config.MaxListFile) is refused.
func ReadSecretsFile(path string, maxSize int) ([]string, error) {
	var secrets []string
	err := readListFile(path, maxSize, func(n int, line string) error {
		if len(line) < MinSecretLength {
			return fmt.Errorf("line %d: a secret must be at least %d bytes, got %d", n, MinSecretLength, len(line))
		}
		secrets = append(secrets, line)
		return nil
	})
	return secrets, err
}

// ReadPrefixFile reads peer address ranges from a file: CIDRs or bare IPs (each its own /32
// or /128), one or several per line separated by commas or blanks; blank lines and text after
// # are skipped. A file larger than maxSize bytes (Config.MaxListFile) is refused.
func ReadPrefixFile(path string, maxSize int) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	err := readListFile(path, maxSize, func(n int, line string) error {
		line, _, _ = strings.Cut(line, "#")
		for _, item := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			p, err := ParsePrefix(item)
			if err != nil {
				return fmt.Errorf("line %d: %w", n, err)
			}
			prefixes = append(prefixes, p)
		}
		return nil
	})
	return prefixes, err
}

// ParsePrefix parses a CIDR, or a bare IP as the prefix of that address alone. IPv4-mapped
// IPv6 addresses are unmapped, and the prefix is masked.
func ParsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an IP address", s)
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR: %w", s, err)
	}
	return p.Masked(), nil
}

// readListFile calls line for each line of path that is neither blank nor a # comment,
// trimmed, with its line number. A file of more than maxSize bytes is refused.
func readListFile(path string, maxSize int, line func(n int, text string) error) error {
	if maxSize < 1 || maxSize > maxListFileLimit {
		return fmt.Errorf("turnserver: reading %s: size bound %d is not between 1 and %d (Config.MaxListFile)", path, maxSize, maxListFileLimit)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("turnserver: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, int64(maxSize)+1))
	sc.Buffer(make([]byte, 0, 4096), maxSize+1)
	n, size := 0, 0
	for sc.Scan() {
		n++
		size += len(sc.Bytes()) + 1
		if size > maxSize {
			return fmt.Errorf("turnserver: %s is larger than %d bytes", path, maxSize)
		}
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if err := line(n, text); err != nil {
			return fmt.Errorf("turnserver: %s: %w", path, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("turnserver: reading %s: %w", path, err)
	}
	return nil
}
