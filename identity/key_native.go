//go:build !js

package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// keyPEMType is the PEM block of a key file: PKCS#8, as openssl writes Ed25519 keys.
const keyPEMType = "PRIVATE KEY"

// workPEMType is the optional second PEM block of a key file: the key's work nonce
// (WorkNonceSize bytes). A block of its own, after the key, keeps the key block exactly what
// openssl writes and reads (openssl skips the blocks it does not ask for).
const workPEMType = "RTCMESH WORK"

// Key is a node's identity key, an Ed25519 private key. The node ID is the hash of its public
// key, so whoever can sign with it can prove the ID: at signaling, on every link and on every
// broadcast. The key is immutable; its proof of work (work.go) may improve, under a lock.
// It is safe for concurrent use.
type Key struct {
	priv ed25519.PrivateKey
	id   string
	// path is the key file it came from ("" for a key in memory): a better work nonce is
	// stored there.
	path string
	work *workState
}

var _ WorkProver = (*Key)(nil)

// GenerateKey creates a fresh key that lives as long as the process (tests, ephemeral nodes).
func GenerateKey() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate key: %w", err)
	}
	return newKey(priv), nil
}

// KeyFromSeed derives a key from a 32-byte seed (RFC 8032's private key). The same seed gives
// the same key and ID, which tests and simulations use for reproducible IDs; a real node's
// seed must be secret and random, as LoadOrCreateKey's is.
func KeyFromSeed(seed []byte) (*Key, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("identity: seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return newKey(ed25519.NewKeyFromSeed(seed)), nil
}

func newKey(priv ed25519.PrivateKey) *Key {
	return &Key{priv: priv, id: IDFromPublicKey(priv.Public().(ed25519.PublicKey)), work: newWorkState(nil)}
}

// ID returns the node ID.
func (k *Key) ID() string { return k.id }

// PublicKey returns the raw Ed25519 public key (a copy).
func (k *Key) PublicKey() []byte {
	return bytes.Clone(k.priv.Public().(ed25519.PublicKey))
}

// Sign signs msg. Ed25519 is deterministic: the same key and message give the same signature.
func (k *Key) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

// Work returns the key's work nonce (a copy), or nil if it has none yet.
func (k *Key) Work() []byte { return k.work.get() }

// EnsureWork returns a work nonce of at least difficulty bits, searching on from the current
// one if it falls short. A key loaded from a file stores the new nonce there (atomically, the
// key itself unchanged) before using it, so the work is done once per key, not per start.
func (k *Key) EnsureWork(ctx context.Context, difficulty int) ([]byte, error) {
	var store func([]byte) error
	if k.path != "" {
		store = func(nonce []byte) error { return k.storeWork(nonce) }
	}
	return k.work.ensure(ctx, k.PublicKey(), difficulty, store)
}

// storeWork rewrites the key file with nonce as its work, after checking that the file still
// holds this key: the key is never changed, only its work.
func (k *Key) storeWork(nonce []byte) error {
	onDisk, err := loadKey(k.path)
	if err != nil {
		return fmt.Errorf("identity: store proof of work: %w", err)
	}
	if onDisk.id != k.id {
		return fmt.Errorf("identity: store proof of work: %s now holds key %s, not %s; leaving it alone", k.path, onDisk.id, k.id)
	}
	data, err := marshalKey(k.priv, nonce)
	if err != nil {
		return err
	}
	if err := writeFile(k.path, data, true); err != nil {
		return fmt.Errorf("identity: store proof of work: %w", err)
	}
	return nil
}

// MarshalPEM encodes the key as one PKCS#8 "PRIVATE KEY" PEM block, followed by its work
// nonce in a "RTCMESH WORK" block if it has one: the format ParseKey and LoadOrCreateKey
// read. The output is the secret.
func (k *Key) MarshalPEM() ([]byte, error) { return marshalKey(k.priv, k.Work()) }

func marshalKey(priv ed25519.PrivateKey, work []byte) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("identity: marshal key: %w", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: keyPEMType, Bytes: der})
	if len(work) > 0 {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: workPEMType, Bytes: work})...)
	}
	return out, nil
}

// ErrWave1Identity is returned for a key file written by rtcmesh before identities were
// signing keys: a DTLS certificate and its ECDSA key. That ID was the certificate's hash and
// cannot be proven by a signing key, so it cannot carry over; the error says what to do rather
// than silently giving the node a new ID.
var ErrWave1Identity = errors.New("identity: this file holds an old (wave 1) certificate identity, whose ID cannot be " +
	"carried over to a signing key; move the file away (the node will get a new ID) or point the node at another file")

// ParseKey reads a key from PEM: one PKCS#8 Ed25519 "PRIVATE KEY" block, optionally followed
// by one "RTCMESH WORK" block holding its work nonce (a key file written before proof of work
// has none, and gains one on first use where a difficulty is required).
func ParseKey(data []byte) (*Key, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("identity: no PEM block")
	}
	if block.Type == "CERTIFICATE" || block.Type == "EC PRIVATE KEY" || bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, ErrWave1Identity
	}
	if block.Type != keyPEMType {
		return nil, fmt.Errorf("identity: unexpected PEM block %q, want %q", block.Type, keyPEMType)
	}
	var work []byte
	if len(bytes.TrimSpace(rest)) != 0 {
		wb, after := pem.Decode(rest)
		if wb == nil || wb.Type != workPEMType {
			return nil, errors.New("identity: trailing data after the key")
		}
		if len(wb.Headers) != 0 || len(wb.Bytes) != WorkNonceSize {
			return nil, fmt.Errorf("identity: %s block is %d bytes with %d headers, want %d bytes and none",
				workPEMType, len(wb.Bytes), len(wb.Headers), WorkNonceSize)
		}
		if len(bytes.TrimSpace(after)) != 0 {
			return nil, errors.New("identity: trailing data after the work")
		}
		work = wb.Bytes
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: parse key: %w", err)
	}
	switch priv := k.(type) {
	case ed25519.PrivateKey:
		key := newKey(priv)
		key.work.set(work)
		return key, nil
	default:
		// An ECDSA PKCS#8 key is what wave 1 wrote next to its certificate.
		return nil, fmt.Errorf("identity: key is %T, want Ed25519: %w", k, ErrWave1Identity)
	}
}

// LoadOrCreateKey loads the key stored at path, or creates one there if no file exists. A new
// file is written atomically (a temporary file in the same directory, fsync, then a hard link
// that fails if the name appeared meanwhile), mode 0600, its directory 0700: a crash never
// leaves a half-written key, and two processes starting at once end up with the same key. A
// file that exists but cannot be used is an error, never replaced: that would change the ID.
func LoadOrCreateKey(path string) (*Key, error) {
	k, err := loadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k, err = GenerateKey()
	if err != nil {
		return nil, err
	}
	pemBytes, err := k.MarshalPEM()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: create directory for %s: %w", path, err)
	}
	if err := writeFile(path, pemBytes, false); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadKey(path) // another process won the race: use its key
		}
		return nil, err
	}
	k.path = path
	return k, nil
}

func loadKey(path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("identity: read %s: %w", path, err)
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("identity: load %s: %w", path, err)
	}
	k.path = path
	return k, nil
}

// writeFile writes data to path atomically and durably: a temporary file in the same
// directory, fsync, then a hard link that fails with fs.ErrExist if path exists, or with
// replace a rename over it (readers see the old file or the new one, never a mix).
func writeFile(path string, data []byte, replace bool) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("identity: create temporary file for %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the link, or on failure
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("identity: chmod %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("identity: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("identity: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("identity: close %s: %w", tmp.Name(), err)
	}
	install := os.Link
	if replace {
		install = os.Rename
	}
	if err := install(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("identity: install %s: %w", path, err)
	}
	// The new name must survive a crash too: sync the directory that holds it.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// workYield is SolveWork's pause between chunks: none in a Go process, where the search runs
// on a goroutine of its own and the scheduler preempts it.
func workYield() {}
