//go:build !js

package rtclink

import (
	"strings"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
)

func TestDefaultConfigIsValid(t *testing.T) {
	id, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig(id, hubSignaler{})
	if err := c.validate(); err != nil {
		t.Fatalf("DefaultConfig is invalid: %v", err)
	}
	if c.HeartbeatTimeout != link.DefaultHeartbeatTimeout {
		t.Errorf("HeartbeatTimeout %v, want link.DefaultHeartbeatTimeout", c.HeartbeatTimeout)
	}
}

// A Config with several faults reports the same one every time: validate must not depend on
// map iteration order.
func TestValidateIsDeterministic(t *testing.T) {
	id, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c := Config{Key: id, Signaler: hubSignaler{}} // every duration and size zero
	first := c.validate()
	if first == nil || !strings.Contains(first.Error(), "ICEDisconnectedTimeout") {
		t.Fatalf("zero Config: %v, want the first duration reported", first)
	}
	for range 50 {
		if err := c.validate(); err == nil || err.Error() != first.Error() {
			t.Fatalf("validate reported %v, then %v", first, err)
		}
	}
}

func TestSetHeartbeatTimeout(t *testing.T) {
	for _, tc := range []struct{ timeout, wantInterval time.Duration }{
		{5 * time.Second, time.Second},        // the defaults fit: interval kept
		{2 * time.Second, time.Second},        // exactly two pings per timeout: kept
		{time.Second, 250 * time.Millisecond}, // too tight: a quarter of the timeout
		{60 * time.Second, time.Second},       // longer timeouts keep the interval
	} {
		c := DefaultConfig(nil, nil)
		c.SetHeartbeatTimeout(tc.timeout)
		if c.HeartbeatTimeout != tc.timeout || c.HeartbeatInterval != tc.wantInterval {
			t.Errorf("SetHeartbeatTimeout(%v): timeout %v, interval %v; want interval %v",
				tc.timeout, c.HeartbeatTimeout, c.HeartbeatInterval, tc.wantInterval)
		}
	}
}
