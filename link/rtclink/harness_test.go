//go:build !js

package rtclink

import (
	"bytes"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
)

// waitLimit is the generous deadline for conditions on real sockets.
const waitLimit = 20 * time.Second

// loopbackSettings keeps all ICE traffic on 127.0.0.0/8 (the test configs also turn mDNS
// off, and use no STUN or TURN server).
func loopbackSettings() *webrtc.SettingEngine {
	return NetworkSettings([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
}

// hub is an in-process signaling server: it routes signals between
// transports, preserving order per destination, and stamps the sender.
type hub struct {
	mu     sync.Mutex
	routes map[string]*hubNode // routing ID -> node
	// stampAs makes signals sent by a node appear to come from another ID.
	stampAs map[string]string
	// blackhole drops signals to these IDs.
	blackhole map[string]bool
	// munge, if set, may rewrite a signal in transit.
	munge func(from, to string, s *Signal)
	wg    sync.WaitGroup
}

type hubNode struct {
	t     *Transport
	inbox chan hubMsg
}

type hubMsg struct {
	from string
	s    Signal
}

func newHub(tb testing.TB) *hub {
	h := &hub{routes: map[string]*hubNode{}, stampAs: map[string]string{}, blackhole: map[string]bool{}}
	tb.Cleanup(h.stop)
	return h
}

func (h *hub) add(routeID string, t *Transport) {
	n := &hubNode{t: t, inbox: make(chan hubMsg, 4096)}
	h.mu.Lock()
	if old := h.routes[routeID]; old != nil {
		close(old.inbox) // the route moves to t: its old pump ends
	}
	h.routes[routeID] = n
	h.mu.Unlock()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for m := range n.inbox {
			n.t.HandleSignal(m.from, m.s)
		}
	}()
}

func (h *hub) stop() {
	h.mu.Lock()
	for id, n := range h.routes {
		close(n.inbox)
		delete(h.routes, id)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

var errNoRoute = errors.New("hub: no such peer")

func (h *hub) send(from, to string, s Signal) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.blackhole[to] {
		return nil
	}
	n := h.routes[to]
	if n == nil {
		return errNoRoute
	}
	if as, ok := h.stampAs[from]; ok {
		from = as
	}
	if h.munge != nil {
		h.munge(from, to, &s)
	}
	n.inbox <- hubMsg{from: from, s: s}
	return nil
}

type hubSignaler struct {
	h    *hub
	self string
}

func (s hubSignaler) SendSignal(to string, sig Signal) error { return s.h.send(s.self, to, sig) }

// node is a test transport with an event recorder.
type node struct {
	*Transport
	rec *recorder
	log *syncBuffer
}

func testConfig(id *identity.Key, s Signaler) Config {
	c := DefaultConfig(id, s)
	c.MDNS = MDNSDisabled
	c.SetICENetworks([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}) // and the shared UDP socket, the default
	c.HeartbeatInterval = 200 * time.Millisecond
	c.HeartbeatTimeout = 2 * time.Second
	c.DialTimeout = 15 * time.Second
	return c
}

// newNode starts a transport registered in h under its own ID. mod may
// adjust the config. Events are drained unless paused.
func newNode(tb testing.TB, h *hub, mod func(*Config)) *node {
	tb.Helper()
	id, err := identity.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	buf := &syncBuffer{}
	cfg := testConfig(id, hubSignaler{h: h, self: id.ID()})
	cfg.Logger = zerolog.New(buf).Level(zerolog.InfoLevel)
	if mod != nil {
		mod(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	n := &node{Transport: tr, rec: newRecorder(tr.Events()), log: buf}
	h.add(tr.ID(), tr)
	tb.Cleanup(func() { n.Close() })
	return n
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recorder drains a Transport's events and lets tests wait for conditions.
type recorder struct {
	mu      sync.Mutex
	events  []link.Event
	changed chan struct{} // closed and replaced on every new event
	paused  chan struct{} // nil or open: draining stopped until closed
	done    chan struct{}
}

func newRecorder(ch <-chan link.Event) *recorder {
	r := &recorder{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			r.mu.Lock()
			p := r.paused
			r.mu.Unlock()
			if p != nil {
				<-p
			}
			ev, ok := <-ch
			if !ok {
				return
			}
			r.mu.Lock()
			r.events = append(r.events, ev)
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		}
	}()
	return r
}

// pause stops draining after the event being received (if any).
func (r *recorder) pause() {
	r.mu.Lock()
	r.paused = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) resume() {
	r.mu.Lock()
	close(r.paused)
	r.paused = nil
	r.mu.Unlock()
}

func (r *recorder) snapshot() []link.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]link.Event(nil), r.events...)
}

// waitUntil waits until cond holds over the recorded events.
func (r *recorder) waitUntil(tb testing.TB, what string, cond func([]link.Event) bool) []link.Event {
	tb.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		evs := append([]link.Event(nil), r.events...)
		ch := r.changed
		r.mu.Unlock()
		if cond(evs) {
			return evs
		}
		select {
		case <-ch:
		case <-deadline.C:
			tb.Fatalf("timed out waiting for %s; events: %v", what, evs)
		}
	}
}

// waitEvent waits for an event of type typ from peer and returns the first.
func (r *recorder) waitEvent(tb testing.TB, typ link.EventType, peer string) link.Event {
	tb.Helper()
	var found link.Event
	r.waitUntil(tb, typ.String()+" from "+short(peer), func(evs []link.Event) bool {
		for _, ev := range evs {
			if ev.Type == typ && ev.Peer == peer {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

func count(evs []link.Event, typ link.EventType, peer string) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ && (peer == "" || ev.Peer == peer) {
			n++
		}
	}
	return n
}

func frames(evs []link.Event, peer string) [][]byte {
	var out [][]byte
	for _, ev := range evs {
		if ev.Type == link.Frame && ev.Peer == peer {
			out = append(out, ev.Data)
		}
	}
	return out
}

// waitCond polls a condition that has no event to wait on (link tables,
// goroutine counts), with a generous deadline.
func waitCond(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// connect dials b from a and waits for LinkUp on both sides.
func connect(tb testing.TB, a, b *node) {
	tb.Helper()
	ua, ub := count(a.rec.snapshot(), link.LinkUp, b.ID()), count(b.rec.snapshot(), link.LinkUp, a.ID())
	a.Dial(b.ID())
	a.rec.waitUntil(tb, "LinkUp at dialer", func(evs []link.Event) bool { return count(evs, link.LinkUp, b.ID()) > ua })
	b.rec.waitUntil(tb, "LinkUp at acceptor", func(evs []link.Event) bool { return count(evs, link.LinkUp, a.ID()) > ub })
}
