package signalservice

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/turnserver"
	"github.com/rtcmesh/rtcmesh/web"
)

func TestValidateReportsEveryFieldInOrder(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	c := DefaultConfig()
	c.Listen, c.DrainTimeout, c.Signal.ContactCount = "", 0, 0
	c.NetworkSecret = "short"
	c.TURNURLs, c.STUNURLs = []string{"http://x"}, []string{"turn:x"}
	c.Web = &web.Config{Network: strings.Repeat("n", 100)}
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{"Listen is empty", "DrainTimeout", "ContactCount", "NetworkSecret", "TURNURLs", "TURNSecret", "STUNURLs", "Web.Network"}
	msg, last := err.Error(), -1
	for _, w := range want {
		i := strings.Index(msg, w)
		if i < 0 || i < last {
			t.Errorf("%q missing or out of order in:\n%s", w, msg)
		}
		last = i
	}
	if again := c.Validate(); again.Error() != msg {
		t.Errorf("two validations differ:\n%s\n%s", msg, again)
	}
	c = DefaultConfig()
	tc := turnserver.DefaultConfig() // no secret, no public IP
	c.TURN = &tc
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "Secret") {
		t.Errorf("a relay without a secret: %v", err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestStartServesHealthAndCloses(t *testing.T) {
	c := DefaultConfig()
	c.Listen = "127.0.0.1:0"
	s, err := Start(c)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr().String()
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		if code, body := get(t, base+path); code != http.StatusOK || body != want {
			t.Errorf("%s: %d %q, want 200 %q", path, code, body, want)
		}
	}
	if code, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "rtcmesh_signal_peers") {
		t.Errorf("/metrics: %d, lacks rtcmesh_signal_peers", code)
	}
	if code, _ := get(t, base+"/"); code != http.StatusNotFound {
		t.Errorf("/ without Web: %d, want 404", code)
	}
	if s.SignalURL() != "ws://"+s.Addr().String()+"/ws" || s.Relay() != nil || s.Page() != nil {
		t.Errorf("SignalURL %q, relay %v, page %v", s.SignalURL(), s.Relay(), s.Page())
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if s.Ready() == nil {
		t.Error("ready after Close")
	}
	select {
	case <-s.Failed():
	default:
		t.Error("Failed not closed after Close")
	}
}
