//go:build js && wasm

package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"
)

// TestTabKeyDoesTheWork runs where a browser tab's key lives, on WebCrypto (Node.js has the
// same API): the search runs in Go-wasm over the exported public key while the private key
// stays non-extractable, and the nonce checks out like a Go key's. Run with
// GOOS=js GOARCH=wasm go test ./identity -exec "$(go env GOROOT)/lib/wasm/go_js_wasm_exec".
func TestTabKeyDoesTheWork(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	k, err := KeyFromSeed(seed)
	if err != nil {
		t.Skipf("no WebCrypto Ed25519 here: %v", err)
	}
	if k.Work() != nil {
		t.Fatal("a fresh key has work")
	}
	nonce, err := k.EnsureWork(context.Background(), 12)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckWork(k.PublicKey(), nonce, 12); err != nil {
		t.Fatal(err)
	}
	// The same key in a Go process finds the same first nonce: the puzzle is the same.
	goPub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	want, err := SolveWork(context.Background(), goPub, 12, 0)
	if err != nil || !bytes.Equal(want, nonce) {
		t.Fatalf("the tab found %x, plain SolveWork %x (%v)", nonce, want, err)
	}
	if !bytes.Equal(k.Work(), nonce) {
		t.Fatal("the key does not keep its work")
	}
	// The private key stayed what it was: non-extractable.
	if k.priv.Get("extractable").Bool() {
		t.Fatal("the private key is extractable")
	}
}
