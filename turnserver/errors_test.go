package turnserver

import (
	"testing"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

func reasonOf(m *stun.Message) string {
	var code stun.ErrorCodeAttribute
	if code.GetFrom(m) != nil {
		return ""
	}
	return string(code.Reason)
}

// challenge makes r learn the realm and nonce without allocating.
func (r *rawTURN) challenge() {
	r.t.Helper()
	resp := r.roundTrip(stun.NewType(stun.MethodAllocate, stun.ClassRequest), requestUDPTransport)
	var realm stun.Realm
	if err := r.nonce.GetFrom(resp); err != nil {
		r.t.Fatalf("challenge without nonce: %v", err)
	}
	if err := realm.GetFrom(resp); err != nil {
		r.t.Fatalf("challenge without realm: %v", err)
	}
	r.realm = realm.String()
	if reasonOf(resp) == "" {
		r.t.Errorf("401 challenge without a reason phrase")
	}
}

// TestErrorResponsesCarryReasons checks that error responses carry the standard reason phrase
// and stay signed with the client's key: 486 for a user over quota (pion/turn sends it without
// one), 403 for a denied peer, and 440 for an Allocate asking for an address family the relay
// does not serve (pion/turn would answer 508).
func TestErrorResponsesCarryReasons(t *testing.T) {
	cfg := loopbackConfig(t, newTestClock())
	cfg.MaxAllocationsPerUser = 1
	srv := startServer(t, cfg)
	user, pass := srv.Credentials("node-a")
	first := newRawTURN(t, srv, user, pass)
	if resp := first.allocate(); resp.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("Allocate answered %v code %v", resp.Type, errorCode(resp))
	}

	check := func(what string, resp *stun.Message, r *rawTURN, want stun.ErrorCode, reason string) {
		t.Helper()
		if code := errorCode(resp); code != want {
			t.Fatalf("%s answered %v code %v, want %d", what, resp.Type, code, want)
		}
		if got := reasonOf(resp); got != reason {
			t.Errorf("%s: reason phrase %q, want %q", what, got, reason)
		}
		if err := r.integrity().Check(resp); err != nil {
			t.Errorf("%s: response not signed with the client's key: %v", what, err)
		}
	}

	second := newRawTURN(t, srv, user, pass)
	check("Allocate over the per-user quota", second.allocate(), second, stun.CodeAllocQuotaReached, "Allocation Quota Reached")
	check("CreatePermission to a denied peer", first.authed(stun.MethodCreatePermission, peerAttr("10.0.0.1:9")),
		first, stun.CodeForbidden, "Forbidden")

	user6, pass6 := srv.Credentials("node-b")
	v6 := newRawTURN(t, srv, user6, pass6)
	v6.challenge()
	check("Allocate of an IPv6 relay on an IPv4 relay", v6.authed(stun.MethodAllocate, requestUDPTransport, turn.RequestedAddressFamilyIPv6),
		v6, stun.CodeAddrFamilyNotSupported, "Address Family not Supported")
	// The refusal is not remembered beyond its answer: the same client can then allocate IPv4.
	if resp := v6.authed(stun.MethodAllocate, requestUDPTransport); resp.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("IPv4 Allocate after the 440 answered %v code %v", resp.Type, errorCode(resp))
	}
	srv.allocMu.Lock()
	n := len(srv.pendingAuth) + len(srv.familyRefusals)
	srv.allocMu.Unlock()
	if n != 0 {
		t.Errorf("%d records left in pendingAuth and familyRefusals after every response left", n)
	}
}
