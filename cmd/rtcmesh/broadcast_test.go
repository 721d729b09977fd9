package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
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
	var resp broadcastResponse
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

func TestBroadcastHandlerRefusesBadRequests(t *testing.T) {
	const maxPayload = 16
	var sent [][]byte
	notReady := false
	h := broadcastHandler(func(data []byte) (string, error) {
		sent = append(sent, data)
		return "00112233445566778899aabbccddeeff", nil
	}, func() error {
		if notReady {
			return errors.New("no neighbour yet")
		}
		return nil
	}, maxPayload, zerolog.Nop())
	do := func(method, body string, chunked bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/broadcast", strings.NewReader(body))
		if chunked {
			req.ContentLength = -1 // a body of unknown length, as a chunked upload
		}
		rec := httptest.NewRecorder()
		h(rec, req)
		return rec
	}
	for _, c := range []struct {
		name, method, body string
		chunked            bool
		want               int
		wantIn             string
	}{
		{"GET", http.MethodGet, "", false, http.StatusMethodNotAllowed, "POST"},
		{"PUT", http.MethodPut, "x", false, http.StatusMethodNotAllowed, "POST"},
		{"empty", http.MethodPost, "", false, http.StatusBadRequest, "empty"},
		{"too large", http.MethodPost, strings.Repeat("x", maxPayload+1), false, http.StatusRequestEntityTooLarge, "16 bytes"},
		{"too large, unknown length", http.MethodPost, strings.Repeat("x", maxPayload+1), true, http.StatusRequestEntityTooLarge, "16 bytes"},
	} {
		rec := do(c.method, c.body, c.chunked)
		if rec.Code != c.want || !strings.Contains(rec.Body.String(), c.wantIn) {
			t.Errorf("%s: %d %q, want %d containing %q", c.name, rec.Code, rec.Body.String(), c.want, c.wantIn)
		}
		if c.want == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != http.MethodPost {
			t.Errorf("%s: Allow %q, want POST", c.name, rec.Header().Get("Allow"))
		}
	}
	if len(sent) != 0 {
		t.Fatalf("refused requests broadcast %q", sent)
	}
	notReady = true
	if rec := do(http.MethodPost, "hello", false); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("not ready: %d %q, want 503", rec.Code, rec.Body.String())
	}
	notReady = false
	rec := do(http.MethodPost, strings.Repeat("y", maxPayload), false)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("a payload of exactly the limit: %d %q, want 200 JSON", rec.Code, rec.Body.String())
	}
	var resp broadcastResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.ID != "00112233445566778899aabbccddeeff" || resp.Bytes != maxPayload {
		t.Errorf("answer %q (%v), want the ID and %d bytes", rec.Body.String(), err, maxPayload)
	}
	if len(sent) != 1 || string(sent[0]) != strings.Repeat("y", maxPayload) {
		t.Errorf("broadcast %q, want the one body", sent)
	}
}
