package signalserver_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

func TestChallengeIsFirstAndFresh(t *testing.T) {
	_, url := startServer(t, signalserver.Config{})
	var nonces [][]byte
	for range 3 {
		c := dialRaw(t, url, nil)
		ch := c.awaitChallenge()
		if ch.Version != signaling.ProtocolVersion {
			t.Fatalf("challenge version %d, want %d", ch.Version, signaling.ProtocolVersion)
		}
		for _, n := range nonces {
			if bytes.Equal(n, c.nonce) {
				t.Fatalf("two connections got the same nonce %x", n)
			}
		}
		if bytes.Equal(c.nonce, make([]byte, signaling.NonceSize)) {
			t.Fatal("nonce is all zeros")
		}
		nonces = append(nonces, c.nonce)
	}
}

// expectVictimUndisturbed checks that victim is still the registered holder of its ID: a
// relay from peer reaches it, stamped with peer's ID, and it received nothing before that.
func expectVictimUndisturbed(t *testing.T, srv *signalserver.Server, victim, peer *rawClient, victimName, peerName string, peers int) {
	t.Helper()
	peer.send(&signaling.Offer{To: idOf(victimName), SDP: "still-there?"})
	if got := victim.read(); !equal(got, &signaling.Offer{From: idOf(peerName), SDP: "still-there?"}) {
		t.Fatalf("victim got %#v, want the offer from %s", got, peerName)
	}
	st := srv.Stats()
	if st.Peers != peers || st.Rejections[signaling.CodeReplaced] != 0 {
		t.Fatalf("stats = %+v, want %d peers and no replacement", st, peers)
	}
}

func TestImpersonationWithoutKeyIsRefused(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{})
	victim := dialRaw(t, url, nil)
	victim.hello("alice", "lobby")
	bob := dialRaw(t, url, nil)
	bob.hello("bob", "lobby")

	attempts := map[string]func(c *rawClient) *signaling.Hello{
		// The attacker claims alice's ID and proves its own key.
		"claimed id, own key": func(c *rawClient) *signaling.Hello {
			h := c.helloFor("mallory", "lobby", "")
			h.ID = idOf("alice")
			return h
		},
		// The attacker presents alice's public key (it is public) with its own signature.
		"victim's public key, own signature": func(c *rawClient) *signaling.Hello {
			h := c.helloFor("mallory", "lobby", "")
			h.ID = ""
			h.PublicKey = signaling.EncodeBinary(keyFor("alice").PublicKey())
			return h
		},
		// Same, also claiming the ID.
		"victim's public key and id, own signature": func(c *rawClient) *signaling.Hello {
			h := c.helloFor("mallory", "lobby", "")
			h.ID = idOf("alice")
			h.PublicKey = signaling.EncodeBinary(keyFor("alice").PublicKey())
			return h
		},
	}
	for name, build := range attempts {
		c := dialRaw(t, url, nil)
		c.send(build(c))
		e := c.expectFatal(signaling.CodeBadProof)
		t.Logf("%s: %s", name, e.Message)
	}
	if got := srv.Stats().Rejections[signaling.CodeBadProof]; got != uint64(len(attempts)) {
		t.Errorf("bad_proof rejections = %d, want %d", got, len(attempts))
	}
	expectVictimUndisturbed(t, srv, victim, bob, "alice", "bob", 2)
}

func TestChallengeReplayedHelloIsRefused(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{})
	victim := dialRaw(t, url, nil)
	captured := victim.helloFor("alice", "lobby", "")
	victim.send(captured)
	if _, ok := victim.read().(*signaling.Welcome); !ok {
		t.Fatal("alice was not welcomed")
	}
	bob := dialRaw(t, url, nil)
	bob.hello("bob", "lobby")

	// The captured hello, replayed on another connection (another nonce), proves nothing.
	replay := dialRaw(t, url, nil)
	replay.awaitChallenge()
	replay.send(captured)
	e := replay.expectFatal(signaling.CodeBadProof)
	if !strings.Contains(e.Message, "challenge") {
		t.Errorf("bad_proof message %q does not say what the signature failed to cover", e.Message)
	}
	expectVictimUndisturbed(t, srv, victim, bob, "alice", "bob", 2)
}

func TestChallengeSignatureForAnotherNetworkIsRefused(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{})
	c := dialRaw(t, url, nil)
	c.awaitChallenge()
	h := signHello(t, keyFor("alice"), c.nonce, "other", "")
	h.Network = "lobby" // signed for "other", presented for "lobby"
	c.send(h)
	c.expectFatal(signaling.CodeBadProof)

	// And a signature over another nonce for the right network.
	c = dialRaw(t, url, nil)
	c.awaitChallenge()
	wrong := bytes.Clone(c.nonce)
	wrong[0] ^= 1
	c.send(signHello(t, keyFor("alice"), wrong, "lobby", ""))
	c.expectFatal(signaling.CodeBadProof)
	if st := srv.Stats(); st.Peers != 0 || st.Welcomed != 0 {
		t.Fatalf("stats = %+v, want nobody admitted", st)
	}
}

func TestChallengeOldProtocolHelloGetsVersionError(t *testing.T) {
	_, url := startServer(t, signalserver.Config{})
	cases := map[string]string{
		`{"type":"hello","id":"alice","network":"lobby"}`:                      "this server speaks signaling protocol 2; hello had version 1",
		`{"type":"hello","version":1,"id":"alice","network":"lobby"}`:          "this server speaks signaling protocol 2; hello had version 1",
		`{"type":"hello","version":3,"network":"lobby","proof":{"alg":"new"}}`: "this server speaks signaling protocol 2; hello had version 3",
	}
	for frame, want := range cases {
		c := dialRaw(t, url, nil)
		c.sendRaw(frame) // a version 1 client does not wait for the challenge
		e := c.expectFatal(signaling.CodeUnsupportedVersion)
		if !strings.HasPrefix(e.Message, want) {
			t.Errorf("%s: message %q, want it to start with %q", frame, e.Message, want)
		}
	}
}

func TestSpoofedFromNeverReachesAnyone(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{})
	victim := dialRaw(t, url, nil)
	victim.hello("alice", "lobby")
	bob := dialRaw(t, url, nil)
	bob.hello("bob", "lobby")

	// A connection that never proved any key cannot relay at all.
	unproven := dialRaw(t, url, nil)
	unproven.awaitChallenge()
	unproven.sendAndExpectFatal(`{"type":"offer","to":"`+idOf("bob")+`","from":"`+idOf("alice")+`","sdp":"evil"}`,
		signaling.CodeHelloRequired)

	// A proven client cannot relay as anyone but itself: every "from" it writes is replaced by
	// its own proven ID, on every relayed type.
	mallory := dialRaw(t, url, nil)
	mallory.hello("mallory", "lobby")
	alice := idOf("alice")
	mallory.send(&signaling.Offer{To: idOf("bob"), From: alice, SDP: "evil"})
	mallory.send(&signaling.Answer{To: idOf("bob"), From: alice, SDP: "evil"})
	mallory.send(&signaling.Candidate{To: idOf("bob"), From: alice, Candidate: "evil"})
	mallory.sendRaw(`{"type":"offer","to":"` + idOf("bob") + `","from":"` + alice + `","FROM":"x","sdp":"evil"}`)
	mallory.expectError(signaling.CodeMalformed)
	for range 3 {
		m := bob.read()
		var from string
		switch m := m.(type) {
		case *signaling.Offer:
			from = m.From
		case *signaling.Answer:
			from = m.From
		case *signaling.Candidate:
			from = m.From
		default:
			t.Fatalf("bob got %#v", m)
		}
		if from != idOf("mallory") {
			t.Fatalf("bob got %#v with from %q, want mallory's proven ID", m, from)
		}
	}
	// Nothing else reached bob or the victim.
	bob.send(&signaling.PeersRequest{})
	if _, ok := bob.read().(*signaling.PeerList); !ok {
		t.Fatal("bob received something other than the stamped relays")
	}
	expectVictimUndisturbed(t, srv, victim, bob, "alice", "bob", 3)
}

func TestImpersonationGetsNoTURNCredentials(t *testing.T) {
	var mu sync.Mutex
	var minted []string
	secret := []byte("team-secret")
	_, url := startServer(t, signalserver.Config{
		NetworkSecret: signalserver.StaticSecrets(map[string][]byte{"team": secret}),
		ICEServers: func(id string) []signaling.ICEServer {
			mu.Lock()
			minted = append(minted, id)
			mu.Unlock()
			return []signaling.ICEServer{{URLs: []string{"turn:127.0.0.1:3478"}, Username: "expiry:" + id, Credential: "c"}}
		},
	})
	// An attacker with the victim's ID but not its key gets no welcome, hence no credentials.
	for _, network := range []string{"lobby", "team"} {
		c := dialRaw(t, url, nil)
		h := c.helloFor("mallory", network, "")
		h.ID = idOf("alice")
		h.PublicKey = signaling.EncodeBinary(keyFor("alice").PublicKey())
		c.send(h)
		// The proof is checked before the token: a closed network answers bad_proof too.
		c.expectFatal(signaling.CodeBadProof)
	}
	mu.Lock()
	if len(minted) != 0 {
		t.Fatalf("credentials minted for %v before any proof", minted)
	}
	mu.Unlock()
	// The key holder gets credentials for its own, proven ID.
	w := dialRaw(t, url, nil).hello("alice", "lobby")
	if len(w.ICEServers) != 1 || w.ICEServers[0].Username != "expiry:"+idOf("alice") {
		t.Fatalf("alice's ICE servers = %+v", w.ICEServers)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(minted) != 1 || minted[0] != idOf("alice") {
		t.Fatalf("credentials minted for %v, want only alice's proven ID", minted)
	}
}

func TestReplacedOnlyByTheKeyHolder(t *testing.T) {
	_, url := startServer(t, signalserver.Config{})
	old := dialRaw(t, url, nil)
	old.hello("alice", "lobby")
	// Same key, new connection (a rebooted node): the old one is told its key is in use.
	dialRaw(t, url, nil).hello("alice", "lobby")
	e := old.expectFatal(signaling.CodeReplaced)
	if !strings.Contains(e.Message, "identity key") {
		t.Errorf("replaced message %q does not say the key is in use elsewhere", e.Message)
	}
}
