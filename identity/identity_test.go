//go:build !js

package identity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateStableID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "node.pem")
	first, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	second, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID() != second.ID() {
		t.Fatalf("ID changed across reload: %s then %s", first.ID(), second.ID())
	}
	if !ValidID(first.ID()) || len(first.ID()) != IDLength {
		t.Fatalf("ID %q is not valid", first.ID())
	}
	// The certificate handed to pion is the persisted one.
	c := second.Certificate()
	fps, err := c.GetFingerprints()
	if err != nil {
		t.Fatal(err)
	}
	if len(fps) == 0 || fps[0].Algorithm != "sha-256" {
		t.Fatalf("fingerprints %v", fps)
	}
	if got := IDFromCertificate(second.CertificateDER()); got != first.ID() {
		t.Fatalf("IDFromCertificate(persisted cert) = %s, want %s", got, first.ID())
	}
	if c.Expires().Year() < 2100 {
		t.Fatalf("certificate expires %v, want a long validity", c.Expires())
	}
}

func TestFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "node.pem")
	if _, err := LoadOrCreate(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", st.Mode().Perm())
	}
	dst, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if dst.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, want 0700", dst.Mode().Perm())
	}
}

func TestCorruptFileIsErrorAndKept(t *testing.T) {
	other, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, err := other.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	third, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	thirdPEM, err := third.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	// Certificate of one identity with the key of another.
	certOnly := otherPEM[:strings.Index(string(otherPEM), "-----BEGIN PRIVATE KEY")]
	keyOnly := thirdPEM[strings.Index(string(thirdPEM), "-----BEGIN PRIVATE KEY"):]
	mismatched := append(append([]byte{}, certOnly...), keyOnly...)

	cases := map[string]struct {
		data []byte
		want string
	}{
		"garbage":      {[]byte("not a pem file\n"), "trailing data"},
		"empty":        {[]byte{}, "no certificate"},
		"no key":       {certOnly, "no private key"},
		"no cert":      {keyOnly, "no certificate"},
		"mismatch":     {mismatched, "does not match"},
		"two certs":    {append(append([]byte{}, certOnly...), otherPEM...), "more than one certificate"},
		"bad block":    {[]byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"), "unexpected PEM block"},
		"truncated":    {otherPEM[:len(otherPEM)-40], "trailing data"},
		"corrupt cert": {[]byte(strings.Replace(string(otherPEM), "MII", "MIX", 1)), "certificate"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "node.pem")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreate(path)
			if err == nil {
				t.Fatal("LoadOrCreate accepted a corrupt file")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q, want it to mention %q and the path", err, tc.want)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(after) != string(tc.data) {
				t.Fatal("corrupt file was overwritten")
			}
		})
	}
}

func TestDistinctIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		id, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if seen[id.ID()] {
			t.Fatalf("duplicate ID %s", id.ID())
		}
		seen[id.ID()] = true
	}
}

func TestValidID(t *testing.T) {
	id, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	good := id.ID()
	if !ValidID(good) {
		t.Fatalf("ValidID(%q) = false", good)
	}
	// 256 bits = 51 characters of 5 bits + 1 bit: the last character is 'a'
	// or 'q'; any other last character has stray bits set.
	nonCanonical := "b"
	if good[51] == 'b' {
		nonCanonical = "c"
	}
	bad := []string{
		"",
		good[:51],
		good + "a",
		strings.ToUpper(good),
		good[:50] + "1" + good[51:], // '1' is not in the alphabet
		good[:51] + nonCanonical,
		good[:10] + "=" + good[11:],
	}
	for _, s := range bad {
		if ValidID(s) {
			t.Errorf("ValidID(%q) = true", s)
		}
	}
}

func TestParseRoundTrip(t *testing.T) {
	id, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	p, err := id.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(p)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID() != id.ID() {
		t.Fatalf("round trip changed ID")
	}
	c1, c2 := id.Certificate(), back.Certificate()
	if !c1.Equals(c2) {
		t.Fatal("certificates differ after round trip")
	}
}

// The fingerprint pion puts in its SDP maps to the same ID as the certificate: this is what a
// browser peer checks, since it cannot read the remote certificate.
func TestIDFromFingerprintMatchesCertificate(t *testing.T) {
	id, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	cert := id.Certificate()
	fps, err := cert.GetFingerprints()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, fp := range fps {
		if fp.Algorithm != "sha-256" {
			continue
		}
		found = true
		got, err := IDFromFingerprint(fp.Algorithm + " " + fp.Value)
		if err != nil {
			t.Fatal(err)
		}
		if got != id.ID() {
			t.Errorf("IDFromFingerprint = %s, want %s", got, id.ID())
		}
	}
	if !found {
		t.Fatal("pion gave no sha-256 fingerprint")
	}
}

func TestIDFromFingerprintRefuses(t *testing.T) {
	for _, v := range []string{
		"", "sha-256", "sha-1 AB:CD", "sha-512 " + strings.Repeat("AB:", 63) + "AB",
		"sha-256 ZZ:" + strings.Repeat("AB:", 30) + "AB", "sha-256 " + strings.Repeat("AB:", 30) + "AB",
	} {
		if got, err := IDFromFingerprint(v); err == nil {
			t.Errorf("IDFromFingerprint(%.30q) = %s, want an error", v, got)
		}
	}
}
