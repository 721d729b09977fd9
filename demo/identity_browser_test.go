package demo

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/chat"
	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
	"github.com/rtcmesh/rtcmesh/link/rtclink"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/rtcnode"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalclient"
	"github.com/rtcmesh/rtcmesh/wire"
)

// TestBrowserIdentityPersists checks the browser peer's identity key: a tab keeps its ID
// across a reload (its key is in IndexedDB, its name in sessionStorage), a second tab of the
// same browser context gets an ID of its own, and ?ephemeral=1 gives a new ID on every load.
func TestBrowserIdentityPersists(t *testing.T) {
	d, browser := startBrowserDemo(t, 3, 21)

	a := openTab(t, browser, "tab A")
	idA, _ := a.open(t, d.URL())
	if kind, err := eval[string](a, `globalThis.rtcmesh.identity`); err != nil || kind != "tab" {
		t.Fatalf("tab A's identity is %q (%v), want the tab's stored key", kind, err)
	}

	t.Run("ReloadKeepsTheID", func(t *testing.T) {
		again := a.reload(t)
		if again != idA {
			t.Fatalf("tab A was %s, after a reload it is %s", idA, again)
		}
		// The reloaded tab is a working member under its old ID: its line reaches the Go nodes.
		text := "tab A, reloaded"
		a.send(t, text)
		goNodesDeliver(t, d.Nodes(), text, idA)
	})

	t.Run("SecondTabGetsItsOwnID", func(t *testing.T) {
		b := openTabBeside(t, a, "tab B (beside A)")
		idB, _ := b.open(t, d.URL())
		if idB == idA {
			t.Fatalf("two tabs of one browser context are both peer %s", idA)
		}
		// They do share the origin's IndexedDB: both keys are in it.
		keys, err := eval[int](b, `new Promise((resolve, reject) => {
			const open = indexedDB.open("rtcmesh-identity");
			open.onerror = () => reject(open.error);
			open.onsuccess = () => {
				const req = open.result.transaction("keys").objectStore("keys").count();
				req.onsuccess = () => { open.result.close(); resolve(req.result) };
				req.onerror = () => reject(req.error);
			};
		})`)
		if err != nil || keys < 2 {
			t.Errorf("the browser context's IndexedDB holds %d keys (%v), want both tabs'", keys, err)
		}
		if again := b.reload(t); again != idB {
			t.Errorf("tab B was %s, after a reload it is %s", idB, again)
		}
	})

	t.Run("EphemeralIdentityChangesOnReload", func(t *testing.T) {
		e := openTab(t, browser, "tab E (ephemeral)")
		idE, _ := e.open(t, d.URL()+"?ephemeral=1")
		if kind, err := eval[string](e, `globalThis.rtcmesh.identity`); err != nil || kind != "ephemeral" {
			t.Fatalf("with ?ephemeral=1 the identity is %q (%v)", kind, err)
		}
		if again := e.reload(t); again == idE {
			t.Fatalf("an ephemeral tab kept its ID %s across a reload", idE)
		}
	})

	for _, tb := range []*tab{a} {
		if errs := tb.pageErrors(); len(errs) > 0 {
			t.Errorf("%s logged errors:\n%s", tb.name, strings.Join(errs, "\n"))
		}
	}
}

// hostile is a Go peer that speaks the link protocol honestly (its links prove their keys) but
// sends hand-built frames: forged, replayed or badly signed broadcasts.
type hostile struct {
	key *identity.Key
	tr  *rtclink.Transport

	mu     sync.Mutex
	events []link.Event
	wake   chan struct{}
}

// startHostile connects a hostile peer to the demo's signaling server with signalKey, and
// proves linkKey on its links (the same key for an honest link; another to impersonate).
func startHostile(t *testing.T, d *Demo, signalKey, linkKey *identity.Key) *hostile {
	t.Helper()
	sc, err := signalclient.New(signalclient.DefaultConfig(d.SignalURL(), signalKey, d.cfg.Network))
	if err != nil {
		t.Fatal(err)
	}
	lc := rtclink.DefaultConfig(linkKey, rtcnode.Signaler(sc))
	lc.SettingEngine = rtclink.NetworkSettings(d.ICENetworks())
	lc.MDNS = rtclink.MDNSDisabled
	tr, err := rtclink.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	h := &hostile{key: signalKey, tr: tr, wake: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = sc.Run(ctx) }()
	go func() {
		defer wg.Done()
		for ev := range sc.Events() {
			switch m := ev.Message.(type) {
			case *signaling.Welcome:
				var servers []rtclink.ICEServer
				for _, s := range m.ICEServers {
					servers = append(servers, rtclink.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
				}
				tr.SetICEServers(servers)
			default:
				rtcnode.HandleServerSignal(tr, ev.Message)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for ev := range tr.Events() {
			h.mu.Lock()
			h.events = append(h.events, ev)
			h.mu.Unlock()
			select {
			case h.wake <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		tr.Close()
		wg.Wait()
	})
	waitUntil(t, "the hostile peer is welcomed by the signaling server", sc.Connected)
	return h
}

// waitEvent waits until the hostile peer's links reported an event of type typ from peer.
func (h *hostile) waitEvent(t *testing.T, typ link.EventType, peer string) link.Event {
	t.Helper()
	deadline := time.NewTimer(browserWait)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		for _, ev := range h.events {
			if ev.Type == typ && ev.Peer == peer {
				h.mu.Unlock()
				return ev
			}
		}
		h.mu.Unlock()
		select {
		case <-h.wake:
		case <-deadline.C:
			t.Fatalf("the hostile peer's link to %s: no %v within %v", short(peer), typ, browserWait)
		}
	}
}

// gossip builds a GOSSIP from origin signed by h's key (which only verifies when origin is h's
// own ID), the way node signs broadcasts.
func (h *hostile) gossip(t *testing.T, origin string, seq uint64, at time.Time, text string) gossip.Message {
	t.Helper()
	payload, err := chat.Encode(chat.Message{Text: text, SentAt: at})
	if err != nil {
		t.Fatal(err)
	}
	m := gossip.Message{Type: gossip.Gossip, Origin: origin, Hops: 1, Seq: seq, Time: at.UnixMilli(), Payload: payload}
	copy(m.ID[:], fmt.Sprintf("%-16.16s", text))
	binary.BigEndian.PutUint64(m.ID[8:], uint64(at.UnixNano())^seq)
	sig, err := h.key.Sign(node.BroadcastTranscript(&m))
	if err != nil {
		t.Fatal(err)
	}
	m.Proof = append(h.key.PublicKey(), sig...)
	return m
}

// send encodes m as a wire frame and sends it on the link to peer.
func (h *hostile) send(t *testing.T, peer string, m gossip.Message) {
	t.Helper()
	frame, err := wire.AppendGossip(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.tr.Send(peer, frame); err != nil {
		t.Fatalf("sending to %s: %v", short(peer), err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(browserWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, browserWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// refusals are the browser peer's counters of refused broadcasts (rtcmesh.snapshot().stats).
type refusals struct {
	Signature  int `json:"refusedSignature"`
	Replay     int `json:"refusedReplay"`
	SelfOrigin int `json:"refusedSelfOrigin"`
	Clock      int `json:"refusedClock"`
	Delivered  int `json:"delivered"`
}

func (tb *tab) refusals(t *testing.T) refusals {
	t.Helper()
	r, err := eval[refusals](tb, `globalThis.rtcmesh.snapshot().then(s => s.stats)`)
	if err != nil {
		t.Fatalf("%s: snapshot: %v", tb.name, err)
	}
	return r
}

// TestBrowserRefusesForgedBroadcasts links a hostile Go peer to a tab and has it send
// broadcasts the tab must refuse: a replayed sequence number, the tab's own ID as origin, a
// forged origin and bad signatures. Each is followed on the same (ordered) link by an honest
// broadcast, so once the page shows that one the tab has judged the hostile one. Replays and
// the tab's own ID can come from honest relays and cost the sender nothing; invalid signatures
// cannot, and peer scoring (weight -20 × count², threshold -100) cuts the sender off at its
// third: the tab closes the link.
func TestBrowserRefusesForgedBroadcasts(t *testing.T) {
	d, browser := startBrowserDemo(t, 3, 31)
	a := openTab(t, browser, "tab A")
	idA, _ := a.open(t, d.URL())

	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	h := startHostile(t, d, key, key)
	h.tr.Dial(idA)
	h.waitEvent(t, link.LinkUp, idA)

	seq := uint64(0)
	honest := func(text string) gossip.Message {
		seq++
		return h.gossip(t, key.ID(), seq, time.Now(), text)
	}
	// The first honest broadcast: it is delivered, and sets the origin's sequence state.
	first := honest("hostile peer, honest line 1")
	h.send(t, idA, first)
	a.waitShown(t, "hostile peer, honest line 1")

	victim := d.Nodes()[0].ID()
	refused := map[string]string{} // texts the tab must never show, by subtest
	// check sends bad and, unless the tab is to cut the hostile peer off for it, an honest
	// fence after it.
	check := func(t *testing.T, bad gossip.Message, badText string, counter func(refusals) int, cutOff bool) {
		t.Helper()
		refused[t.Name()] = badText
		before := a.refusals(t)
		h.send(t, idA, bad)
		if cutOff {
			h.waitEvent(t, link.LinkDown, idA)
			a.waitFor(t, "the tab counts the refusal", func() (bool, error) {
				return counter(a.refusals(t))-counter(before) == 1, nil
			})
			return
		}
		fence := fmt.Sprintf("hostile peer, honest line %d", seq+1)
		h.send(t, idA, honest(fence))
		a.waitShown(t, fence)
		after := a.refusals(t)
		if got := counter(after) - counter(before); got != 1 {
			t.Errorf("the counter of this refusal went up by %d, want 1 (before %+v, after %+v)", got, before, after)
		}
		if after.Delivered-before.Delivered != 1 {
			t.Errorf("%d deliveries for one honest broadcast and one refused (before %+v, after %+v)",
				after.Delivered-before.Delivered, before, after)
		}
	}

	t.Run("ReplayedSequence", func(t *testing.T) {
		// Validly signed, but with the sequence number and time of the first broadcast.
		text := "replayed: sequence number 1 again"
		m := h.gossip(t, key.ID(), first.Seq, time.UnixMilli(first.Time), text)
		check(t, m, text, func(r refusals) int { return r.Replay }, false)
	})
	t.Run("SpoofedSelfOrigin", func(t *testing.T) {
		text := "spoofed: the tab's own ID as origin"
		check(t, h.gossip(t, idA, 1, time.Now(), text), text, func(r refusals) int { return r.SelfOrigin }, false)
	})
	t.Run("ForgedOrigin", func(t *testing.T) {
		// Signed by the hostile key, claiming a Go node as origin: the key is not the origin's.
		text := "forged: Go node 1 says so"
		check(t, h.gossip(t, victim, 1, time.Now(), text), text, func(r refusals) int { return r.Signature }, false)
	})
	t.Run("BadSignature", func(t *testing.T) {
		text := "forged: flipped signature"
		m := h.gossip(t, key.ID(), seq+1, time.Now(), text)
		m.Proof[len(m.Proof)-1] ^= 1
		check(t, m, text, func(r refusals) int { return r.Signature }, false)
	})
	t.Run("BadSignatureChangedPayloadCutsOff", func(t *testing.T) {
		// The third invalid signature: the tab scores the peer out and closes its link.
		text := "forged: changed payload"
		m := h.gossip(t, key.ID(), seq+1, time.Now(), "the signed text")
		m.Payload, _ = chat.Encode(chat.Message{Text: text, SentAt: time.Now()})
		check(t, m, text, func(r refusals) int { return r.Signature }, true)
	})

	// No refused broadcast is shown by the page, nor reached a Go node through the tab.
	shown, err := eval[[]string](a, `[...document.querySelectorAll("#messages li .text")].map(e => e.textContent)`)
	if err != nil {
		t.Fatal(err)
	}
	last := fmt.Sprintf("hostile peer, honest line %d", seq)
	wctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	for i, n := range d.Nodes() {
		if _, err := n.WaitMessage(wctx, last); err != nil {
			t.Fatalf("Go node %d: the last honest line: %v", i+1, err)
		}
	}
	for name, text := range refused {
		for _, s := range shown {
			if s == text {
				t.Errorf("%s: the page shows the refused broadcast %q", name, text)
			}
		}
		for i, n := range d.Nodes() {
			for _, m := range n.Messages() {
				if m.Text == text {
					t.Errorf("%s: Go node %d delivered the refused broadcast %q", name, i+1, text)
				}
			}
		}
	}
	if errs := a.pageErrors(); len(errs) > 0 {
		t.Errorf("%s logged errors:\n%s", a.name, strings.Join(errs, "\n"))
	}
}

// TestBrowserRefusesImpersonation has a hostile peer sign in to signaling with one key but
// prove another on its link to a tab: the tab must close the link ("identity mismatch") and
// take no frame from it.
func TestBrowserRefusesImpersonation(t *testing.T) {
	d, browser := startBrowserDemo(t, 2, 41)
	a := openTab(t, browser, "tab A")
	idA, _ := a.open(t, d.URL())

	signKey, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	linkKey, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	h := startHostile(t, d, signKey, linkKey)
	h.tr.Dial(idA)
	down := h.waitEvent(t, link.LinkDown, idA)
	t.Logf("the impersonating link went down: %s", down.Reason)
	a.waitFor(t, "the tab warns of an identity mismatch", func() (bool, error) {
		for _, w := range a.pageWarnings() {
			if strings.Contains(w, "identity mismatch") {
				return true, nil
			}
		}
		return false, nil
	})
	st, err := eval[[]string](a, `globalThis.rtcmesh.snapshot().then(s => s.neighbors.map(n => n.id))`)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range st {
		if id == signKey.ID() || id == linkKey.ID() {
			t.Errorf("the impersonator %s is the tab's neighbour", short(id))
		}
	}
	if errs := a.pageErrors(); len(errs) > 0 {
		t.Errorf("%s logged errors:\n%s", a.name, strings.Join(errs, "\n"))
	}
}

// TestBrowserProofOfWork runs the demo with a signaling server that asks for proof of work: the
// tab finds a nonce for its WebCrypto key in Go-wasm, keeps it beside the key in IndexedDB, is
// welcomed, and links with Go nodes that, once welcomed, require that work of every peer.
func TestBrowserProofOfWork(t *testing.T) {
	const bits = 12
	cfg := demoConfig(3, 61)
	cfg.Signal.PowBits = bits
	d, browser := startBrowserDemoWith(t, cfg)
	nodes := d.Nodes()
	for i, n := range nodes {
		if _, _, required := n.WebRTC().LinkProofsRefused(); required != bits {
			t.Errorf("Go node %d requires %d bits of its peers, want the server's %d", i+1, required, bits)
		}
	}
	a := openTab(t, browser, "tab A")
	idA, first := a.open(t, d.URL())
	t.Logf("with %d bits of work asked, page load to first neighbour: %v", bits, first.Round(time.Millisecond))
	a.waitFor(t, "a Go node lists the tab as its neighbour", func() (bool, error) { return aNeighbourOf(nodes, idA), nil })

	// The nonce is stored with the key, so a reload does not search again.
	stored, err := eval[int](a, `new Promise((resolve, reject) => {
		const open = indexedDB.open("rtcmesh-identity");
		open.onerror = () => reject(open.error);
		open.onsuccess = () => {
			const req = open.result.transaction("keys").objectStore("keys").getAll();
			req.onsuccess = () => { open.result.close(); resolve(req.result.filter(r => r.work && r.work.length === 8).length) };
			req.onerror = () => reject(req.error);
		};
	})`)
	if err != nil || stored != 1 {
		t.Errorf("%d stored keys carry a work nonce (%v), want the tab's one", stored, err)
	}
	text := "a line from a tab that did its work"
	a.send(t, text)
	goNodesDeliver(t, nodes, text, idA)
	if errs := a.pageErrors(); len(errs) > 0 {
		t.Errorf("the tab logged errors:\n%s", strings.Join(errs, "\n"))
	}
}
