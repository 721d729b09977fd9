package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/node/nodehttp"
)

// postBroadcast POSTs body to a node's /broadcast and returns the status and the body.
func postBroadcast(t *testing.T, addr net.Addr, body string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: testWait}
	resp, err := client.Post("http://"+addr.String()+"/broadcast", "application/octet-stream", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST /broadcast: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST /broadcast: reading the body: %v", err)
	}
	return resp.StatusCode, string(b)
}

func TestBroadcastEndpointEndToEnd(t *testing.T) {
	sigCfg, _, err := parseSignalFlags([]string{"--listen", "127.0.0.1:0", "--web=false"}, io.Discard, noEnv)
	if err != nil {
		t.Fatalf("parseSignalFlags: %v", err)
	}
	sig := startCommand(t, func(ctx context.Context, log zerolog.Logger, ready func(signalAddrs)) error {
		return serveSignal(ctx, sigCfg, log, ready)
	})
	ws := "ws://" + sig.addrs.HTTP.String() + "/ws"

	first, _ := startTestNode(t, ws, "http-broadcast", "--http-broadcast")
	// Alone, the node refuses: the message would reach nobody.
	if code, body := postBroadcast(t, first, "too early"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no neighbour") {
		t.Errorf("POST /broadcast without a neighbour answered %d %q, want 503 naming the missing neighbour", code, body)
	}
	second, _ := startTestNode(t, ws, "http-broadcast")
	for _, a := range []net.Addr{first, second} {
		waitFor(t, a.String()+" /readyz to answer 200", func() bool {
			code, _ := httpGet(t, "http://"+a.String()+"/readyz")
			return code == http.StatusOK
		})
	}
	code, body := postBroadcast(t, first, "posted line")
	if code != http.StatusOK {
		t.Fatalf("POST /broadcast answered %d %q, want 200", code, body)
	}
	var resp nodehttp.BroadcastResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.ID) != 32 || resp.Bytes != len("posted line") {
		t.Fatalf("POST /broadcast answered %q (%v), want {\"id\": 32 hex digits, \"bytes\": %d}", body, err, len("posted line"))
	}
	waitFor(t, "the second node to count the delivery", func() bool {
		return scrape(t, second)["rtcmesh_gossip_delivered_total"] == 1
	})
	if s := scrape(t, first); s["rtcmesh_gossip_broadcasts_total"] != 1 {
		t.Errorf("sender's broadcasts_total %v, want 1", s["rtcmesh_gossip_broadcasts_total"])
	}
	// The second node did not opt in: its HTTP server has no /broadcast.
	if code, _ := postBroadcast(t, second, "not served"); code != http.StatusNotFound {
		t.Errorf("POST /broadcast without --http-broadcast answered %d, want 404", code)
	}
}
