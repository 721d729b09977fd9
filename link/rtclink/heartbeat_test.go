//go:build !js

package rtclink

import (
	"testing"

	"github.com/rtcmesh/rtcmesh/link"
)

// TestIdleLinkTakesTurnsToPing: on an idle link one end's ping answers for both, so pings are
// skipped, and the link stays up through many heartbeat intervals (each end keeps hearing from
// the other).
func TestIdleLinkTakesTurnsToPing(t *testing.T) {
	h := newHub(t)
	a, b := newNode(t, h, nil), newNode(t, h, nil)
	a.Dial(b.ID())
	a.rec.waitEvent(t, link.LinkUp, b.ID())
	b.rec.waitEvent(t, link.LinkUp, a.ID())
	const ticks = 30 // heartbeat ticks of both ends: 15 intervals of 200 ms (testConfig)
	waitCond(t, "30 heartbeat ticks", func() bool {
		return a.pingsSent.Load()+a.pingsSkipped.Load()+b.pingsSent.Load()+b.pingsSkipped.Load() >= ticks
	})
	skipped := a.pingsSkipped.Load() + b.pingsSkipped.Load()
	sent := a.pingsSent.Load() + b.pingsSent.Load()
	t.Logf("pings sent %d, skipped %d", sent, skipped)
	if skipped == 0 {
		t.Error("no ping skipped on an idle link")
	}
	for _, n := range []*node{a, b} {
		if got := count(n.rec.snapshot(), link.LinkDown, ""); got != 0 {
			t.Errorf("%d links went down", got)
		}
		if len(n.Links()) != 1 {
			t.Errorf("%s: %d links, want 1", n.ID(), len(n.Links()))
		}
	}
}
