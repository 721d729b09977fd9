//go:build !js

package identity

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func seededKey(t testing.TB, i byte) *Key {
	t.Helper()
	seed := make([]byte, 32)
	seed[0] = i
	k, err := KeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestWorkIsCheckedAndBoundToTheKey(t *testing.T) {
	alice, bob := seededKey(t, 1), seededKey(t, 2)
	const bits = 14
	nonce, err := SolveWork(context.Background(), alice.PublicKey(), bits, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := WorkBits(alice.PublicKey(), nonce); got < bits {
		t.Fatalf("SolveWork(%d) gave a nonce of %d bits", bits, got)
	}
	if err := CheckWork(alice.PublicKey(), nonce, bits); err != nil {
		t.Fatalf("CheckWork on a solved nonce: %v", err)
	}
	// Another key cannot use it (at 14 bits a chance of 1 in 16,384, and these keys are fixed).
	if err := CheckWork(bob.PublicKey(), nonce, bits); !errors.Is(err, ErrInsufficientWork) {
		t.Fatalf("CheckWork of alice's nonce for bob = %v, want ErrInsufficientWork", err)
	}
	// It is a proof of WorkBits bits and no more.
	if err := CheckWork(alice.PublicKey(), nonce, WorkBits(alice.PublicKey(), nonce)+1); !errors.Is(err, ErrInsufficientWork) {
		t.Fatalf("CheckWork above the nonce's bits = %v, want ErrInsufficientWork", err)
	}
	for name, bad := range map[string][]byte{"none": nil, "short": nonce[:7], "long": append(bytes.Clone(nonce), 0)} {
		if err := CheckWork(alice.PublicKey(), bad, bits); !errors.Is(err, ErrInsufficientWork) {
			t.Errorf("%s nonce: CheckWork = %v, want ErrInsufficientWork", name, err)
		}
	}
	if err := CheckWork(alice.PublicKey()[:31], nonce, bits); !errors.Is(err, ErrInsufficientWork) {
		t.Errorf("short key: CheckWork = %v, want ErrInsufficientWork", err)
	}
	// Difficulty 0 is off: anything passes, even no nonce.
	if err := CheckWork(bob.PublicKey(), nil, 0); err != nil {
		t.Fatalf("CheckWork at difficulty 0 = %v", err)
	}
	// The work hash is the transcript's: the label separates it from every signature.
	if !bytes.Equal(workInput(alice.PublicKey())[:workPrefixLen], Transcript(LabelWork, alice.PublicKey(), nonce)[:workPrefixLen]) {
		t.Fatal("workInput's prefix differs from Transcript(LabelWork, pub, nonce)")
	}
}

func TestWorkBitsCountsLeadingZeros(t *testing.T) {
	for _, c := range []struct {
		sum  []byte
		want int
	}{
		{[]byte{0x80}, 0}, {[]byte{0x40}, 1}, {[]byte{0x01}, 7}, {[]byte{0, 0xff}, 8}, {[]byte{0, 0, 0x10}, 19}, {nil, 256},
	} {
		var s [32]byte
		copy(s[:], c.sum)
		if got := leadingZeroBits(&s); got != c.want {
			t.Errorf("leadingZeroBits(%x) = %d, want %d", c.sum, got, c.want)
		}
	}
}

func TestSolveWorkFindsTheFirstNonce(t *testing.T) {
	k := seededKey(t, 3)
	nonce, err := SolveWork(context.Background(), k.PublicKey(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.BigEndian.Uint64(nonce)
	var b [8]byte
	for i := uint64(0); i < n; i++ {
		binary.BigEndian.PutUint64(b[:], i)
		if WorkBits(k.PublicKey(), b[:]) >= 10 {
			t.Fatalf("nonce %d already had 10 bits, SolveWork returned %d", i, n)
		}
	}
}

func TestSolveWorkStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := SolveWork(ctx, seededKey(t, 4).PublicKey(), MaxWorkBits, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("SolveWork with a cancelled context = %v", err)
	}
	for _, bad := range []int{-1, MaxWorkBits + 1} {
		if _, err := SolveWork(context.Background(), seededKey(t, 4).PublicKey(), bad, 0); err == nil {
			t.Errorf("SolveWork accepted difficulty %d", bad)
		}
	}
}

func TestEnsureWorkSearchesOnAndKeepsTheBest(t *testing.T) {
	k := seededKey(t, 5)
	if k.Work() != nil {
		t.Fatal("a fresh key has work")
	}
	if w, err := k.EnsureWork(context.Background(), 0); err != nil || w != nil {
		t.Fatalf("EnsureWork(0) = %x, %v; want nothing", w, err)
	}
	low, err := k.EnsureWork(context.Background(), 6)
	if err != nil {
		t.Fatal(err)
	}
	high, err := k.EnsureWork(context.Background(), 12)
	if err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint64(high) < binary.BigEndian.Uint64(low) {
		t.Fatalf("the 12-bit search started below the 6-bit nonce: %x < %x", high, low)
	}
	if !bytes.Equal(k.Work(), high) {
		t.Fatal("the key does not keep its best nonce")
	}
	// A lower difficulty keeps the better nonce.
	again, _ := k.EnsureWork(context.Background(), 6)
	if !bytes.Equal(again, high) {
		t.Fatal("EnsureWork at a lower difficulty replaced the nonce")
	}
	// Callers at once agree on one nonce.
	k2 := seededKey(t, 6)
	var wg sync.WaitGroup
	got := make([][]byte, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = k2.EnsureWork(context.Background(), 12)
		}()
	}
	wg.Wait()
	for _, g := range got[1:] {
		if !bytes.Equal(g, got[0]) || CheckWork(k2.PublicKey(), g, 12) != nil {
			t.Fatalf("concurrent EnsureWork disagree or fall short: %x", got)
		}
	}
}

// A key file written before proof of work has no work block: it keeps working, gains the
// work on first use (the key block untouched, so the ID stays and openssl still reads it),
// and the next start finds it there.
func TestKeyFileGainsWorkOnFirstUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	old := seededKey(t, 7)
	oldPEM, err := old.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(oldPEM, []byte(workPEMType)) {
		t.Fatal("a key without work wrote a work block")
	}
	if err := os.WriteFile(path, oldPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k.ID() != old.ID() || k.Work() != nil {
		t.Fatalf("loaded %s with work %x, want %s without", k.ID(), k.Work(), old.ID())
	}
	nonce, err := k.EnsureWork(context.Background(), 12)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, oldPEM) {
		t.Fatalf("the key block changed:\n%s", data)
	}
	block, rest := pem.Decode(data)
	if block.Type != keyPEMType {
		t.Fatalf("first block %q", block.Type)
	}
	if wb, _ := pem.Decode(rest); wb == nil || wb.Type != workPEMType || !bytes.Equal(wb.Bytes, nonce) {
		t.Fatalf("no work block holding %x after the key:\n%s", nonce, data)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v after storing the work, want 0600", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the key", len(entries))
	}
	again, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID() != old.ID() || !bytes.Equal(again.Work(), nonce) {
		t.Fatalf("reloaded %s with work %x, want %s with %x", again.ID(), again.Work(), old.ID(), nonce)
	}
	// Enough work already: nothing is searched or written.
	before, _ := os.Stat(path)
	if w, err := again.EnsureWork(context.Background(), 12); err != nil || !bytes.Equal(w, nonce) {
		t.Fatalf("EnsureWork with enough stored work = %x, %v", w, err)
	}
	if after, _ := os.Stat(path); !after.ModTime().Equal(before.ModTime()) {
		t.Fatal("the key file was rewritten without need")
	}
}

// The work is stored only beside its own key: if the file now holds another key, it is left
// alone and the search fails rather than touch someone else's identity.
func TestStoreWorkLeavesAnotherKeyAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	k, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := seededKey(t, 8).MarshalPEM()
	if err := os.WriteFile(path, other, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := k.EnsureWork(context.Background(), 8); err == nil {
		t.Fatal("EnsureWork stored work over another key")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, other) {
		t.Fatal("the other key's file was changed")
	}
	if k.Work() != nil {
		t.Fatal("the key adopted work it could not store")
	}
}

func TestParseKeyRefusesBadWorkBlocks(t *testing.T) {
	k := seededKey(t, 9)
	keyPEM, _ := k.MarshalPEM()
	work := func(b []byte, headers map[string]string) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: workPEMType, Bytes: b, Headers: headers}))
	}
	for name, data := range map[string]string{
		"short":         string(keyPEM) + work(make([]byte, 7), nil),
		"long":          string(keyPEM) + work(make([]byte, 9), nil),
		"headers":       string(keyPEM) + work(make([]byte, 8), map[string]string{"Bits": "20"}),
		"other block":   string(keyPEM) + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})),
		"after work":    string(keyPEM) + work(make([]byte, 8), nil) + "junk",
		"two works":     string(keyPEM) + work(make([]byte, 8), nil) + work(make([]byte, 8), nil),
		"work first":    work(make([]byte, 8), nil) + string(keyPEM),
		"garbled block": string(keyPEM) + "-----BEGIN RTCMESH WORK-----\n!!\n-----END RTCMESH WORK-----\n",
	} {
		if _, err := ParseKey([]byte(data)); err == nil {
			t.Errorf("%s: ParseKey accepted it", name)
		}
	}
	ok := string(keyPEM) + "\n" + work([]byte{0, 0, 0, 0, 0, 0, 1, 2}, nil) + "\n"
	got, err := ParseKey([]byte(ok))
	if err != nil || !bytes.Equal(got.Work(), []byte{0, 0, 0, 0, 0, 0, 1, 2}) {
		t.Fatalf("ParseKey of a key with work = %v, work %x", err, got.Work())
	}
}

// FuzzParseKey: whatever a key file holds, ParseKey never panics, and what it accepts
// re-encodes to a file that parses to the same ID and work.
func FuzzParseKey(f *testing.F) {
	k := seededKey(f, 10)
	plain, _ := k.MarshalPEM()
	f.Add(plain)
	k.work.set([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	withWork, _ := k.MarshalPEM()
	f.Add(withWork)
	f.Add([]byte("-----BEGIN RTCMESH WORK-----\nAQIDBAUGBwg=\n-----END RTCMESH WORK-----\n"))
	if wave1, err := os.ReadFile(filepath.Join("testdata", "wave1-identity.pem")); err == nil {
		f.Add(wave1)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParseKey(data)
		if err != nil {
			return
		}
		if w := key.Work(); w != nil && len(w) != WorkNonceSize {
			t.Fatalf("accepted a work nonce of %d bytes", len(w))
		}
		out, err := key.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseKey(out)
		if err != nil {
			t.Fatalf("re-encoded key does not parse: %v", err)
		}
		if again.ID() != key.ID() || !bytes.Equal(again.Work(), key.Work()) {
			t.Fatal("re-encoding changed the ID or the work")
		}
	})
}
