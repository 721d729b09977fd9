//go:build js && wasm

package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"syscall/js"
	"time"

	"github.com/rtcmesh/rtcmesh/internal/browser"
)

// Where a tab keeps its key. IndexedDB is shared by every tab of an origin, but two tabs must
// never hold one ID (they would replace each other at the signaling server), so each tab keeps
// its key under a name of its own, remembered in sessionStorage (which survives a reload but
// not a new tab), and holds a Web Lock on that name while it lives (a duplicated tab copies
// sessionStorage; the lock makes it pick a name of its own).
const (
	keyDatabase   = "rtcmesh-identity"
	keyStore      = "keys"
	keyNameItem   = "rtcmesh-key-name"
	keyLockPrefix = "rtcmesh-key-"
	// lockWaitMs is how long a reloading tab waits for its previous document to release the
	// lock on its key name before it takes a new name (and so a new ID).
	lockWaitMs = 2000
)

// Key is, in the browser, a WebCrypto Ed25519 key pair whose private half was created
// non-extractable: the page can sign with it but no script can read it. Its ID is the hash of
// the raw public key, exactly as on other platforms.
type Key struct {
	priv js.Value
	pub  []byte
	id   string
	// name is the IndexedDB name the key is stored under ("" for a key that lives as long as
	// the page): a better work nonce is stored beside it.
	name string
	work *workState
}

var _ WorkProver = (*Key)(nil)

// Work returns the key's work nonce (a copy), or nil if it has none yet.
func (k *Key) Work() []byte { return k.work.get() }

// EnsureWork returns a work nonce of at least difficulty bits, searching on from the current
// one if it falls short. The search runs in Go-wasm over the public key (the private key
// stays non-extractable) and yields to the page between chunks; a tab's stored key keeps the
// nonce in IndexedDB, so a reload does not search again. It waits, so it must be called from a
// goroutine, never from a JavaScript callback.
func (k *Key) EnsureWork(ctx context.Context, difficulty int) ([]byte, error) {
	var store func([]byte) error
	if k.name != "" {
		store = func(nonce []byte) error { return storeWork(k.name, nonce) }
	}
	return k.work.ensure(ctx, k.pub, difficulty, store)
}

// workYield lets the page's event loop run between chunks of a work search: a Go-wasm
// goroutine that never blocks would freeze the tab (and its WebRTC callbacks).
func workYield() { time.Sleep(time.Millisecond) }

// storeWork adds nonce to the stored record of the key named name.
func storeWork(name string, nonce []byte) error {
	db, err := openKeyDatabase()
	if err != nil {
		return err
	}
	defer db.Call("close")
	stored, err := idbRequest(db.Call("transaction", keyStore, "readonly").Call("objectStore", keyStore).Call("get", name))
	if err != nil || stored.Type() != js.TypeObject {
		return fmt.Errorf("identity: read key %s to store its work: %v", name, err)
	}
	record := map[string]any{"privateKey": stored.Get("privateKey"), "publicKey": stored.Get("publicKey"), "work": browser.Uint8Array(nonce)}
	if _, err := idbRequest(db.Call("transaction", keyStore, "readwrite").Call("objectStore", keyStore).Call("put", record, name)); err != nil {
		return fmt.Errorf("identity: store the work of key %s: %w", name, err)
	}
	return nil
}

// ID returns the node ID.
func (k *Key) ID() string { return k.id }

// PublicKey returns the raw Ed25519 public key (a copy).
func (k *Key) PublicKey() []byte { return bytes.Clone(k.pub) }

// Sign signs msg with WebCrypto. It waits for the browser's promise, so it must be called from
// a goroutine, never from a JavaScript callback.
func (k *Key) Sign(msg []byte) ([]byte, error) {
	p, err := browser.Call(subtle(), "sign", "Ed25519", k.priv, browser.Uint8Array(msg))
	if err != nil {
		return nil, fmt.Errorf("identity: sign: %w", err)
	}
	sig, err := browser.Await(p)
	if err != nil {
		return nil, fmt.Errorf("identity: sign: %w", err)
	}
	return browser.Bytes(sig), nil
}

func subtle() js.Value { return js.Global().Get("crypto").Get("subtle") }

// GenerateKey creates a key that lives as long as the page (the page's ephemeral option).
func GenerateKey() (*Key, error) {
	pair, err := generatePair()
	if err != nil {
		return nil, err
	}
	return fromPair(pair)
}

// pkcs8Ed25519Prefix is the DER of a PKCS#8 Ed25519 private key (RFC 8410) up to its 32-byte
// seed.
var pkcs8Ed25519Prefix = []byte{0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20}

// KeyFromSeed derives a key from a 32-byte seed (RFC 8032's private key), imported into
// WebCrypto non-extractable. The same seed gives the same key and ID as in a Go process, which
// tests use for reproducible IDs; a real peer's key is GenerateKey's or LoadOrCreateTabKey's.
// It waits for WebCrypto, so it must not be called from a JavaScript callback.
func KeyFromSeed(seed []byte) (*Key, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("identity: seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	if subtle().Type() != js.TypeObject {
		return nil, errors.New("identity: this page has no WebCrypto (crypto.subtle needs a secure context: https or localhost)")
	}
	der := append(bytes.Clone(pkcs8Ed25519Prefix), seed...)
	p, err := browser.Call(subtle(), "importKey", "pkcs8", browser.Uint8Array(der), "Ed25519", false, []any{"sign"})
	if err != nil {
		return nil, fmt.Errorf("identity: import Ed25519 key: %w", err)
	}
	priv, err := browser.Await(p)
	if err != nil {
		return nil, fmt.Errorf("identity: import Ed25519 key: %w", err)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	return &Key{priv: priv, pub: bytes.Clone(pub), id: IDFromPublicKey(pub), work: newWorkState(nil)}, nil
}

func generatePair() (js.Value, error) {
	if subtle().Type() != js.TypeObject {
		return js.Value{}, errors.New("identity: this page has no WebCrypto (crypto.subtle needs a secure context: https or localhost)")
	}
	// extractable=false applies to the private key; a public key is always exportable.
	p, err := browser.Call(subtle(), "generateKey", "Ed25519", false, []any{"sign", "verify"})
	if err != nil {
		return js.Value{}, fmt.Errorf("identity: generate Ed25519 key (does this browser support Ed25519 in WebCrypto?): %w", err)
	}
	pair, err := browser.Await(p)
	if err != nil {
		return js.Value{}, fmt.Errorf("identity: generate Ed25519 key (does this browser support Ed25519 in WebCrypto?): %w", err)
	}
	return pair, nil
}

func fromPair(pair js.Value) (*Key, error) {
	p, err := browser.Call(subtle(), "exportKey", "raw", pair.Get("publicKey"))
	if err != nil {
		return nil, fmt.Errorf("identity: export public key: %w", err)
	}
	raw, err := browser.Await(p)
	if err != nil {
		return nil, fmt.Errorf("identity: export public key: %w", err)
	}
	pub := browser.Bytes(raw)
	if len(pub) != PublicKeySize {
		return nil, fmt.Errorf("identity: the browser's public key is %d bytes, want %d", len(pub), PublicKeySize)
	}
	return &Key{priv: pair.Get("privateKey"), pub: pub, id: IDFromPublicKey(pub), work: newWorkState(nil)}, nil
}

// LoadOrCreateKey is the Go processes' key file; a page has no files. It exists so that code
// shared with Go processes compiles in the browser, and always fails: a tab keeps its key with
// LoadOrCreateTabKey.
func LoadOrCreateKey(path string) (*Key, error) {
	return nil, fmt.Errorf("identity: key file %s: a browser has no key files (use LoadOrCreateTabKey)", path)
}

// LoadOrCreateTabKey returns this tab's key: the one stored in IndexedDB under the tab's name,
// or a new one stored there. A reload keeps the key (and so the ID); a new or duplicated tab
// gets its own. Where storage is unavailable (private modes may refuse IndexedDB) the error
// says so; the caller may fall back to GenerateKey.
func LoadOrCreateTabKey() (*Key, error) {
	name, err := claimKeyName()
	if err != nil {
		return nil, err
	}
	db, err := openKeyDatabase()
	if err != nil {
		return nil, err
	}
	defer db.Call("close")
	stored, err := idbRequest(db.Call("transaction", keyStore, "readonly").Call("objectStore", keyStore).Call("get", name))
	if err != nil {
		return nil, fmt.Errorf("identity: read key %s: %w", name, err)
	}
	if stored.Type() == js.TypeObject && stored.Get("privateKey").Type() == js.TypeObject {
		k, err := fromPair(stored)
		if err != nil {
			return nil, err
		}
		k.name = name
		if w := stored.Get("work"); w.Type() == js.TypeObject {
			if nonce := browser.Bytes(w); len(nonce) == WorkNonceSize {
				k.work.set(nonce)
			}
		}
		return k, nil
	}
	pair, err := generatePair()
	if err != nil {
		return nil, err
	}
	record := map[string]any{"privateKey": pair.Get("privateKey"), "publicKey": pair.Get("publicKey")}
	if _, err := idbRequest(db.Call("transaction", keyStore, "readwrite").Call("objectStore", keyStore).Call("put", record, name)); err != nil {
		return nil, fmt.Errorf("identity: store key %s: %w", name, err)
	}
	k, err := fromPair(pair)
	if err != nil {
		return nil, err
	}
	k.name = name
	return k, nil
}

// claimKeyName returns the tab's key name, creating it when the tab has none, and holds a Web
// Lock on it for the life of the document. If another live tab holds the name (a duplicated
// tab copied this tab's sessionStorage) a fresh name is taken.
func claimKeyName() (string, error) {
	storage := js.Global().Get("sessionStorage")
	if storage.Type() != js.TypeObject {
		return "", errors.New("identity: this page has no sessionStorage to remember its key name")
	}
	name := storage.Call("getItem", keyNameItem)
	if name.Type() == js.TypeString && name.String() != "" {
		if held, err := holdLock(name.String(), lockWaitMs); err != nil {
			return "", err
		} else if held {
			return name.String(), nil
		}
	}
	var b [16]byte
	rand.Read(b[:])
	fresh := hex.EncodeToString(b[:])
	if _, err := holdLock(fresh, 0); err != nil {
		return "", err
	}
	storage.Call("setItem", keyNameItem, fresh)
	return fresh, nil
}

// holdLock asks for the Web Lock of a key name and keeps it until the document goes away. It
// reports false if another document kept it for waitMs. Browsers without Web Locks rely on
// sessionStorage alone.
func holdLock(name string, waitMs int) (bool, error) {
	locks := js.Global().Get("navigator").Get("locks")
	if locks.Type() != js.TypeObject {
		return true, nil
	}
	granted := make(chan bool, 1)
	// The callback returns a promise that never settles, so the lock stays held; it only
	// signals a channel and never blocks the event loop.
	var onGrant js.Func
	onGrant = js.FuncOf(func(_ js.Value, args []js.Value) any {
		ok := len(args) > 0 && !args[0].IsNull()
		granted <- ok
		if !ok {
			return nil
		}
		return js.Global().Get("Promise").New(js.FuncOf(func(js.Value, []js.Value) any { return nil }))
	})
	opts := map[string]any{}
	if waitMs > 0 {
		opts["signal"] = js.Global().Get("AbortSignal").Call("timeout", waitMs)
	} else {
		opts["ifAvailable"] = true
	}
	p, err := browser.Call(locks, "request", keyLockPrefix+name, opts, onGrant)
	if err != nil {
		onGrant.Release()
		return false, fmt.Errorf("identity: lock key name: %w", err)
	}
	// A wait that times out rejects the request's promise without calling the callback.
	go func() {
		if _, err := browser.Await(p); err != nil {
			select {
			case granted <- false:
			default:
			}
		}
	}()
	return <-granted, nil
}

func openKeyDatabase() (js.Value, error) {
	idb := js.Global().Get("indexedDB")
	if idb.Type() != js.TypeObject {
		return js.Value{}, errors.New("identity: this page has no IndexedDB to keep its key in")
	}
	req, err := browser.Call(idb, "open", keyDatabase, 1)
	if err != nil {
		return js.Value{}, fmt.Errorf("identity: open key database: %w", err)
	}
	upgrade := browser.On(req, "upgradeneeded", func(js.Value) {
		req.Get("result").Call("createObjectStore", keyStore)
	})
	defer upgrade.Release()
	db, err := idbRequest(req)
	if err != nil {
		return js.Value{}, fmt.Errorf("identity: open key database: %w", err)
	}
	return db, nil
}

// idbRequest waits for an IndexedDB request to succeed or fail.
func idbRequest(req js.Value) (js.Value, error) {
	done := make(chan error, 1)
	ok := browser.On(req, "success", func(js.Value) { done <- nil })
	defer ok.Release()
	fail := browser.On(req, "error", func(js.Value) {
		done <- browser.Error(req.Get("error"))
	})
	defer fail.Release()
	if err := <-done; err != nil {
		return js.Value{}, err
	}
	return req.Get("result"), nil
}
