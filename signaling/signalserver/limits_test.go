package signalserver_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

// dialFrom dials url from the loopback address local (any of 127.0.0.0/8 on Linux), so a test
// can play clients of different sources.
func dialFrom(t *testing.T, url, local string, header http.Header) *rawClient {
	t.Helper()
	d := websocket.Dialer{NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext}
	ws, _, err := d.Dial(url, header)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", url, local, err)
	}
	t.Cleanup(func() { ws.Close() })
	return &rawClient{t: t, ws: ws}
}

// Attack: one host opens connection after connection to fill the server. It gets its share
// and then source_full, while a host at another address still gets in.
func TestManyConnectionsFromOneSourceAreRefused(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{MaxConnections: 50, MaxConnectionsPerSource: 20, ConnectionsPerSourcePerMinute: 1000})
	for i := range 20 {
		dialFrom(t, url, "127.0.0.1", nil).hello(fmt.Sprint("sybil", i), fmt.Sprint("net", i))
	}
	for i := range 80 {
		e := dialFrom(t, url, "127.0.0.1", nil).expectFatal(signaling.CodeSourceFull)
		if i == 0 && !strings.Contains(e.Message, "127.0.0.1") {
			t.Errorf("source_full message %q does not name the source", e.Message)
		}
	}
	// Writing a different X-Forwarded-For does not make a new source: nobody is trusted.
	dialFrom(t, url, "127.0.0.1", http.Header{"X-Forwarded-For": {"203.0.113.9"}}).expectFatal(signaling.CodeSourceFull)
	dialFrom(t, url, "127.0.0.2", nil).hello("honest", "lobby")
	st := srv.Stats()
	if st.Connections != 21 || st.Rejections[signaling.CodeSourceFull] != 81 || st.Rejections[signaling.CodeServerFull] != 0 {
		t.Fatalf("stats %+v, want 21 connections and 81 source_full", st)
	}
	t.Logf("one source: 20 admitted, 81 refused with source_full; another source admitted")
}

// Closing a connection gives the source its place back.
func TestSourcePlaceIsReturned(t *testing.T) {
	_, url := startServer(t, signalserver.Config{MaxConnectionsPerSource: 1})
	a := dialFrom(t, url, "127.0.0.1", nil)
	a.hello("a", "lobby")
	dialFrom(t, url, "127.0.0.1", nil).expectFatal(signaling.CodeSourceFull)
	a.ws.Close()
	deadline := time.Now().Add(wait)
	for {
		c := dialFrom(t, url, "127.0.0.1", nil)
		m, err := c.readAny()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if _, ok := m.(*signaling.Challenge); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the source's place was not returned: got %#v", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A trusted proxy's X-Forwarded-For names the source; the header from anyone else does not.
func TestTrustedProxyNamesTheSource(t *testing.T) {
	_, url := startServer(t, signalserver.Config{
		MaxConnectionsPerSource: 1,
		TrustedProxies:          []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	xff := func(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }
	dialFrom(t, url, "127.0.0.1", xff("198.51.100.1")).hello("a", "lobby")
	dialFrom(t, url, "127.0.0.1", xff("198.51.100.1")).expectFatal(signaling.CodeSourceFull)
	// The client cannot pick its source by prepending to the header: the proxy appends.
	dialFrom(t, url, "127.0.0.1", xff("192.0.2.50, 198.51.100.1")).expectFatal(signaling.CodeSourceFull)
	dialFrom(t, url, "127.0.0.1", xff("198.51.100.2")).hello("b", "lobby")
	// IPv6 clients of one /64 are one source.
	dialFrom(t, url, "127.0.0.1", xff("2001:db8:1:2::1")).hello("c", "lobby")
	e := dialFrom(t, url, "127.0.0.1", xff("2001:db8:1:2:ffff::9")).expectFatal(signaling.CodeSourceFull)
	if !strings.Contains(e.Message, "2001:db8:1:2::/64") {
		t.Errorf("message %q does not name the /64", e.Message)
	}
	dialFrom(t, url, "127.0.0.1", xff("2001:db8:1:3::1")).hello("d", "lobby")
	// An untrusted peer's header is ignored: 127.0.0.2 is its own source.
	dialFrom(t, url, "127.0.0.2", xff("198.51.100.3")).hello("e", "lobby")
	dialFrom(t, url, "127.0.0.2", xff("198.51.100.4")).expectFatal(signaling.CodeSourceFull)
}

func TestSourceRateLimits(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	_, url := startServer(t, signalserver.Config{ConnectionsPerSourcePerMinute: 3, Now: clock.Now})
	for i := range 3 {
		c := dialFrom(t, url, "127.0.0.1", nil)
		c.hello(fmt.Sprint("n", i), "lobby")
		c.ws.Close()
	}
	e := dialFrom(t, url, "127.0.0.1", nil).expectFatal(signaling.CodeSourceRateLimited)
	if !strings.Contains(e.Message, "connections") {
		t.Errorf("message %q does not say which limit", e.Message)
	}
	dialFrom(t, url, "127.0.0.2", nil).hello("other", "lobby")
	clock.mu.Lock()
	clock.now = clock.now.Add(20 * time.Second) // one connection's worth
	clock.mu.Unlock()
	dialFrom(t, url, "127.0.0.1", nil).hello("again", "lobby")
	dialFrom(t, url, "127.0.0.1", nil).expectFatal(signaling.CodeSourceRateLimited)

	_, url = startServer(t, signalserver.Config{HellosPerSourcePerMinute: 2, Now: clock.Now})
	dialFrom(t, url, "127.0.0.1", nil).hello("a", "lobby")
	dialFrom(t, url, "127.0.0.1", nil).hello("b", "lobby")
	c := dialFrom(t, url, "127.0.0.1", nil)
	c.send(c.helloFor("c", "lobby", ""))
	if e := c.expectFatal(signaling.CodeSourceRateLimited); !strings.Contains(e.Message, "hellos") {
		t.Errorf("message %q does not say which limit", e.Message)
	}
}

// Attack: receivers that never read, flooded with the largest offers by as many senders. Each
// receiver's queue stays within SendQueueBytes, all of them within MaxQueuedBytes, and they
// are dropped as slow consumers; the senders are told target_busy and stay.
func TestNeverReadingReceiversAreDroppedAndMemoryStaysBounded(t *testing.T) {
	pairs := 20
	if n, err := strconv.Atoi(os.Getenv("RTCMESH_FLOOD_PAIRS")); err == nil && n > 0 {
		pairs = n // for measuring: the default keeps the test short on shared machines
	}
	cfg := signalserver.Config{
		MaxConnectionsPerSource: 1000, ConnectionsPerSourcePerMinute: 1000, HellosPerSourcePerMinute: 1000,
		RateLimit: 1e6, RateBurst: 1e6, // the senders are not what this test is about
		SendQueueBytes: 256 << 10, MaxQueuedBytes: 4 << 20,
		WriteTimeout: time.Second,
		// Silence would drop the receivers too, later: this test is about the writes.
		PingInterval: 5 * time.Minute, PongTimeout: 10 * time.Minute,
	}
	srv, url := startServer(t, cfg)
	heapBefore := heapInUse()
	receivers := make([]*rawClient, pairs)
	senders := make([]*rawClient, pairs)
	for i := range pairs {
		receivers[i] = dialSmallBuffer(t, url)
		receivers[i].hello(fmt.Sprint("receiver", i), "flood")
		senders[i] = dialRaw(t, url, nil)
		senders[i].hello(fmt.Sprint("sender", i), "flood")
	}
	var maxQueued atomic.Int64
	var peakHeap uint64 // written by the sampler, read after sampler.Wait
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			if q := srv.Stats().QueuedBytes; q > maxQueued.Load() {
				maxQueued.Store(q)
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peakHeap = max(peakHeap, m.HeapInuse)
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	offer := strings.Repeat("v", 60<<10)
	var wg sync.WaitGroup
	var busy atomic.Int64
	for i, s := range senders {
		frame := mustMarshal(t, &signaling.Offer{To: idOf(fmt.Sprint("receiver", i)), SDP: offer})
		wg.Add(2)
		go func() { // the senders read their replies, as good clients do
			defer wg.Done()
			for {
				s.ws.SetReadDeadline(time.Now().Add(wait))
				_, data, err := s.ws.ReadMessage()
				if err != nil {
					return
				}
				if bytes.Contains(data, []byte(signaling.CodeTargetBusy)) {
					busy.Add(1)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if s.ws.WriteMessage(websocket.TextMessage, frame) != nil {
					return
				}
			}
		}()
	}
	// Before a receiver's writes stall, the kernel takes megabytes into its socket buffers, so
	// this takes a while on a loaded machine.
	deadline := time.Now().Add(12 * wait)
	for srv.Stats().Peers > pairs {
		if time.Now().After(deadline) {
			t.Fatalf("never-reading receivers still connected: %+v", srv.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	sampler.Wait()
	for _, s := range senders {
		s.ws.Close()
	}
	wg.Wait()
	st := srv.Stats()
	t.Logf("%d never-reading receivers, %d senders of 60 KiB offers: heap in use %d MiB before, at most %d MiB during the flood (clients and server in one process); server queued at most %d KiB (MaxQueuedBytes %d KiB); %d slow consumers dropped, %d relays refused with target_busy",
		pairs, pairs, heapBefore>>20, peakHeap>>20, maxQueued.Load()>>10, cfg.MaxQueuedBytes>>10,
		st.Rejections[signaling.CodeSlowConsumer], busy.Load())
	// Replies are not refused for MaxQueuedBytes; a sender has at most a few small ones queued.
	if bound := int64(cfg.MaxQueuedBytes) + int64(pairs)*4<<10; maxQueued.Load() > bound {
		t.Errorf("queued %d bytes, beyond MaxQueuedBytes and the replies' slack (%d)", maxQueued.Load(), bound)
	}
	if st.Rejections[signaling.CodeSlowConsumer] < uint64(pairs) {
		t.Errorf("%d slow consumers dropped, want all %d receivers", st.Rejections[signaling.CodeSlowConsumer], pairs)
	}
	waitFor(t, "queues released", func() bool { return srv.Stats().QueuedBytes == 0 })
}

// dialSmallBuffer is a client that will never read, with a small socket receive buffer so that
// the server's writes to it stall soon.
func dialSmallBuffer(t *testing.T, url string) *rawClient {
	t.Helper()
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(4096)
		}
		return c, err
	}}
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return &rawClient{t: t, ws: ws}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// A client that says hello and then uses its whole announced burst at once, reading only
// afterwards, gets every reply: the reply queue holds the burst.
func TestFullBurstIsNotCutOff(t *testing.T) {
	srv, url := startServer(t, signalserver.Config{MaxConnectionsPerSource: 1000, ConnectionsPerSourcePerMinute: 1000, HellosPerSourcePerMinute: 1000})
	for i := range 40 { // so that every peer list is full (32 IDs)
		dialRaw(t, url, nil).hello(fmt.Sprint("member", i), "lobby")
	}
	for round := range 5 {
		c := dialRaw(t, url, nil)
		w := c.hello(fmt.Sprint("burster", round), "lobby")
		ask := mustMarshal(t, &signaling.PeersRequest{Max: 32})
		for range w.Limits.Burst - 1 { // the hello took one token
			if err := c.ws.WriteMessage(websocket.TextMessage, ask); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		for i := range w.Limits.Burst - 1 {
			m, err := c.tryRead()
			if err != nil {
				t.Fatalf("round %d: reply %d: %v (stats %+v)", round, i, err, srv.Stats().Rejections)
			}
			if pl, ok := m.(*signaling.PeerList); !ok || len(pl.Peers) != 32 {
				t.Fatalf("round %d: reply %d is %#v", round, i, m)
			}
		}
		c.ws.Close()
	}
	if n := srv.Stats().Rejections[signaling.CodeSlowConsumer]; n != 0 {
		t.Fatalf("%d slow consumers", n)
	}
}

// A MaxConnections above what the open-file limit allows is lowered at start, with a log
// line, and the client beyond it is told server_full instead of hanging.
func TestMaxConnectionsCappedByFileLimit(t *testing.T) {
	var logs logSink
	_, url := startServer(t, signalserver.Config{
		MaxConnections: 50000, FileLimit: 140, ReservedFiles: 128, MaxConnectionsPerSource: 1000,
		Logger: zerolog.New(&logs),
	})
	if s := logs.String(); !strings.Contains(s, "max connections lowered to fit the open-file limit") || !strings.Contains(s, `"max_connections":12`) {
		t.Fatalf("no log line about the lowered limit:\n%s", s)
	}
	for i := range 12 {
		dialRaw(t, url, nil).hello(fmt.Sprint("n", i), "lobby")
	}
	e := dialRaw(t, url, nil).expectFatal(signaling.CodeServerFull)
	if !strings.Contains(e.Message, "12") {
		t.Errorf("server_full message %q does not name the limit", e.Message)
	}

	if _, err := signalserver.New(overDefaults(signalserver.Config{FileLimit: 100, ReservedFiles: 128})); err == nil ||
		!strings.Contains(err.Error(), "no room for connections") {
		t.Fatalf("New with fewer files than ReservedFiles: %v", err)
	}
}

type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
