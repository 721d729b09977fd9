package signalclient

import (
	"crypto/ed25519"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/identity"
)

func TestBackoffDoublesWithJitterUpToMax(t *testing.T) {
	cfg := DefaultConfig("ws://127.0.0.1:1/ws", seedKey{ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))}, "n")
	cfg.MinBackoff, cfg.MaxBackoff = 100*time.Millisecond, time.Second
	cfg.Rand = rand.New(rand.NewPCG(1, 1))
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ceilings := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for n, ceil := range ceilings {
		ceil *= time.Millisecond
		distinct := map[time.Duration]bool{}
		for range 50 {
			d := c.backoff(n)
			if d < ceil/2 || d > ceil {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, ceil/2, ceil)
			}
			distinct[d] = true
		}
		if len(distinct) < 10 {
			t.Fatalf("backoff(%d) has only %d distinct values in 50 draws: no jitter", n, len(distinct))
		}
	}
	if d := c.backoff(1000); d > time.Second {
		t.Fatalf("backoff(1000) = %v overflowed the cap", d)
	}
}

// seedKey is an in-memory identity key (identity.GenerateKey is not built for js/wasm).
type seedKey struct{ priv ed25519.PrivateKey }

func (k seedKey) ID() string                      { return identity.IDFromPublicKey(k.PublicKey()) }
func (k seedKey) PublicKey() []byte               { return []byte(k.priv.Public().(ed25519.PublicKey)) }
func (k seedKey) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }
