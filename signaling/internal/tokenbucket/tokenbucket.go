// Package tokenbucket is the rate limiter shared by the signaling server (which enforces the
// per-connection message rate) and the Go client (which paces itself to stay under it).
// Time is passed in by the caller, so tests drive it without sleeping. A Bucket is not safe
// for concurrent use; each has one owner.
package tokenbucket

import (
	"fmt"
	"time"
)

// Bucket allows Rate events per second on average and up to Burst back to back.
type Bucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

// New returns a full bucket. rate must be > 0 and burst >= 1.
func New(rate float64, burst int, now time.Time) (*Bucket, error) {
	if !(rate > 0) {
		return nil, fmt.Errorf("tokenbucket: rate %v must be positive", rate)
	}
	if burst < 1 {
		return nil, fmt.Errorf("tokenbucket: burst %d must be at least 1", burst)
	}
	return &Bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}, nil
}

// Allow takes one token if one is available at time now and reports whether it did.
// A clock that goes backwards adds no tokens.
func (b *Bucket) Allow(now time.Time) bool {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens += elapsed.Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}
