package node_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/node/nodetest"
	"github.com/rtcmesh/rtcmesh/routing"
	"github.com/rtcmesh/rtcmesh/wire"
)

// waitDirect waits for a direct message at nd from from with data.
func waitDirect(t *testing.T, nd *node.Node, from, data string) node.DirectMessage {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case dm := <-nd.DirectMessages():
			if dm.From == from && string(dm.Data) == data {
				return dm
			}
		case <-timeout:
			t.Fatalf("%s: no direct message %q from %s", nd.ID(), data, from)
		}
	}
}

// sendRetrying sends data from src to dst until dst receives it, at most attempts times and
// waiting up to 5 s for each: routed delivery is best-effort (Send's contract: a relay drops
// what its route no longer reaches, and a loaded machine's heartbeats close links), so one
// lost envelope is no failure, but a route that never delivers is.
func sendRetrying(t *testing.T, src, dst *node.Node, data string, attempts int) {
	t.Helper()
	for i := range attempts {
		if err := src.Send(dst.ID(), []byte(data)); err != nil {
			t.Fatalf("Send %q to %s (attempt %d): %v", data, dst.ID(), i+1, err)
		}
		deadline := time.After(5 * time.Second)
	wait:
		for {
			select {
			case dm := <-dst.DirectMessages():
				if dm.From == src.ID() && string(dm.Data) == data {
					return
				}
			case <-deadline:
				t.Logf("attempt %d: %q from %s not delivered to %s within 5 s; router stats %+v",
					i+1, data, src.ID(), dst.ID(), src.Stats().Routing)
				break wait
			}
		}
	}
	t.Fatalf("%s: no direct message %q from %s after %d attempts", dst.ID(), data, src.ID(), attempts)
}

// Direct messages reach a neighbour over its link and a node with no link through the
// overlay, signed: the receiver sees the sender's proven ID.
func TestSendDirect(t *testing.T) {
	m := newMesh(t, 20, 500*time.Millisecond)
	nodetest.WaitFor(t, 60*time.Second, "overlay of 20 connected", func() error { return m.OverlayOK(m.nodes) })
	src := m.nodes[0]
	// A neighbour: over the link.
	neighbours := map[string]bool{src.ID(): true}
	for _, nb := range src.Neighbors() {
		neighbours[nb.ID] = true
	}
	nb := src.Neighbors()[0].ID
	var nbNode *node.Node
	for _, nd := range m.nodes {
		if nd.ID() == nb {
			nbNode = nd
		}
	}
	if err := src.Send(nb, []byte("hello neighbour")); err != nil {
		t.Fatalf("Send to a neighbour: %v", err)
	}
	dm := waitDirect(t, nbNode, src.ID(), "hello neighbour")
	if dm.SentAt.IsZero() || dm.ReceivedAt.Before(dm.SentAt.Add(-time.Second)) {
		t.Errorf("times: sent %v, received %v", dm.SentAt, dm.ReceivedAt)
	}
	// Not a neighbour: routed by the overlay, unless a transient link (a shuffle reply's)
	// happens to be open to it, when it goes over that link. The router's Sent counter
	// tells which; the first routed one is the test.
	var far *node.Node
	for _, nd := range m.nodes {
		if neighbours[nd.ID()] || !src.RouteKnown(nd.ID()) {
			continue
		}
		before := src.Stats().Routing.Sent
		sendRetrying(t, src, nd, "hello far", 4)
		if src.Stats().Routing.Sent > before {
			far = nd
			break
		}
	}
	if far == nil {
		t.Fatal("no message was routed through the overlay: every non-neighbour with a route had a link")
	}
	// The answer retraces the path the message taught the relays.
	sendRetrying(t, far, src, "hello back", 4)
	if s := src.Stats(); s.RoutedSent < 2 || s.RoutedReceived < 1 {
		t.Errorf("stats %+v", s)
	}
	// Nobody known: ErrNoRoute, nothing sent.
	stranger := nodetest.Key(t, "stranger").ID()
	if err := src.Send(stranger, []byte("x")); !errors.Is(err, node.ErrNoRoute) {
		t.Errorf("Send to a stranger: %v, want ErrNoRoute", err)
	}
}

// A routed message that claims another node as its source, signed with the wrong key, or
// replayed, is refused: never delivered, counted.
func TestSendForgedSenderRefused(t *testing.T) {
	m := newMesh(t, 3, 500*time.Millisecond)
	nodetest.WaitFor(t, 30*time.Second, "3 nodes connected", func() error { return m.OverlayOK(m.nodes) })
	target, victim := m.nodes[0], m.nodes[1]
	ev := newRoutedSender(t, m, target)
	envelope := func(source string, key *identity.Key, body string) routing.Message {
		return ev.envelope(source, key, routing.KindDirect, []byte(body))
	}
	send, evilKey := ev.send, ev.key
	// The victim's ID with the attacker's key and signature.
	send(envelope(victim.ID(), evilKey, "forged"))
	// The attacker's own, honest message, then the same bytes again (a replay).
	honest := envelope(evilKey.ID(), evilKey, "honest")
	send(honest)
	send(honest)
	// A body altered after signing.
	altered := envelope(evilKey.ID(), evilKey, "original")
	altered.Body = []byte("altered!")
	send(altered)
	waitDirect(t, target, evilKey.ID(), "honest")
	nodetest.WaitFor(t, 10*time.Second, "three refusals counted", func() error {
		if s := target.Stats(); s.RoutedRefused != 3 || s.RoutedReceived != 1 {
			return fmt.Errorf("refused %d, received %d", s.RoutedRefused, s.RoutedReceived)
		}
		return nil
	})
	select {
	case dm := <-target.DirectMessages():
		t.Fatalf("delivered %q from %s", dm.Data, dm.From)
	case <-time.After(200 * time.Millisecond):
	}
}

// routedSender is a bare Transport linked to target, whose test hands it routed envelopes
// signed by any key: a hostile neighbour.
type routedSender struct {
	t      *testing.T
	key    *identity.Key
	target *node.Node
	send   func(routing.Message)
}

func newRoutedSender(t *testing.T, m *mesh, target *node.Node) *routedSender {
	t.Helper()
	key := nodetest.Key(t, "evil")
	tr, err := m.net.Transport(key.ID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	tr.Dial(target.ID())
	waitForLinkUp(t, tr, target.ID())
	return &routedSender{t: t, key: key, target: target, send: func(msg routing.Message) {
		t.Helper()
		frame, err := wire.AppendRouting(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Send(target.ID(), frame); err != nil {
			t.Fatal(err)
		}
	}}
}

// envelope is a ROUTED envelope to the target claiming source, signed with key.
func (s *routedSender) envelope(source string, key *identity.Key, kind routing.Kind, body []byte) routing.Message {
	s.t.Helper()
	msg := routing.Message{Type: routing.Routed, Source: source, Target: s.target.ID(), Kind: kind,
		HopLimit: 3, Time: time.Now().UnixMilli(), Body: body}
	sig, err := key.Sign(node.RoutedTranscript("", &msg))
	if err != nil {
		s.t.Fatal(err)
	}
	msg.Proof = append(append([]byte(nil), key.PublicKey()...), sig...)
	return msg
}
