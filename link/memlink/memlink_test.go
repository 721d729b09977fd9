package memlink

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/link"
)

const waitLimit = 10 * time.Second

// config is DefaultConfig with a test's changes.
func config(change func(*Config)) Config {
	c := DefaultConfig()
	change(&c)
	return c
}

// recorder drains a Transport's events so tests can wait for conditions.
type recorder struct {
	mu      sync.Mutex
	events  []link.Event
	changed chan struct{}
	closed  bool
	gate    chan struct{} // if non-nil, draining waits for it to close
}

func record(tr link.Transport, gate chan struct{}) *recorder {
	r := &recorder{changed: make(chan struct{}), gate: gate}
	go func() {
		if gate != nil {
			<-gate
		}
		for ev := range tr.Events() {
			r.mu.Lock()
			r.events = append(r.events, ev)
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		}
		r.mu.Lock()
		r.closed = true
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
	}()
	return r
}

func (r *recorder) snapshot() []link.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]link.Event(nil), r.events...)
}

func (r *recorder) waitUntil(t testing.TB, what string, cond func(evs []link.Event, closed bool) bool) []link.Event {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		evs, closed, ch := append([]link.Event(nil), r.events...), r.closed, r.changed
		r.mu.Unlock()
		if cond(evs, closed) {
			return evs
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; events %v", what, evs)
		}
	}
}

func (r *recorder) waitCount(t testing.TB, typ link.EventType, peer string, n int) []link.Event {
	t.Helper()
	return r.waitUntil(t, fmt.Sprintf("%d× %v %s", n, typ, peer), func(evs []link.Event, _ bool) bool {
		return count(evs, typ, peer) >= n
	})
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

func last(evs []link.Event, typ link.EventType, peer string) link.Event {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == typ && evs[i].Peer == peer {
			return evs[i]
		}
	}
	return link.Event{}
}

// assertFramesInOrder checks that the frames from peer are "0", "1", ... n-1.
func assertFramesInOrder(t *testing.T, evs []link.Event, peer string, n int) {
	t.Helper()
	i := 0
	for _, ev := range evs {
		if ev.Type != link.Frame || ev.Peer != peer {
			continue
		}
		if string(ev.Data) != fmt.Sprint(i) {
			t.Fatalf("frame %d is %q", i, ev.Data)
		}
		i++
	}
	if i != n {
		t.Fatalf("%d frames from %s, want %d", i, peer, n)
	}
}

func newNet(t *testing.T, cfg Config) *Network {
	t.Helper()
	n, err := NewNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func mustTransport(t *testing.T, n *Network, id string) *Transport {
	t.Helper()
	tr, err := n.Transport(id)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestLinkUpFramesInOrderAndClose(t *testing.T) {
	n := newNet(t, DefaultConfig())
	a, b := mustTransport(t, n, "a"), mustTransport(t, n, "b")
	ra, rb := record(a, nil), record(b, nil)
	a.Dial("b")
	ra.waitCount(t, link.LinkUp, "b", 1)
	rb.waitCount(t, link.LinkUp, "a", 1)
	if ev := ra.snapshot()[0]; ev.Path != link.PathMemory {
		t.Fatalf("path %q", ev.Path)
	}
	const frames = 2000
	for i := 0; i < frames; i++ {
		for {
			err := a.Send("b", []byte(fmt.Sprint(i)))
			if err == nil {
				break
			}
			if !errors.Is(err, link.ErrQueueFull) {
				t.Fatal(err)
			}
			runtime.Gosched()
		}
	}
	evs := rb.waitCount(t, link.Frame, "a", frames)
	assertFramesInOrder(t, evs, "a", frames)
	if l := a.Links(); len(l) != 1 || l[0].FramesOut != frames || l[0].Peer != "b" {
		t.Fatalf("links %+v", l)
	}
	if err := a.Send("b", make([]byte, 64<<10+1)); !errors.Is(err, link.ErrFrameTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	if err := a.Send("c", nil); !errors.Is(err, link.ErrNoLink) {
		t.Fatalf("no link: %v", err)
	}
	a.CloseLink("b", "bye")
	if ev := last(ra.waitCount(t, link.LinkDown, "b", 1), link.LinkDown, "b"); ev.Reason != "closed: bye" {
		t.Fatalf("local reason %q", ev.Reason)
	}
	if ev := last(rb.waitCount(t, link.LinkDown, "a", 1), link.LinkDown, "a"); ev.Reason != "closed by peer: closed: bye" {
		t.Fatalf("remote reason %q", ev.Reason)
	}
	if err := b.Send("a", nil); !errors.Is(err, link.ErrNoLink) {
		t.Fatalf("after close: %v", err)
	}
	// Redial, then Close the transport.
	b.Dial("a")
	ra.waitCount(t, link.LinkUp, "b", 2)
	a.Close()
	ra.waitUntil(t, "events closed", func(_ []link.Event, closed bool) bool { return closed })
	if ev := last(rb.waitCount(t, link.LinkDown, "a", 2), link.LinkDown, "a"); ev.Reason != "closed by peer: transport closed" {
		t.Fatalf("reason %q", ev.Reason)
	}
	if err := a.Send("b", nil); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("closed transport: %v", err)
	}
}

func TestGlareMakesOneLink(t *testing.T) {
	n := newNet(t, DefaultConfig())
	a, b := mustTransport(t, n, "a"), mustTransport(t, n, "b")
	ra, rb := record(a, nil), record(b, nil)
	a.Dial("b")
	b.Dial("a")
	a.Dial("b")
	ra.waitCount(t, link.LinkUp, "b", 1)
	rb.waitCount(t, link.LinkUp, "a", 1)
	// A frame round trip orders any further events before our check.
	if err := a.Send("b", []byte("0")); err != nil {
		t.Fatal(err)
	}
	rb.waitCount(t, link.Frame, "a", 1)
	if err := b.Send("a", []byte("0")); err != nil {
		t.Fatal(err)
	}
	ra.waitCount(t, link.Frame, "b", 1)
	for _, evs := range [][]link.Event{ra.snapshot(), rb.snapshot()} {
		if count(evs, link.LinkUp, "") != 1 || count(evs, link.LinkDown, "") != 0 {
			t.Fatalf("events %v", evs)
		}
	}
}

func TestLatencyOnManualClock(t *testing.T) {
	clk := NewManualClock(time.Unix(1000, 0))
	n := newNet(t, config(func(c *Config) {
		c.Clock, c.Latency = clk, func(from, to string) time.Duration { return 50 * time.Millisecond }
	}))
	a, b := mustTransport(t, n, "a"), mustTransport(t, n, "b")
	ra, rb := record(a, nil), record(b, nil)
	a.Dial("b")
	if err := a.Send("b", nil); !errors.Is(err, link.ErrNoLink) {
		t.Fatalf("Send before LinkUp: %v", err)
	}
	clk.Advance(50 * time.Millisecond)
	ra.waitCount(t, link.LinkUp, "b", 1)
	rb.waitCount(t, link.LinkUp, "a", 1)
	for i := range 10 {
		if err := a.Send("b", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(49 * time.Millisecond)
	if got := count(rb.snapshot(), link.Frame, ""); got != 0 {
		t.Fatalf("%d frames arrived before the latency passed", got)
	}
	clk.Advance(time.Millisecond)
	assertFramesInOrder(t, rb.waitCount(t, link.Frame, "a", 10), "a", 10)
	if l := a.Links(); len(l) != 1 || l[0].RTT != 100*time.Millisecond {
		t.Fatalf("links %+v", l)
	}
}

func TestCrashDetectedByHeartbeatTimeout(t *testing.T) {
	clk := NewManualClock(time.Unix(1000, 0))
	n := newNet(t, config(func(c *Config) { c.Clock, c.HeartbeatTimeout, c.SendQueueLength = clk, 5*time.Second, 8 }))
	a, b := mustTransport(t, n, "a"), mustTransport(t, n, "b")
	ra, rb := record(a, nil), record(b, nil)
	a.Dial("b")
	ra.waitCount(t, link.LinkUp, "b", 1)
	rb.waitCount(t, link.LinkUp, "a", 1)
	n.Crash("b")
	rb.waitUntil(t, "crashed node's events closed", func(_ []link.Event, closed bool) bool { return closed })
	if err := b.Send("a", nil); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("crashed Send: %v", err)
	}
	// Frames to the dead peer are held and fill the queue.
	var err error
	sent := 0
	for ; sent < 100; sent++ {
		if err = a.Send("b", []byte("x")); err != nil {
			break
		}
	}
	if !errors.Is(err, link.ErrQueueFull) || sent != 8 {
		t.Fatalf("after %d sends: %v, want ErrQueueFull after 8", sent, err)
	}
	clk.Advance(4999 * time.Millisecond)
	if c := count(ra.snapshot(), link.LinkDown, ""); c != 0 {
		t.Fatal("LinkDown before the heartbeat timeout")
	}
	clk.Advance(time.Millisecond)
	if ev := last(ra.waitCount(t, link.LinkDown, "b", 1), link.LinkDown, "b"); ev.Reason != link.ReasonHeartbeatTimeout {
		t.Fatalf("reason %q", ev.Reason)
	}
	// Restart: the node comes back under the same ID and dials out.
	b2 := mustTransport(t, n, "b")
	rb2 := record(b2, nil)
	b2.Dial("a")
	ra.waitCount(t, link.LinkUp, "b", 2)
	rb2.waitCount(t, link.LinkUp, "a", 1)
}

func TestCrashDetectedImmediately(t *testing.T) {
	n := newNet(t, config(func(c *Config) { c.DetectImmediately = true }))
	a, _ := mustTransport(t, n, "a"), mustTransport(t, n, "b")
	ra := record(a, nil)
	a.Dial("b")
	ra.waitCount(t, link.LinkUp, "b", 1)
	n.Crash("b")
	if ev := last(ra.waitCount(t, link.LinkDown, "b", 1), link.LinkDown, "b"); ev.Reason != link.ReasonHeartbeatTimeout {
		t.Fatalf("reason %q", ev.Reason)
	}
}

func TestRestartReplacesStaleLink(t *testing.T) {
	clk := NewManualClock(time.Unix(1000, 0))
	n := newNet(t, config(func(c *Config) { c.Clock = clk }))
	a, b := mustTransport(t, n, "a"), mustTransport(t, n, "b")
	ra := record(a, nil)
	record(b, nil)
	a.Dial("b")
	ra.waitCount(t, link.LinkUp, "b", 1)
	n.Crash("b")
	b2 := mustTransport(t, n, "b")
	rb2 := record(b2, nil)
	b2.Dial("a") // before a noticed the crash
	evs := ra.waitCount(t, link.LinkUp, "b", 2)
	if ev := last(evs, link.LinkDown, "b"); ev.Reason != link.ReasonReplaced {
		t.Fatalf("old link reason %q", ev.Reason)
	}
	rb2.waitCount(t, link.LinkUp, "a", 1)
	// The old link's heartbeat timer must not disturb the new link.
	clk.Advance(time.Minute)
	if err := a.Send("b", []byte("0")); err != nil {
		t.Fatal(err)
	}
	rb2.waitCount(t, link.Frame, "a", 1)
	if c := count(ra.snapshot(), link.LinkDown, "b"); c != 1 {
		t.Fatalf("%d LinkDowns, want 1", c)
	}
}

func TestPartitionHealAndTimeout(t *testing.T) {
	clk := NewManualClock(time.Unix(1000, 0))
	n := newNet(t, config(func(c *Config) { c.Clock, c.HeartbeatTimeout, c.DialTimeout = clk, 5*time.Second, 10*time.Second }))
	a, b, c := mustTransport(t, n, "a"), mustTransport(t, n, "b"), mustTransport(t, n, "c")
	ra, rb, rc := record(a, nil), record(b, nil), record(c, nil)
	a.Dial("b")
	a.Dial("c")
	ra.waitCount(t, link.LinkUp, "", 2)

	// Short partition: held frames arrive after the heal, in order, and
	// the link survives.
	n.Partition([]string{"a"}, []string{"b", "c"})
	for i := range 5 {
		if err := a.Send("b", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(3 * time.Second)
	if got := count(rb.snapshot(), link.Frame, ""); got != 0 {
		t.Fatalf("%d frames crossed the partition", got)
	}
	n.Heal()
	assertFramesInOrder(t, rb.waitCount(t, link.Frame, "a", 5), "a", 5)
	clk.Advance(10 * time.Second)

	// Long partition: both sides time out; c, on b's side, keeps b.
	b.Dial("c")
	rc.waitCount(t, link.LinkUp, "b", 1)
	n.Partition([]string{"a"})
	clk.Advance(5 * time.Second)
	for _, r := range []struct {
		rec  *recorder
		peer string
	}{{ra, "b"}, {ra, "c"}, {rb, "a"}, {rc, "a"}} {
		if ev := last(r.rec.waitCount(t, link.LinkDown, r.peer, 1), link.LinkDown, r.peer); ev.Reason != link.ReasonHeartbeatTimeout {
			t.Fatalf("reason %q", ev.Reason)
		}
	}
	if l := b.Links(); len(l) != 1 || l[0].Peer != "c" {
		t.Fatalf("b links %+v", l)
	}

	// Dial across the partition: connects once healed, or times out.
	a.Dial("b")
	n.Heal()
	ra.waitCount(t, link.LinkUp, "b", 2)
	n.Partition([]string{"a"})
	a.Dial("c")
	clk.Advance(10 * time.Second)
	if ev := last(ra.waitCount(t, link.LinkDown, "c", 2), link.LinkDown, "c"); ev.Reason != link.ReasonDialTimeout {
		t.Fatalf("reason %q", ev.Reason)
	}
}

func TestBackpressureBoundsQueues(t *testing.T) {
	n := newNet(t, config(func(c *Config) { c.SendQueueLength, c.EventQueueLength = 8, 4 }))
	a, b := mustTransport(t, n, "a"), mustTransport(t, n, "b")
	ra := record(a, nil)
	gate := make(chan struct{})
	a.Dial("b")
	ra.waitCount(t, link.LinkUp, "b", 1)
	// b's consumer is stalled (its LinkUp sits in the channel).
	for a.Send("b", nil) == link.ErrNoLink {
		runtime.Gosched() // a's LinkUp was seen; b's side is up too
	}
	sent := 1
	var err error
	for ; sent < 1000; sent++ {
		if err = a.Send("b", []byte(fmt.Sprint(sent))); err != nil {
			break
		}
	}
	if !errors.Is(err, link.ErrQueueFull) {
		t.Fatalf("no ErrQueueFull after %d frames", sent)
	}
	// At most: the send queue, the channel, and one in the delivery loop's hands.
	if sent > 8+4+1 {
		t.Fatalf("%d frames accepted, bound is 13", sent)
	}
	rb := record(b, gate)
	close(gate)
	evs := rb.waitCount(t, link.Frame, "a", sent)
	if string(evs[1].Data) != "" {
		t.Fatalf("first frame %q", evs[1].Data)
	}
	for i, ev := range evs[2:] {
		if string(ev.Data) != fmt.Sprint(i+1) {
			t.Fatalf("frame %d is %q", i+1, ev.Data)
		}
	}
}

func TestDialFailuresAndConfig(t *testing.T) {
	n := newNet(t, DefaultConfig())
	a := mustTransport(t, n, "a")
	ra := record(a, nil)
	a.Dial("nobody")
	a.Dial("a")
	evs := ra.waitCount(t, link.LinkDown, "", 2)
	for _, ev := range evs {
		if ev.Reason != link.ReasonUnreachable {
			t.Fatalf("reason %q", ev.Reason)
		}
	}
	if _, err := n.Transport("a"); err == nil {
		t.Fatal("duplicate live ID accepted")
	}
	if _, err := n.Transport(""); err == nil {
		t.Fatal("empty ID accepted")
	}
	if _, err := NewNetwork(config(func(c *Config) { c.SendQueueLength = -1 })); err == nil {
		t.Fatal("negative queue accepted")
	}
	if _, err := NewNetwork(config(func(c *Config) { c.HeartbeatTimeout = -time.Second })); err == nil {
		t.Fatal("negative timeout accepted")
	}
}

// TestThousandsOfNodes links 3000 transports into a random 5-regular-ish
// mesh, floods one frame per link, and checks everything is torn down.
func TestThousandsOfNodes(t *testing.T) {
	before := runtime.NumGoroutine()
	n, err := NewNetwork(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	const nodes, degree = 3000, 5
	rng := rand.New(rand.NewPCG(1, 2))
	ts := make([]*Transport, nodes)
	for i := range ts {
		ts[i] = mustTransport(t, n, fmt.Sprintf("n%04d", i))
	}
	var ups, framesSeen sync.WaitGroup
	var mu sync.Mutex
	linksUp := 0
	for _, tr := range ts {
		ups.Add(1)
		go func() {
			defer ups.Done()
			for ev := range tr.Events() {
				switch ev.Type {
				case link.LinkUp:
					mu.Lock()
					linksUp++
					mu.Unlock()
					if err := tr.Send(ev.Peer, []byte(tr.ID())); err != nil {
						t.Errorf("Send: %v", err)
					}
				case link.Frame:
					if string(ev.Data) != ev.Peer {
						t.Errorf("frame %q from %s", ev.Data, ev.Peer)
					}
					framesSeen.Done()
				}
			}
		}()
	}
	dials := map[pairKey]bool{}
	for i, tr := range ts {
		for range degree / 2 {
			j := rng.IntN(nodes)
			if j == i || dials[keyOf(tr.ID(), ts[j].ID())] {
				continue
			}
			dials[keyOf(tr.ID(), ts[j].ID())] = true
			framesSeen.Add(2)
			tr.Dial(ts[j].ID())
		}
	}
	framesSeen.Wait()
	mu.Lock()
	if linksUp != 2*len(dials) {
		t.Errorf("%d LinkUps for %d links", linksUp, len(dials))
	}
	mu.Unlock()
	n.Close()
	ups.Wait()
	deadline := time.Now().Add(waitLimit)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left, %d before", runtime.NumGoroutine(), before)
		}
		runtime.Gosched()
	}
}

// TestConfigValidation: every field is required, and of several faults the first in field
// order is reported.
func TestConfigValidation(t *testing.T) {
	if _, err := NewNetwork(Config{}); err == nil {
		t.Fatal("zero Config accepted")
	}
	for _, tc := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.HeartbeatTimeout, c.Clock = 0, nil }, "Config.HeartbeatTimeout must be positive"},
		{func(c *Config) { c.DialTimeout, c.SendQueueLength = -time.Second, 0 }, "Config.DialTimeout must be positive"},
		{func(c *Config) { c.SendQueueLength = 0 }, "Config.SendQueueLength must be at least 1"},
		{func(c *Config) { c.EventQueueLength = 0 }, "Config.EventQueueLength must be at least 1"},
		{func(c *Config) { c.MaxFrameSize = 0 }, "Config.MaxFrameSize must be at least 1"},
		{func(c *Config) { c.Clock = nil }, "Config.Clock is required"},
	} {
		_, err := NewNetwork(config(tc.change))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error containing %q", err, tc.want)
		}
	}
	if got := DefaultConfig().HeartbeatTimeout; got != link.DefaultHeartbeatTimeout {
		t.Errorf("default heartbeat %v, want link.DefaultHeartbeatTimeout %v", got, link.DefaultHeartbeatTimeout)
	}
}
