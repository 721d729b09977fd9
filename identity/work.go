package identity

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync"
)

// Proof of work on identity keys (S/Kademlia's "static crypto puzzle", made re-usable for a
// fixed key). An open network lets anyone make IDs for free, so one machine can join as a
// thousand Sybils. Where the operator wants it, an ID costs work: the node must show a work
// nonce such that
//
//	SHA-256(Transcript(LabelWork, public key, nonce))
//
// starts with at least D zero bits (the difficulty). Finding one takes 2^D hashes on average;
// checking it takes one. The work is bound to the public key (a nonce found for one key is
// worthless for another) and separated by its label from every signature transcript.
//
// Why a nonce next to the key, and not S/Kademlia's form where the ID hash itself must start
// with D zero bits: (1) a node keeps its key, and so its ID, when the operator turns the
// puzzle on or raises it: an old key file gains a nonce on first use; (2) the work is a hash
// per try (about 0.25 µs here), not a key generation per try (about 20 µs in Go, far more
// through WebCrypto in a browser), so the same security costs an honest node far less time
// beside an attacker's optimised hashing; (3) a browser can find it in Go-wasm over the
// exported public key while its private key stays non-extractable. The price: the nonce
// travels with the key (in the signaling hello and in the link proof), so an ID alone, learnt
// from gossip, cannot be checked until a link to it proves its key and work.
//
// The nonce is a counter (WorkNonceSize bytes, big-endian): a search for D bits can continue
// from the nonce found for fewer bits, since the first nonce that reaches D bits comes no
// earlier than the first that reaches fewer.

// LabelWork separates the work hash from every transcript an identity key signs.
const LabelWork = "rtcmesh identity work v1"

// WorkNonceSize is the size of a work nonce: a big-endian counter.
const WorkNonceSize = 8

// MaxWorkBits bounds a difficulty. 32 bits is about 2^32 hashes, some twenty minutes of one
// core here; more would lock honest nodes out rather than slow Sybils down.
const MaxWorkBits = 32

// RecommendedWorkBits is the documented difficulty for an open network that wants Sybils to
// cost something (see README, "Costly identities"): about a tenth of a second of one core for
// a Go node, a second or two for a browser tab, once per key; a thousand Sybils cost an
// attacker the same thousand-fold.
const RecommendedWorkBits = 20

// ErrInsufficientWork: the work nonce is missing or its hash has fewer leading zero bits than
// the difficulty asks.
var ErrInsufficientWork = errors.New("identity: insufficient proof of work")

// workPrefixLen is the length of the work transcript before the nonce: the label, its zero
// byte, the public key's uvarint length and the key, then the nonce's uvarint length.
const workPrefixLen = len(LabelWork) + 1 + 1 + PublicKeySize + 1

// workInput returns the work transcript of pub with a zero nonce; the nonce is its last
// WorkNonceSize bytes. It is exactly Transcript(LabelWork, pub, nonce).
func workInput(pub []byte) []byte {
	return Transcript(LabelWork, pub, make([]byte, WorkNonceSize))
}

// WorkBits returns how many leading zero bits the work hash of pub and nonce has: the
// difficulty the pair meets.
func WorkBits(pub, nonce []byte) int {
	sum := sha256.Sum256(Transcript(LabelWork, pub, nonce))
	return leadingZeroBits(&sum)
}

func leadingZeroBits(sum *[sha256.Size]byte) int {
	n := 0
	for _, b := range sum {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// CheckWork checks that nonce is a proof of at least difficulty bits of work for the public
// key pub. A difficulty of 0 or less asks for nothing and accepts any nonce, even none.
func CheckWork(pub, nonce []byte, difficulty int) error {
	if difficulty <= 0 {
		return nil
	}
	if len(pub) != PublicKeySize {
		return fmt.Errorf("%w: public key is %d bytes, want %d", ErrInsufficientWork, len(pub), PublicKeySize)
	}
	if len(nonce) != WorkNonceSize {
		if len(nonce) == 0 {
			return fmt.Errorf("%w: no work nonce, and %d bits are required", ErrInsufficientWork, difficulty)
		}
		return fmt.Errorf("%w: work nonce is %d bytes, want %d", ErrInsufficientWork, len(nonce), WorkNonceSize)
	}
	if got := WorkBits(pub, nonce); got < difficulty {
		return fmt.Errorf("%w: key %s has %d bits of work, %d required", ErrInsufficientWork, IDFromPublicKey(pub), got, difficulty)
	}
	return nil
}

// ValidateWorkBits checks a configured difficulty: 0 (off) to MaxWorkBits.
func ValidateWorkBits(difficulty int) error {
	if difficulty < 0 || difficulty > MaxWorkBits {
		return fmt.Errorf("identity: proof-of-work difficulty %d bits is outside 0..%d", difficulty, MaxWorkBits)
	}
	return nil
}

// workChunk is how many hashes SolveWork tries between looks at its context (and, in the
// browser, between yields to the page's event loop): about 1 ms of hashing natively.
const workChunk = 4096

// SolveWork searches for a work nonce of at least difficulty bits for pub, trying counters
// from start upward, and returns the first it finds. It takes 2^difficulty hashes on average
// and stops early, with ctx's error, when ctx is done. In the browser it yields to the page
// between chunks, so the tab stays responsive.
func SolveWork(ctx context.Context, pub []byte, difficulty int, start uint64) ([]byte, error) {
	if err := ValidateWorkBits(difficulty); err != nil {
		return nil, err
	}
	if len(pub) != PublicKeySize {
		return nil, fmt.Errorf("identity: solve work: public key is %d bytes, want %d", len(pub), PublicKeySize)
	}
	buf := workInput(pub)
	nonce := buf[workPrefixLen:]
	for n := start; ; {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("identity: solve work (%d bits): %w", difficulty, err)
		}
		for i := 0; i < workChunk; i++ {
			binary.BigEndian.PutUint64(nonce, n)
			sum := sha256.Sum256(buf)
			if leadingZeroBits(&sum) >= difficulty {
				return append([]byte(nil), nonce...), nil
			}
			n++
			if n == 0 { // 2^64 tries: unreachable for difficulty <= MaxWorkBits
				return nil, fmt.Errorf("identity: solve work (%d bits): counter space exhausted", difficulty)
			}
		}
		workYield()
	}
}

// WorkProver is a Signer that carries a proof of work for its key. Both builds' Key
// implement it: a Go key keeps its nonce in its key file, a tab's key in IndexedDB.
type WorkProver interface {
	Signer
	// Work returns the key's best work nonce so far (a copy), or nil if it has none.
	Work() []byte
	// EnsureWork returns a work nonce of at least difficulty bits, searching on from the
	// current one if it falls short (and storing what it finds where the key is kept).
	EnsureWork(ctx context.Context, difficulty int) ([]byte, error)
}

// WorkOf returns the work nonce s carries, or nil if it carries none (or cannot carry one).
func WorkOf(s Signer) []byte {
	if w, ok := s.(WorkProver); ok {
		return w.Work()
	}
	return nil
}

// EnsureWork returns a work nonce of at least difficulty bits for s: s's own (computed and
// stored if needed) when s is a WorkProver, else one solved afresh (and not kept). A
// difficulty of 0 or less returns s's current nonce, possibly nil.
func EnsureWork(ctx context.Context, s Signer, difficulty int) ([]byte, error) {
	if w, ok := s.(WorkProver); ok {
		return w.EnsureWork(ctx, difficulty)
	}
	if difficulty <= 0 {
		return nil, nil
	}
	return SolveWork(ctx, s.PublicKey(), difficulty, 0)
}

// workState is a key's work nonce and the lock that serialises searches for a better one. A
// search may take seconds; readers of the current nonce (link proofs) never wait for it.
type workState struct {
	solveMu chan struct{} // capacity 1: held while searching (a channel, so waiting heeds ctx)
	mu      sync.Mutex    // guards nonce
	nonce   []byte
}

func newWorkState(nonce []byte) *workState {
	return &workState{solveMu: make(chan struct{}, 1), nonce: nonce}
}

func (w *workState) get() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.nonce == nil {
		return nil
	}
	return append([]byte(nil), w.nonce...)
}

func (w *workState) set(nonce []byte) {
	w.mu.Lock()
	w.nonce = append([]byte(nil), nonce...)
	w.mu.Unlock()
}

// ensure returns a nonce of at least difficulty bits for pub, searching on from the current
// one and calling store with a new one before adopting it. Searches are serialised; a caller
// whose ctx ends while it waits for another's search gets ctx's error.
func (w *workState) ensure(ctx context.Context, pub []byte, difficulty int, store func(nonce []byte) error) ([]byte, error) {
	if err := ValidateWorkBits(difficulty); err != nil {
		return nil, err
	}
	if cur := w.get(); difficulty == 0 || (len(cur) == WorkNonceSize && WorkBits(pub, cur) >= difficulty) {
		return cur, nil
	}
	select {
	case w.solveMu <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("identity: waiting for a proof-of-work search: %w", ctx.Err())
	}
	defer func() { <-w.solveMu }()
	cur := w.get()
	if len(cur) == WorkNonceSize && WorkBits(pub, cur) >= difficulty {
		return cur, nil // another caller found it meanwhile
	}
	var start uint64
	if len(cur) == WorkNonceSize {
		start = binary.BigEndian.Uint64(cur) + 1
	}
	nonce, err := SolveWork(ctx, pub, difficulty, start)
	if err != nil {
		return nil, err
	}
	if store != nil {
		if err := store(nonce); err != nil {
			return nil, err
		}
	}
	w.set(nonce)
	return append([]byte(nil), nonce...), nil
}
