package turnserver

import (
	"sync"
	"time"
)

// tokenBucket limits a byte rate: it holds up to depth tokens (bytes), gains
// rate tokens per second, and a datagram of n bytes passes only if n tokens
// are there. Time comes from the caller so tests control it.
type tokenBucket struct {
	mu     sync.Mutex
	rate   int64 // bytes per second
	depth  int64 // bytes
	tokens int64
	last   time.Time
	// remainder carries the sub-token part of elapsed*rate between refills,
	// so slow rates with frequent calls still refill.
	remainder int64
}

func newTokenBucket(rate, depth int64, now time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, depth: depth, tokens: depth, last: now}
}

// allow takes n tokens at time now and reports whether there were enough.
func (b *tokenBucket) allow(n int, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.last = now
		if b.tokens < b.depth {
			// Cap elapsed first so elapsed*rate cannot overflow.
			if limit := time.Duration(b.depth/b.rate+1) * time.Second; elapsed > limit {
				elapsed = limit
			}
			scaled := int64(elapsed)*b.rate + b.remainder
			b.tokens += scaled / int64(time.Second)
			b.remainder = scaled % int64(time.Second)
			if b.tokens >= b.depth {
				b.tokens, b.remainder = b.depth, 0
			}
		}
	}
	if int64(n) > b.tokens {
		return false
	}
	b.tokens -= int64(n)
	return true
}
