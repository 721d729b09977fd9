package turnserver

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestListFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	secrets, err := ReadSecretsFile(write("secrets", "# rotation in progress\n  "+testSecret+"  \n\n"+newTestSecret+",with,commas\n"))
	if err != nil || !slices.Equal(secrets, []string{testSecret, newTestSecret + ",with,commas"}) {
		t.Errorf("ReadSecretsFile = %q, %v", secrets, err)
	}
	if _, err := ReadSecretsFile(write("short", testSecret+"\nshort-one\n")); err == nil || !strings.Contains(err.Error(), "line 2") ||
		strings.Contains(err.Error(), "short-one") {
		t.Errorf("a short secret: %v, want an error naming line 2 and not the secret", err)
	}
	prefixes, err := ReadPrefixFile(write("peers", "10.1.2.0/24, 192.0.2.7 # lab\n::ffff:198.51.100.1\n2001:db8::/33\t5.6.7.8/8\n"))
	want := []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("2001:db8::/33"), netip.MustParsePrefix("5.0.0.0/8")}
	if err != nil || !slices.Equal(prefixes, want) {
		t.Errorf("ReadPrefixFile = %v, %v, want %v", prefixes, err, want)
	}
	if _, err := ReadPrefixFile(write("bad", "10.0.0.0/8\nnot-an-address\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a bad prefix: %v, want an error naming line 2", err)
	}
	if _, err := ReadPrefixFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file read without error")
	}
	if _, err := ReadSecretsFile(write("huge", strings.Repeat(testSecret+"\n", maxListFile/len(testSecret)+1))); err == nil {
		t.Error("a file above maxListFile read without error")
	}
}
