//go:build !js

package rtclink

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
)

// frame builds a test frame: sequence number then filler of the given size.
func frame(seq, size int) []byte {
	if size < 8 {
		size = 8
	}
	b := bytes.Repeat([]byte{byte(seq)}, size)
	binary.BigEndian.PutUint64(b, uint64(seq))
	return b
}

// sendAll sends frames 0..n-1, waiting out ErrQueueFull.
func sendAll(tb testing.TB, from *node, to string, n int, size func(int) int) {
	tb.Helper()
	for i := 0; i < n; i++ {
		for {
			err := from.Send(to, frame(i, size(i)))
			if err == nil {
				break
			}
			if !errors.Is(err, link.ErrQueueFull) {
				tb.Fatalf("Send %d: %v", i, err)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func checkInOrder(tb testing.TB, got [][]byte, n int, size func(int) int) {
	tb.Helper()
	if len(got) != n {
		tb.Fatalf("got %d frames, want %d", len(got), n)
	}
	for i, f := range got {
		if !bytes.Equal(f, frame(i, size(i))) {
			tb.Fatalf("frame %d: wrong content or order (len %d)", i, len(f))
		}
	}
}

func TestTwoTransportsFramesBothWaysAndClose(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		h := newHub(t)
		a, b := newNode(t, h, nil), newNode(t, h, nil)
		a.Dial(b.ID())
		up := a.rec.waitEvent(t, link.LinkUp, b.ID())
		b.rec.waitEvent(t, link.LinkUp, a.ID())
		if up.Path != link.PathHost && up.Path != link.PathPrflx {
			t.Fatalf("loopback path %q, want host or prflx", up.Path)
		}
		a.Dial(b.ID()) // no-op: link exists

		const n = 300
		size := func(i int) int { return []int{8, 100, 1200, 16 << 10, 64 << 10}[i%5] }
		sendDone := make(chan struct{})
		go func() {
			defer close(sendDone)
			for i := 0; i < n; i++ {
				for errors.Is(a.Send(b.ID(), frame(i, size(i))), link.ErrQueueFull) {
					time.Sleep(time.Millisecond)
				}
			}
		}()
		sendAll(t, b, a.ID(), n, size)
		<-sendDone
		b.rec.waitUntil(t, "frames at b", func(evs []link.Event) bool { return len(frames(evs, a.ID())) >= n })
		a.rec.waitUntil(t, "frames at a", func(evs []link.Event) bool { return len(frames(evs, b.ID())) >= n })
		checkInOrder(t, frames(b.rec.snapshot(), a.ID()), n, size)
		checkInOrder(t, frames(a.rec.snapshot(), b.ID()), n, size)

		// Link table, counters and RTT (from heartbeats).
		waitCond(t, "RTT known", func() bool {
			l := a.Links()
			return len(l) == 1 && l[0].RTT > 0
		})
		info := a.Links()[0]
		var total uint64
		for i := range n {
			total += uint64(size(i))
		}
		if info.Peer != b.ID() || info.FramesOut != n || info.FramesIn != n || info.BytesOut != total || info.BytesIn != total {
			t.Fatalf("link info %+v, want %d frames / %d bytes each way", info, n, total)
		}

		if err := a.Send(b.ID(), make([]byte, 64<<10+1)); !errors.Is(err, link.ErrFrameTooLarge) {
			t.Fatalf("oversized Send: %v, want ErrFrameTooLarge", err)
		}

		a.CloseLink(b.ID(), "test over")
		down := a.rec.waitEvent(t, link.LinkDown, b.ID())
		if down.Reason != "closed: test over" {
			t.Fatalf("local LinkDown reason %q", down.Reason)
		}
		down = b.rec.waitEvent(t, link.LinkDown, a.ID())
		if down.Reason != "closed by peer: closed: test over" {
			t.Fatalf("remote LinkDown reason %q", down.Reason)
		}
		if err := a.Send(b.ID(), []byte("x")); !errors.Is(err, link.ErrNoLink) {
			t.Fatalf("Send after close: %v, want ErrNoLink", err)
		}
		// A new link can be opened afterwards.
		connect(t, b, a)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := a.Send(b.ID(), []byte("x")); !errors.Is(err, link.ErrClosed) {
			t.Fatalf("Send after Close: %v, want ErrClosed", err)
		}
		b.rec.waitUntil(t, "second LinkDown at b", func(evs []link.Event) bool { return count(evs, link.LinkDown, a.ID()) == 2 })
		b.Close()
		<-a.rec.done // the events channel is closed after Close
		<-b.rec.done
		h.stop()
	}()
	start := time.Now()
	waitCond(t, "goroutines to return to baseline", func() bool { return runtime.NumGoroutine() <= before })
	t.Logf("goroutines back to %d within %v of Close", before, time.Since(start))
}

func TestTenTransportsPairwise(t *testing.T) {
	h := newHub(t)
	const n = 10
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = newNode(t, h, nil)
	}
	for i := range nodes {
		for j := i + 1; j < n; j++ {
			nodes[i].Dial(nodes[j].ID())
		}
	}
	for i, nd := range nodes {
		for j, other := range nodes {
			if i != j {
				nd.rec.waitEvent(t, link.LinkUp, other.ID())
			}
		}
	}
	for i, nd := range nodes {
		for j, other := range nodes {
			if i != j {
				if err := nd.Send(other.ID(), []byte(fmt.Sprintf("%d->%d", i, j))); err != nil {
					t.Fatalf("Send %d->%d: %v", i, j, err)
				}
			}
		}
	}
	for i, nd := range nodes {
		for j, other := range nodes {
			if i == j {
				continue
			}
			want := fmt.Sprintf("%d->%d", j, i)
			nd.rec.waitUntil(t, want, func(evs []link.Event) bool {
				f := frames(evs, other.ID())
				return len(f) == 1 && string(f[0]) == want
			})
		}
		if got := len(nd.Links()); got != n-1 {
			t.Fatalf("node %d has %d links, want %d", i, got, n-1)
		}
	}
}

func TestGlareLeavesOneLink(t *testing.T) {
	h := newHub(t)
	for round := range 3 {
		a, b := newNode(t, h, nil), newNode(t, h, nil)
		a.Dial(b.ID())
		b.Dial(a.ID())
		a.rec.waitEvent(t, link.LinkUp, b.ID())
		b.rec.waitEvent(t, link.LinkUp, a.ID())
		// A round trip after both are up: any second attempt would have
		// shown up (or torn the first down) by the time the echo returns.
		if err := a.Send(b.ID(), []byte("ping")); err != nil {
			t.Fatal(err)
		}
		b.rec.waitUntil(t, "frame", func(evs []link.Event) bool { return len(frames(evs, a.ID())) == 1 })
		if err := b.Send(a.ID(), []byte("pong")); err != nil {
			t.Fatal(err)
		}
		a.rec.waitUntil(t, "frame", func(evs []link.Event) bool { return len(frames(evs, b.ID())) == 1 })
		for _, nd := range []*node{a, b} {
			evs := nd.rec.snapshot()
			if count(evs, link.LinkUp, "") != 1 || count(evs, link.LinkDown, "") != 0 || len(nd.Links()) != 1 {
				t.Fatalf("round %d: events %v, links %d; want exactly one link", round, evs, len(nd.Links()))
			}
		}
		a.Close()
		b.Close()
	}
}

func TestIdentityMismatchDialingWrongID(t *testing.T) {
	h := newHub(t)
	a, c := newNode(t, h, nil), newNode(t, h, nil)
	// X is a valid ID whose key nobody here holds; the "signaling server"
	// routes it to c and stamps c's signals as X.
	x, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	h.add(x.ID(), c.Transport)
	h.mu.Lock()
	h.stampAs[c.ID()] = x.ID()
	h.mu.Unlock()

	a.Dial(x.ID())
	down := a.rec.waitEvent(t, link.LinkDown, x.ID())
	if down.Reason != link.ReasonIdentityMismatch {
		t.Fatalf("LinkDown reason %q, want %q", down.Reason, link.ReasonIdentityMismatch)
	}
	if count(a.rec.snapshot(), link.LinkUp, "") != 0 {
		t.Fatal("link came up despite the identity mismatch")
	}
	if !strings.Contains(a.log.String(), "identity mismatch") {
		t.Fatalf("mismatch not logged: %s", a.log.String())
	}
}

func TestIdentityMismatchSpoofedSender(t *testing.T) {
	h := newHub(t)
	a, c := newNode(t, h, nil), newNode(t, h, nil)
	// c claims to be z: its signals are stamped z, and z routes to c.
	z, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	h.add(z.ID(), c.Transport)
	h.mu.Lock()
	h.stampAs[c.ID()] = z.ID()
	h.mu.Unlock()

	c.Dial(a.ID())
	// a refuses the link: c sees it go down, a never reports it.
	down := c.rec.waitEvent(t, link.LinkDown, a.ID())
	t.Logf("spoofer's LinkDown: %q", down.Reason)
	waitCond(t, "mismatch logged at a", func() bool { return strings.Contains(a.log.String(), "identity mismatch") })
	if evs := a.rec.snapshot(); len(evs) != 0 {
		t.Fatalf("victim reported events for a spoofed peer: %v", evs)
	}
}

func TestHeartbeatTimeout(t *testing.T) {
	h := newHub(t)
	fast := func(c *Config) {
		c.HeartbeatInterval = 100 * time.Millisecond
		c.HeartbeatTimeout = 600 * time.Millisecond
	}
	a, b := newNode(t, h, fast), newNode(t, h, fast)
	connect(t, a, b)
	// b's process is stuck: its sockets and ICE agent still answer, the
	// link layer does not.
	b.Freeze()
	start := time.Now()
	down := a.rec.waitEvent(t, link.LinkDown, b.ID())
	if down.Reason != link.ReasonHeartbeatTimeout {
		t.Fatalf("LinkDown reason %q, want %q", down.Reason, link.ReasonHeartbeatTimeout)
	}
	t.Logf("silent peer detected after %v (timeout 600ms, interval 100ms)", time.Since(start))
}

func TestOversizedFrameClosesLink(t *testing.T) {
	h := newHub(t)
	big := func(c *Config) { c.MaxFrameSize = 128 << 10 }
	small := func(c *Config) { c.MaxFrameSize = 16 << 10 }
	a := newNode(t, h, big)

	// An honest peer advertises its limit, so Send refuses up front.
	b := newNode(t, h, small)
	connect(t, a, b)
	if err := a.Send(b.ID(), make([]byte, 20<<10)); !errors.Is(err, link.ErrFrameTooLarge) {
		t.Fatalf("Send above the peer's limit: %v, want ErrFrameTooLarge", err)
	}
	if err := a.Send(b.ID(), make([]byte, 16<<10)); err != nil {
		t.Fatalf("Send at the peer's limit: %v", err)
	}
	b.rec.waitUntil(t, "frame at limit", func(evs []link.Event) bool { return len(frames(evs, a.ID())) == 1 })

	// A peer that ignores the limit (here: the SDP it sees was altered) is
	// disconnected by the receiver, which keeps running.
	c := newNode(t, h, small)
	h.mu.Lock()
	h.munge = func(from, to string, s *Signal) {
		if from == c.ID() && to == a.ID() {
			s.SDP = strings.ReplaceAll(s.SDP, "a=max-message-size:16384", "a=max-message-size:131072")
		}
	}
	h.mu.Unlock()
	connect(t, a, c)
	if err := a.Send(c.ID(), make([]byte, 100<<10)); err != nil {
		t.Fatalf("Send with altered limit: %v", err)
	}
	down := c.rec.waitEvent(t, link.LinkDown, a.ID())
	if down.Reason != link.ReasonFrameTooLarge {
		t.Fatalf("receiver LinkDown %q, want %q", down.Reason, link.ReasonFrameTooLarge)
	}
	down = a.rec.waitEvent(t, link.LinkDown, c.ID())
	if !strings.HasPrefix(down.Reason, link.ReasonClosedByPeer) {
		t.Fatalf("sender LinkDown %q", down.Reason)
	}
	if count(c.rec.snapshot(), link.Frame, "") != 0 {
		t.Fatal("oversized frame was delivered")
	}
	// c still works.
	connect(t, c, b)
}

func TestBackpressureQueueFull(t *testing.T) {
	h := newHub(t)
	a := newNode(t, h, func(c *Config) { c.SendBufferBytes = 256 << 10 })
	b := newNode(t, h, func(c *Config) { c.EventQueueLength = 4 })
	connect(t, a, b)
	b.rec.pause()
	// With b's consumer stalled, its queue fills, its read loop stops, SCTP
	// flow control stops a, and a's bounded buffer fills.
	sent := 0
	var err error
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if err = a.Send(b.ID(), frame(sent, 16<<10)); err != nil {
			if !errors.Is(err, link.ErrQueueFull) {
				t.Fatalf("Send: %v", err)
			}
			// The buffer may still drain into the peer's receive window;
			// it is full once it stays full.
			time.Sleep(20 * time.Millisecond)
			if err = a.Send(b.ID(), frame(sent, 16<<10)); err != nil {
				break
			}
		}
		sent++
	}
	if !errors.Is(err, link.ErrQueueFull) {
		t.Fatalf("never got ErrQueueFull (sent %d)", sent)
	}
	t.Logf("ErrQueueFull after %d frames of 16 KiB", sent)
	b.rec.resume()
	b.rec.waitUntil(t, "all accepted frames", func(evs []link.Event) bool { return len(frames(evs, a.ID())) >= sent })
	checkInOrder(t, frames(b.rec.snapshot(), a.ID()), sent, func(int) int { return 16 << 10 })
}

func TestDialFailures(t *testing.T) {
	h := newHub(t)
	a := newNode(t, h, func(c *Config) { c.DialTimeout = 500 * time.Millisecond; c.MaxLinks = 2 })

	a.Dial("not-an-id")
	if ev := a.rec.waitEvent(t, link.LinkDown, "not-an-id"); !strings.HasPrefix(ev.Reason, link.ReasonUnreachable) {
		t.Fatalf("invalid ID: %q", ev.Reason)
	}
	a.Dial(a.ID())
	if ev := a.rec.waitEvent(t, link.LinkDown, a.ID()); !strings.HasPrefix(ev.Reason, link.ReasonUnreachable) {
		t.Fatalf("own ID: %q", ev.Reason)
	}
	// Unknown to signaling: SendSignal fails.
	ghost, _ := identity.GenerateKey()
	a.Dial(ghost.ID())
	if ev := a.rec.waitEvent(t, link.LinkDown, ghost.ID()); !strings.HasPrefix(ev.Reason, link.ReasonUnreachable) {
		t.Fatalf("unknown peer: %q", ev.Reason)
	}
	// Signals vanish: dial timeout.
	hole, _ := identity.GenerateKey()
	h.mu.Lock()
	h.blackhole[hole.ID()] = true
	h.mu.Unlock()
	a.Dial(hole.ID())
	if ev := a.rec.waitEvent(t, link.LinkDown, hole.ID()); ev.Reason != link.ReasonDialTimeout {
		t.Fatalf("black hole: %q", ev.Reason)
	}
	// Signals vanish, and the offer's answer is awaited for less than the dial: unreachable
	// once AnswerTimeout has passed (a relay dropped the offer, or the peer is gone).
	quick := newNode(t, h, func(c *Config) { c.DialTimeout, c.AnswerTimeout = 10*time.Second, 300*time.Millisecond })
	quick.Dial(hole.ID())
	if ev := quick.rec.waitEvent(t, link.LinkDown, hole.ID()); !strings.HasPrefix(ev.Reason, link.ReasonUnreachable) ||
		!strings.Contains(ev.Reason, "no answer") {
		t.Fatalf("black hole with an answer timeout: %q", ev.Reason)
	}
	// MaxLinks.
	h1, _ := identity.GenerateKey()
	h2, _ := identity.GenerateKey()
	h3, _ := identity.GenerateKey()
	h.mu.Lock()
	h.blackhole[h1.ID()], h.blackhole[h2.ID()], h.blackhole[h3.ID()] = true, true, true
	h.mu.Unlock()
	a.Dial(h1.ID())
	a.Dial(h2.ID())
	a.Dial(h3.ID())
	if ev := a.rec.waitEvent(t, link.LinkDown, h3.ID()); ev.Reason != link.ReasonTooManyLinks {
		t.Fatalf("third dial: %q", ev.Reason)
	}
}

func TestBadSignalsAreDropped(t *testing.T) {
	h := newHub(t)
	a, b := newNode(t, h, nil), newNode(t, h, nil)
	stranger, _ := identity.GenerateKey()
	a.HandleSignal("bogus", Signal{Type: SignalOffer, SDP: "v=0"})
	a.HandleSignal(stranger.ID(), Signal{Type: "hello"})
	a.HandleSignal(stranger.ID(), Signal{Type: SignalCandidate, Candidate: "{not json"})
	a.HandleSignal(stranger.ID(), Signal{Type: SignalAnswer, SDP: "garbage"})
	a.HandleSignal(stranger.ID(), Signal{Type: SignalOffer, SDP: "garbage"})
	a.HandleSignal(stranger.ID(), Signal{Type: SignalCandidate, Candidate: `{"candidate":"candidate:garbage"}`})
	if l := a.Links(); len(l) != 0 {
		t.Fatalf("links after garbage: %v", l)
	}
	if evs := a.rec.snapshot(); len(evs) != 0 {
		t.Fatalf("events after garbage: %v", evs)
	}
	for _, want := range []string{"invalid sender", "unknown signal type", "malformed ICE candidate", "bad offer"} {
		if !strings.Contains(a.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, a.log.String())
		}
	}
	// Still works.
	connect(t, a, b)
}

func TestConfigValidation(t *testing.T) {
	id, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	h := newHub(t)
	sig := hubSignaler{h: h, self: id.ID()}
	cases := map[string]func(*Config){
		"no identity":       func(c *Config) { c.Key = nil },
		"no signaler":       func(c *Config) { c.Signaler = nil },
		"heartbeat order":   func(c *Config) { c.HeartbeatInterval, c.HeartbeatTimeout = time.Second, time.Second },
		"negative duration": func(c *Config) { c.DialTimeout = -1 },
		"negative answer":   func(c *Config) { c.AnswerTimeout = -1 },
		"negative size":     func(c *Config) { c.MaxLinks = -1 },
		"buffer < frame":    func(c *Config) { c.MaxFrameSize, c.SendBufferBytes = 1<<20, 1<<10 },
		"huge frame":        func(c *Config) { c.MaxFrameSize, c.SendBufferBytes = 1<<30, 1<<30 },
		"bad mdns":          func(c *Config) { c.MDNS = 7 },
		"bad udp port":      func(c *Config) { c.UDPSocket.Port = 70000 },
	}
	for name, mod := range cases {
		cfg := testConfig(id, sig)
		mod(&cfg)
		if tr, err := New(cfg); err == nil {
			tr.Close()
			t.Errorf("%s: New accepted the config", name)
		}
	}
	d := DefaultConfig(id, sig)
	if d.MaxFrameSize != 64<<10 || d.HeartbeatTimeout != 5*time.Second || d.ICEFailedTimeout != 6*time.Second || !d.UDPSocket.Shared {
		t.Errorf("defaults: %+v", d)
	}
}
