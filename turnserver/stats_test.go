package turnserver

import (
	"testing"

	"github.com/pion/stun/v4"
)

// TestUserAllocationsHistogram checks the per-user histogram: three allocations of one user
// and one of another fall in the buckets "at most 4" and "at most 1", and closing them empties
// it.
func TestUserAllocationsHistogram(t *testing.T) {
	cfg := loopbackConfig(t, newTestClock())
	srv := startServer(t, cfg)
	userA, passA := srv.Credentials("node-a")
	userB, passB := srv.Credentials("node-b")
	var clients []*rawTURN
	for _, c := range [][2]string{{userA, passA}, {userA, passA}, {userA, passA}, {userB, passB}} {
		r := newRawTURN(t, srv, c[0], c[1])
		wantSuccess(t, "Allocate", r.allocate())
		clients = append(clients, r)
	}
	h := srv.Stats().UserAllocations
	want := UserAllocations{Users: 2, Max: 3}
	want.Buckets[0], want.Buckets[2] = 1, 1
	if h != want {
		t.Fatalf("UserAllocations = %+v, want %+v", h, want)
	}
	for _, r := range clients {
		wantSuccess(t, "Refresh to 0", r.authed(stun.MethodRefresh, lifetime(0)))
	}
	waitFor(t, "every allocation to be released", func() bool { return srv.Stats().UserAllocations == UserAllocations{} })
}
