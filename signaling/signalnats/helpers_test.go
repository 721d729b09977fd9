package signalnats_test

import (
	"context"
	"net"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalclient"
	"github.com/rtcmesh/rtcmesh/signaling/signalnats"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

const wait = 10 * time.Second

// startNATS runs an embedded nats-server (the Go module) on a free loopback port.
func startNATS(t testing.TB) string {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(wait) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

// instance is one signaling server sharing its networks through a Cluster.
type instance struct {
	t       testing.TB
	srv     *signalserver.Server
	cluster *signalnats.Cluster
	hs      *httptest.Server
	addr    string
	closed  bool
}

// testClusterConfig is DefaultConfig with presence fast enough for tests.
func testClusterConfig(natsURL string) signalnats.Config {
	cfg := signalnats.DefaultConfig(natsURL)
	cfg.PresenceInterval = 200 * time.Millisecond
	cfg.PresenceTTL = time.Second
	return cfg
}

func startInstance(t testing.TB, ccfg signalnats.Config) *instance {
	t.Helper()
	cfg := signalserver.DefaultConfig()
	// Every client of these tests connects from 127.0.0.1.
	cfg.MaxConnectionsPerSource = 1000
	cfg.ConnectionsPerSourcePerMinute = 100000
	cfg.HellosPerSourcePerMinute = 100000
	cfg.RateLimit, cfg.RateBurst = 10000, 10000
	return startInstanceWith(t, ccfg, cfg)
}

// startInstanceWith is startInstance with the server's configuration given.
func startInstanceWith(t testing.TB, ccfg signalnats.Config, cfg signalserver.Config) *instance {
	t.Helper()
	cl, err := signalnats.Dial(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cluster = cl
	srv, err := signalserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener.Close()
	hs.Listener = l
	hs.Start()
	in := &instance{t: t, srv: srv, cluster: cl, hs: hs, addr: l.Addr().String()}
	t.Cleanup(in.stop)
	return in
}

func (in *instance) url() string { return "ws://" + in.addr + "/ws" }

// stop shuts the instance down gracefully: its clients are told bye, the other instances
// are told its members are gone.
func (in *instance) stop() {
	if in.closed {
		return
	}
	in.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	in.srv.Shutdown(ctx)
	in.hs.Close()
	in.cluster.Close()
}

// crash cuts the instance off NATS without a word, then drops its clients: the other
// instances learn of it only through presence expiry.
func (in *instance) crash() {
	if in.closed {
		return
	}
	in.closed = true
	in.cluster.Close()
	in.hs.CloseClientConnections()
	in.hs.Close()
	in.srv.Close()
}

// client is a signalclient with its events collected.
type client struct {
	t      testing.TB
	c      *signalclient.Client
	cancel context.CancelFunc
	done   chan error
	events chan signalclient.Event

	closeOnce sync.Once
}

func newKey(t testing.TB) *identity.Key {
	t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func connect(t testing.TB, key *identity.Key, urls ...string) *client {
	t.Helper()
	cfg := signalclient.DefaultConfig(urls[0], key, "net.test")
	cfg.FallbackURLs = urls[1:]
	cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	sc, err := signalclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cl := &client{t: t, c: sc, cancel: cancel, done: make(chan error, 1), events: make(chan signalclient.Event, 1024)}
	go func() {
		for ev := range sc.Events() {
			cl.events <- ev
		}
	}()
	go func() { cl.done <- sc.Run(ctx) }()
	t.Cleanup(cl.close)
	return cl
}

func (c *client) close() {
	c.cancel()
	c.closeOnce.Do(func() {
		select {
		case <-c.done:
		case <-time.After(wait):
		}
	})
}

// ended waits for Run to return and returns its error.
func (c *client) ended() (error, bool) {
	var err error
	ok := false
	c.closeOnce.Do(func() {
		select {
		case err = <-c.done:
			ok = true
		case <-time.After(wait):
		}
	})
	return err, ok
}

// next returns the next message event matching ok, failing after wait.
func (c *client) next(what string, ok func(signaling.Message) bool) signaling.Message {
	c.t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev := <-c.events:
			if ev.Message != nil && ok(ev.Message) {
				return ev.Message
			}
		case <-timeout:
			c.t.Fatalf("%s: no %s within %v", c.c.ID(), what, wait)
			return nil
		}
	}
}

func (c *client) welcome() *signaling.Welcome {
	c.t.Helper()
	return c.next("welcome", func(m signaling.Message) bool { _, ok := m.(*signaling.Welcome); return ok }).(*signaling.Welcome)
}

// waitPeers asks for peer lists until one contains every ID of want.
func (c *client) waitPeers(want ...string) {
	c.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if err := c.c.RequestPeers(32); err == nil {
			m := c.next("peer list", func(m signaling.Message) bool { _, ok := m.(*signaling.PeerList); return ok })
			got := m.(*signaling.PeerList).Peers
			missing := 0
			for _, id := range want {
				if !slices.Contains(got, id) {
					missing++
				}
			}
			if missing == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: peer lists still miss some of %v", c.c.ID(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitFor(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
