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
	// Alone, the node takes the message and says it waits for a neighbour: 202, queued.
	code, body := postBroadcast(t, first, "too early")
	var early nodehttp.BroadcastResponse
	if err := json.Unmarshal([]byte(body), &early); code != http.StatusAccepted || err != nil || !early.Queued || len(early.ID) != 32 {
		t.Errorf("POST /broadcast without a neighbour answered %d %q, want 202 with queued true and the ID", code, body)
	}
	second, _ := startTestNode(t, ws, "http-broadcast")
	for _, a := range []net.Addr{first, second} {
		waitFor(t, a.String()+" /readyz to answer 200", func() bool {
			code, _ := httpGet(t, "http://"+a.String()+"/readyz")
			return code == http.StatusOK
		})
	}
	// The early message reaches the second node once they are neighbours.
	waitFor(t, "the second node to deliver the message posted while the first was alone", func() bool {
		return scrape(t, second)["rtcmesh_gossip_delivered_total"] == 1
	})
	code, body = postBroadcast(t, first, "posted line")
	if code != http.StatusOK {
		t.Fatalf("POST /broadcast answered %d %q, want 200", code, body)
	}
	var resp nodehttp.BroadcastResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.ID) != 32 || resp.Bytes != len("posted line") || resp.Queued {
		t.Fatalf("POST /broadcast answered %q (%v), want {\"id\": 32 hex digits, \"bytes\": %d}", body, err, len("posted line"))
	}
	waitFor(t, "the second node to count the delivery", func() bool {
		return scrape(t, second)["rtcmesh_gossip_delivered_total"] == 2
	})
	if s := scrape(t, first); s["rtcmesh_gossip_broadcasts_total"] != 2 {
		t.Errorf("sender's broadcasts_total %v, want 2", s["rtcmesh_gossip_broadcasts_total"])
	}
	// The second node did not opt in: its HTTP server has no /broadcast.
	if code, _ := postBroadcast(t, second, "not served"); code != http.StatusNotFound {
		t.Errorf("POST /broadcast without --http-broadcast answered %d, want 404", code)
	}
}
