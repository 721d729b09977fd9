package nodehttp

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestBroadcastHandlerRefusesBadRequests(t *testing.T) {
	const maxPayload = 16
	var sent [][]byte
	alone := false
	h := BroadcastHandler(func(data []byte) (string, error) {
		sent = append(sent, data)
		return "00112233445566778899aabbccddeeff", nil
	}, func() bool { return !alone }, maxPayload, zerolog.Nop())
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
	// Alone, the node still broadcasts (the core keeps the message for its first neighbour),
	// and says so.
	alone = true
	rec := do(http.MethodPost, "hello", false)
	var queued BroadcastResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &queued); rec.Code != http.StatusAccepted || err != nil || !queued.Queued {
		t.Errorf("alone: %d %q, want 202 with queued true", rec.Code, rec.Body.String())
	}
	alone = false
	sent = nil
	rec = do(http.MethodPost, strings.Repeat("y", maxPayload), false)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("a payload of exactly the limit: %d %q, want 200 JSON", rec.Code, rec.Body.String())
	}
	var resp BroadcastResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.ID != "00112233445566778899aabbccddeeff" || resp.Bytes != maxPayload || resp.Queued {
		t.Errorf("answer %q (%v), want the ID and %d bytes", rec.Body.String(), err, maxPayload)
	}
	if len(sent) != 1 || string(sent[0]) != strings.Repeat("y", maxPayload) {
		t.Errorf("broadcast %q, want the one body", sent)
	}
}
