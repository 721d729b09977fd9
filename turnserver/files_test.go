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
	limit := DefaultConfig().MaxListFile
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	secrets, err := ReadSecretsFile(write("secrets", "# rotation in progress\n  "+testSecret+"  \n\n"+newTestSecret+",with,commas\n"), limit)
	if err != nil || !slices.Equal(secrets, []string{testSecret, newTestSecret + ",with,commas"}) {
		t.Errorf("ReadSecretsFile = %q, %v", secrets, err)
	}
	if _, err := ReadSecretsFile(write("short", testSecret+"\nshort-one\n"), limit); err == nil || !strings.Contains(err.Error(), "line 2") ||
		strings.Contains(err.Error(), "short-one") {
		t.Errorf("a short secret: %v, want an error naming line 2 and not the secret", err)
	}
	prefixes, err := ReadPrefixFile(write("peers", "10.1.2.0/24, 192.0.2.7 # lab\n::ffff:198.51.100.1\n2001:db8::/33\t5.6.7.8/8\n"), limit)
	want := []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("2001:db8::/33"), netip.MustParsePrefix("5.0.0.0/8")}
	if err != nil || !slices.Equal(prefixes, want) {
		t.Errorf("ReadPrefixFile = %v, %v, want %v", prefixes, err, want)
	}
	if _, err := ReadPrefixFile(write("bad", "10.0.0.0/8\nnot-an-address\n"), limit); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a bad prefix: %v, want an error naming line 2", err)
	}
	if _, err := ReadPrefixFile(filepath.Join(dir, "missing"), limit); err == nil {
		t.Error("a missing file read without error")
	}
	if _, err := ReadSecretsFile(write("huge", strings.Repeat(testSecret+"\n", limit/len(testSecret)+1)), limit); err == nil {
		t.Error("a file above the default MaxListFile read without error")
	}
	// The bound is the caller's (Config.MaxListFile): a small file that passes under the
	// default is refused under a bound below its size.
	small := write("small", testSecret+"\n"+newTestSecret+"\n")
	if _, err := ReadSecretsFile(small, 2*len(testSecret)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a file above a MaxListFile of %d bytes: %v, want an error saying it is larger", 2*len(testSecret), err)
	}
	if _, err := ReadPrefixFile(small, 0); err == nil {
		t.Error("a MaxListFile of 0 read a file")
	}
}
