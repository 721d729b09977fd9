//go:build !js

package identity

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestKeyIDIsHashOfPublicKey(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if !ValidID(k.ID()) {
		t.Fatalf("ID %q is not a valid ID", k.ID())
	}
	if got := IDFromPublicKey(k.PublicKey()); got != k.ID() {
		t.Fatalf("IDFromPublicKey = %s, ID = %s", got, k.ID())
	}
}

func TestSignatureVerifies(t *testing.T) {
	k, _ := GenerateKey()
	msg := Transcript(LabelBroadcast, []byte("payload"))
	sig, err := k.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(k.ID(), k.PublicKey(), msg, sig); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
}

func TestSignatureForgeriesRefused(t *testing.T) {
	k, _ := GenerateKey()
	other, _ := GenerateKey()
	msg := Transcript(LabelBroadcast, []byte("payload"))
	sig, _ := k.Sign(msg)
	flipped := bytes.Clone(sig)
	flipped[0] ^= 1
	cases := []struct {
		name     string
		id       string
		pub      []byte
		msg, sig []byte
		want     error
	}{
		{"other key for the ID", k.ID(), other.PublicKey(), msg, sig, ErrKeyMismatch},
		{"other ID for the key", other.ID(), k.PublicKey(), msg, sig, ErrKeyMismatch},
		{"short key", k.ID(), k.PublicKey()[:31], msg, sig, ErrKeyMismatch},
		{"flipped signature bit", k.ID(), k.PublicKey(), msg, flipped, ErrBadSignature},
		{"short signature", k.ID(), k.PublicKey(), msg, sig[:63], ErrBadSignature},
		{"no signature", k.ID(), k.PublicKey(), msg, nil, ErrBadSignature},
		{"other message", k.ID(), k.PublicKey(), Transcript(LabelBroadcast, []byte("payloaD")), sig, ErrBadSignature},
		// The same bytes signed for another use must not verify as this one.
		{"other label", k.ID(), k.PublicKey(), Transcript(LabelLinkProof, []byte("payload")), sig, ErrBadSignature},
	}
	for _, c := range cases {
		if err := Verify(c.id, c.pub, c.msg, c.sig); !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestTranscriptIsUnambiguous(t *testing.T) {
	a := Transcript("l", []byte("ab"), []byte("c"))
	b := Transcript("l", []byte("a"), []byte("bc"))
	c := Transcript("l", []byte("abc"))
	if bytes.Equal(a, b) || bytes.Equal(a, c) || bytes.Equal(b, c) {
		t.Fatal("different part lists give the same transcript")
	}
	if bytes.Equal(Transcript("l1", nil), Transcript("l", []byte("1"))) {
		t.Fatal("label and part run into each other")
	}
}

func TestLoadOrCreateKeyPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "node.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
		t.Fatalf("key directory mode %v, want 0700", st.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k1.ID() != k2.ID() {
		t.Fatalf("ID changed across loads: %s then %s", k1.ID(), k2.ID())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the key (no temporary files left)", len(entries))
	}
}

func TestLoadOrCreateKeyConcurrentStartsAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadOrCreateKey(path)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = k.ID()
		}()
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("concurrent starts got different IDs: %v", ids)
		}
	}
}

func TestLoadKeyRefusesWave1Identity(t *testing.T) {
	// Written by rtcmesh before identities were signing keys: a certificate and its key.
	data, err := os.ReadFile(filepath.Join("testdata", "wave1-identity.pem"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "identity.pem")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadOrCreateKey(path)
	if !errors.Is(err, ErrWave1Identity) {
		t.Fatalf("LoadOrCreateKey on a wave-1 file = %v, want ErrWave1Identity", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, data) {
		t.Fatal("the wave-1 file was changed")
	}
}

func TestLoadKeyRefusesCorruptFile(t *testing.T) {
	for name, data := range map[string]string{
		"empty":    "",
		"not pem":  "hello",
		"other":    "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
		"bad der":  "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"trailing": "",
	} {
		if name == "trailing" {
			k, _ := GenerateKey()
			b, _ := k.MarshalPEM()
			data = string(b) + "junk"
		}
		path := filepath.Join(t.TempDir(), "node.key")
		os.WriteFile(path, []byte(data), 0o600)
		if _, err := LoadOrCreateKey(path); err == nil {
			t.Errorf("%s: loaded a corrupt key file", name)
		}
		if after, _ := os.ReadFile(path); string(after) != data {
			t.Errorf("%s: the file was replaced", name)
		}
	}
}

// BenchmarkSign and BenchmarkVerify measure one broadcast-sized signature (a 1 KiB payload).
func BenchmarkSign(b *testing.B) {
	k, _ := GenerateKey()
	msg := Transcript(LabelBroadcast, make([]byte, 1024))
	b.ReportAllocs()
	for b.Loop() {
		k.Sign(msg)
	}
}

func BenchmarkVerify(b *testing.B) {
	k, _ := GenerateKey()
	msg := Transcript(LabelBroadcast, make([]byte, 1024))
	sig, _ := k.Sign(msg)
	pub := k.PublicKey()
	id := k.ID()
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(id, pub, msg, sig); err != nil {
			b.Fatal(err)
		}
	}
}
