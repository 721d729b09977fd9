package signalservice

import (
	"net/http"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/rtcmesh/rtcmesh/signaling/signalnats"
)

// A service with NATS shares its networks through it: it is ready while connected, exports
// the cluster's metrics, and /readyz fails once NATS is gone.
func TestServiceWithNATS(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	defer ns.Shutdown()

	c := DefaultConfig()
	c.Listen = "127.0.0.1:0"
	nc := signalnats.DefaultConfig(ns.ClientURL())
	nc.ReconnectWait = 50 * time.Millisecond
	c.NATS = &nc
	s, err := Start(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr().String()
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with NATS up: %d %q", code, body)
	}
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, "rtcmesh_signal_nats_connected 1") {
		t.Errorf("/metrics lacks rtcmesh_signal_nats_connected 1")
	}
	if s.Cluster() == nil {
		t.Fatal("no cluster")
	}
	ns.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, base+"/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "NATS") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz with NATS gone: %d %q, want 503 naming NATS", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestValidateNATS(t *testing.T) {
	c := DefaultConfig()
	bad := signalnats.DefaultConfig()
	c.NATS = &bad
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "URLs") {
		t.Errorf("NATS without URLs: %v", err)
	}
	c = DefaultConfig()
	cl := signalnats.Cluster{}
	c.Signal.Cluster = &cl
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "Signal.Cluster is set by Start") {
		t.Errorf("Signal.Cluster set: %v", err)
	}
}

// Starting with an unreachable NATS fails at once, naming it.
func TestStartWithoutNATS(t *testing.T) {
	c := DefaultConfig()
	c.Listen = "127.0.0.1:0"
	nc := signalnats.DefaultConfig("nats://127.0.0.1:1")
	nc.ConnectTimeout = time.Second
	c.NATS = &nc
	if s, err := Start(c); err == nil {
		s.Close()
		t.Fatal("started without NATS")
	} else if !strings.Contains(err.Error(), "nats://127.0.0.1:1") {
		t.Errorf("error %v does not name the NATS URL", err)
	}
}
