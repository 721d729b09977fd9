package signalnats_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalnats"
)

// An offer, an answer and candidates cross instances with the sender's proven ID, as within
// one; the answer comes back the same way.
func TestRelayAcrossInstances(t *testing.T) {
	url := startNATS(t)
	a, b := startInstance(t, testClusterConfig(url)), startInstance(t, testClusterConfig(url))
	ca, cb := connect(t, newKey(t), a.url()), connect(t, newKey(t), b.url())
	ca.welcome()
	cb.welcome()
	ca.waitPeers(cb.c.ID())

	if err := ca.c.SendOffer(cb.c.ID(), "v=0 offer"); err != nil {
		t.Fatal(err)
	}
	off := cb.next("offer", func(m signaling.Message) bool { _, ok := m.(*signaling.Offer); return ok }).(*signaling.Offer)
	if off.From != ca.c.ID() || off.SDP != "v=0 offer" {
		t.Fatalf("offer across instances: from %s sdp %q, want from %s", off.From, off.SDP, ca.c.ID())
	}
	if err := cb.c.SendAnswer(ca.c.ID(), "v=0 answer"); err != nil {
		t.Fatal(err)
	}
	ans := ca.next("answer", func(m signaling.Message) bool { _, ok := m.(*signaling.Answer); return ok }).(*signaling.Answer)
	if ans.From != cb.c.ID() {
		t.Fatalf("answer from %s, want %s", ans.From, cb.c.ID())
	}
	if err := cb.c.SendCandidate(ca.c.ID(), "candidate:1 1 udp 1 127.0.0.1 9 typ host"); err != nil {
		t.Fatal(err)
	}
	ca.next("candidate", func(m signaling.Message) bool { c, ok := m.(*signaling.Candidate); return ok && c.From == cb.c.ID() })

	waitFor(t, "relays counted", func() error {
		if sa, sb := a.srv.Stats(), b.srv.Stats(); sa.ClusterRelayed != 1 || sb.ClusterRelayed != 2 {
			return fmt.Errorf("cluster relays: A %d, B %d; want 1 and 2", sa.ClusterRelayed, sb.ClusterRelayed)
		}
		return nil
	})
	if st := b.cluster.Stats(); st.RelaysIn != 1 || !st.Connected || st.LocalPeers != 1 || st.RemotePeers != 1 {
		t.Errorf("B's cluster stats %+v: want 1 relay in, connected, 1 local and 1 remote peer", st)
	}

	// Peer-left crosses too: b leaves, a (a correspondent) is told.
	cb.close()
	left := ca.next("peer-left", func(m signaling.Message) bool { _, ok := m.(*signaling.PeerLeft); return ok }).(*signaling.PeerLeft)
	if left.ID != cb.c.ID() {
		t.Errorf("peer-left for %s, want %s", left.ID, cb.c.ID())
	}
}

// A welcome's contacts and peer lists are drawn from every instance's members.
func TestContactsAcrossInstances(t *testing.T) {
	url := startNATS(t)
	a, b := startInstance(t, testClusterConfig(url)), startInstance(t, testClusterConfig(url))
	var onA []string
	for range 5 {
		c := connect(t, newKey(t), a.url())
		c.welcome()
		onA = append(onA, c.c.ID())
	}
	waitFor(t, "B knows A's members", func() error {
		if n := b.cluster.Stats().RemotePeers; n != 5 {
			return fmt.Errorf("B knows %d remote peers", n)
		}
		return nil
	})
	cb := connect(t, newKey(t), b.url())
	w := cb.welcome()
	if len(w.Contacts) != 5 {
		t.Fatalf("welcome on B has %d contacts %v, want the 5 members on A", len(w.Contacts), w.Contacts)
	}
	for _, id := range w.Contacts {
		if !slices.Contains(onA, id) {
			t.Errorf("contact %s is not a member on A", id)
		}
	}
	// A member joining on B is sampled on A as well.
	ca := connect(t, newKey(t), a.url())
	ca.welcome()
	ca.waitPeers(cb.c.ID())
}

// A proven hello on instance B closes the older connection of the same ID on instance A with
// replaced, as on one instance.
func TestReplaceAcrossInstances(t *testing.T) {
	url := startNATS(t)
	a, b := startInstance(t, testClusterConfig(url)), startInstance(t, testClusterConfig(url))
	key := newKey(t)
	old := connect(t, key, a.url())
	old.welcome()
	waitFor(t, "B knows the node on A", func() error {
		if b.cluster.Stats().RemotePeers != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	other := connect(t, newKey(t), a.url())
	other.welcome()

	newer := connect(t, key, b.url())
	newer.welcome()
	err, ok := old.ended()
	if !ok {
		t.Fatal("the older connection on A was not replaced")
	}
	var se *signaling.Error
	if !errors.As(err, &se) || se.Code != signaling.CodeReplaced {
		t.Fatalf("older connection on A ended with %v, want replaced", err)
	}
	if st := a.cluster.Stats(); st.Replaced != 1 {
		t.Errorf("A's cluster counted %d replaced, want 1", st.Replaced)
	}
	// The ID now lives on B: once the older connection is gone from A, a relay from A
	// reaches the newer connection.
	waitFor(t, "the older connection leaves A", func() error {
		if n := a.srv.Stats().Peers; n != 1 {
			return fmt.Errorf("A has %d peers", n)
		}
		return nil
	})
	other.waitPeers(key.ID())
	if err := other.c.SendOffer(key.ID(), "v=0"); err != nil {
		t.Fatal(err)
	}
	newer.next("offer", func(m signaling.Message) bool { o, ok := m.(*signaling.Offer); return ok && o.From == other.c.ID() })
}

// The members of an instance that dies without a word are forgotten within PresenceTTL; those
// of an instance that shuts down are forgotten at once.
func TestPresenceExpires(t *testing.T) {
	url := startNATS(t)
	a, b, c := startInstance(t, testClusterConfig(url)), startInstance(t, testClusterConfig(url)), startInstance(t, testClusterConfig(url))
	for range 3 {
		connect(t, newKey(t), b.url()).welcome()
	}
	for range 2 {
		connect(t, newKey(t), c.url()).welcome()
	}
	waitFor(t, "A knows B's and C's members", func() error {
		if n := a.cluster.Stats().RemotePeers; n != 5 {
			return fmt.Errorf("A knows %d", n)
		}
		return nil
	})
	c.stop() // gone, said so
	waitFor(t, "A forgets C's members at once", func() error {
		if n := a.cluster.Stats().RemotePeers; n != 3 {
			return fmt.Errorf("A knows %d", n)
		}
		return nil
	})
	if n := a.cluster.Stats().Expired; n != 0 {
		t.Errorf("%d expired after a graceful stop, want 0", n)
	}
	b.crash() // gone without a word
	waitFor(t, "A forgets B's members within PresenceTTL", func() error {
		if n := a.cluster.Stats().RemotePeers; n != 0 {
			return fmt.Errorf("A knows %d", n)
		}
		return nil
	})
	if n := a.cluster.Stats().Expired; n != 3 {
		t.Errorf("%d expired after B crashed, want 3", n)
	}
}

// A flood of presence (from a compromised or buggy publisher) is bounded by MaxRemotePeers,
// and junk on our subjects is counted and ignored.
func TestPresenceFloodIsBounded(t *testing.T) {
	url := startNATS(t)
	cfg := testClusterConfig(url)
	cfg.MaxRemotePeers = 100
	a := startInstance(t, cfg)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for i := range 10 {
		ids := make([]string, 50)
		for j := range ids {
			ids[j] = newKey(t).ID()
		}
		body := fmt.Sprintf(`{"k":"join","i":"flood","ids":["%s"]}`, strings.Join(ids, `","`))
		if err := nc.Publish(fmt.Sprintf("rtcmesh.presence.%x", fmt.Sprintf("net%d", i)), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	for _, junk := range []struct{ subj, body string }{
		{"rtcmesh.presence.zz", `{}`},
		{"rtcmesh.presence.6e6574", `not json`},
		{"rtcmesh.presence.6e6574", `{"k":"join","i":"x","ids":["not an id!"]}`},
		{"rtcmesh.node.6e6574", `x`},
	} {
		nc.Publish(junk.subj, []byte(junk.body))
	}
	nc.Flush()
	waitFor(t, "A handled the flood", func() error {
		st := a.cluster.Stats()
		if st.RemotePeers != 100 || st.RemoteDropped != 400 || st.Malformed < 3 {
			return fmt.Errorf("stats %+v: want 100 kept, 400 dropped, 3 malformed", st)
		}
		return nil
	})
}

func TestConfigValidate(t *testing.T) {
	for name, mod := range map[string]func(*signalnats.Config){
		"no urls":       func(c *signalnats.Config) { c.URLs = nil },
		"bad scheme":    func(c *signalnats.Config) { c.URLs = []string{"http://x:1"} },
		"ttl too short": func(c *signalnats.Config) { c.PresenceTTL = c.PresenceInterval },
		"prefix":        func(c *signalnats.Config) { c.Prefix = "a.b" },
		"two creds":     func(c *signalnats.Config) { c.User, c.Token = "u", "t" },
		"zero chunk":    func(c *signalnats.Config) { c.PresenceChunk = 0 },
		"zero max":      func(c *signalnats.Config) { c.MaxRemotePeers = 0 },
		"zero inbox":    func(c *signalnats.Config) { c.InboxLength = 0 },
	} {
		cfg := signalnats.DefaultConfig("nats://127.0.0.1:4222")
		mod(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := signalnats.DefaultConfig("nats://127.0.0.1:4222", "tls://u:p@h:1").Validate(); err != nil {
		t.Errorf("default refused: %v", err)
	}
	if got := signalnats.SplitURLs("nats://a:1, nats://b:2", "", "nats://c:3"); len(got) != 3 {
		t.Errorf("SplitURLs: %v", got)
	}
}

// Junk on a member's own subject (no headers, a bad sender, an unknown error code, a claim
// without a time, an unknown kind) is counted and ignored: the member gets nothing and keeps
// its connection.
func TestJunkOnNodeSubjectIsIgnored(t *testing.T) {
	url := startNATS(t)
	a := startInstance(t, testClusterConfig(url))
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The instance subscribes to the member's subject before it announces the member, on
	// the same connection: once the announcement is seen, the subscription is in place.
	joins, err := nc.SubscribeSync(fmt.Sprintf("rtcmesh.presence.%x", "net.test"))
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	c := connect(t, newKey(t), a.url())
	c.welcome()
	if _, err := joins.NextMsg(wait); err != nil {
		t.Fatalf("no presence for the member: %v", err)
	}
	subj := fmt.Sprintf("rtcmesh.node.%x.%s", "net.test", c.c.ID())
	msgs := []map[string]string{
		nil,
		{"Rtcmesh-Kind": "relay", "Rtcmesh-Instance": "x", "Rtcmesh-From": "not an id"},
		{"Rtcmesh-Kind": "error", "Rtcmesh-Instance": "x", "Rtcmesh-From": c.c.ID(), "Rtcmesh-Code": "bad_proof"},
		{"Rtcmesh-Kind": "claim", "Rtcmesh-Instance": "x", "Rtcmesh-Time": "soon"},
		{"Rtcmesh-Kind": "launch", "Rtcmesh-Instance": "x"},
		{"Rtcmesh-Kind": "relay", "Rtcmesh-From": newKey(t).ID()}, // no instance
	}
	for _, h := range msgs {
		m := nats.NewMsg(subj)
		for k, v := range h {
			m.Header.Set(k, v)
		}
		m.Data = []byte(`{"type":"offer"}`)
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	nc.Flush()
	waitFor(t, "junk counted", func() error {
		if n := a.cluster.Stats().Malformed; n != uint64(len(msgs)) {
			return fmt.Errorf("%d malformed, want %d", n, len(msgs))
		}
		return nil
	})
	if st := a.cluster.Stats(); st.RelaysIn != 0 || st.Replaced != 0 {
		t.Errorf("stats %+v: junk was delivered or replaced a member", st)
	}
	if !c.c.Connected() || a.srv.Stats().Peers != 1 {
		t.Error("the member lost its connection to junk")
	}
}
