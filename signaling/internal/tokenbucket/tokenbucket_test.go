package tokenbucket

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b, err := New(2, 3, t0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if !b.Allow(t0) {
			t.Fatalf("burst token %d refused", i)
		}
	}
	if b.Allow(t0) {
		t.Fatal("4th token at the same instant allowed")
	}
	if !b.Allow(t0.Add(500 * time.Millisecond)) {
		t.Fatal("token refused after refill time")
	}
	if b.Allow(t0.Add(500 * time.Millisecond)) {
		t.Fatal("second token allowed without refill")
	}
	if b.Allow(t0) {
		t.Fatal("backwards clock granted a token")
	}
	// A long pause refills only up to burst.
	later := t0.Add(time.Hour)
	n := 0
	for b.Allow(later) {
		n++
	}
	if n != 3 {
		t.Fatalf("after a long pause got %d tokens, want burst 3", n)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(0, 1, time.Time{}); err == nil {
		t.Error("rate 0 accepted")
	}
	if _, err := New(1, 0, time.Time{}); err == nil {
		t.Error("burst 0 accepted")
	}
}
