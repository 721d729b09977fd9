package signalservice

import (
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
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

// TestReloadTURN rotates the TURN secret of a running service with an embedded relay and an
// external TURN server: the welcomes' credentials for both are then minted with the new secret,
// the relay counts the reload, and a reload with a short secret changes nothing and is counted
// as failed.
func TestReloadTURN(t *testing.T) {
	const oldSecret, newSecret = "reload-old-secret-0123456789", "reload-new-secret-9876543210"
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.Now = func() time.Time { return now }
	tc := turnserver.DefaultConfig()
	tc.ListenUDP, tc.ListenTCP = "127.0.0.1:0", ""
	tc.PublicIP = netip.MustParseAddr("127.0.0.1")
	tc.RelayPortMin, tc.RelayPortMax = 0, 0
	tc.Secret = oldSecret
	c.TURN = &tc
	c.TURNURLs, c.TURNSecret = []string{"turn:turn.example.org:3478"}, oldSecret
	s, err := Start(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// passwords returns the embedded relay's and the external server's password in a welcome.
	passwords := func() []string {
		var out []string
		for _, ice := range s.iceServers("node-a") {
			if ice.Credential != "" {
				out = append(out, ice.Credential)
			}
		}
		return out
	}
	minted := func(secret string) string {
		_, pass := turnserver.Credentials(secret, "node-a", c.CredentialTTL, now)
		return pass
	}
	if got := passwords(); !slices.Equal(got, []string{minted(oldSecret), minted(oldSecret)}) {
		t.Fatalf("before the reload: passwords %q, want both minted with the old secret", got)
	}
	if err := s.ReloadTURN(turnserver.Reloadable{Secret: newSecret, AcceptedSecrets: []string{oldSecret}}); err != nil {
		t.Fatalf("ReloadTURN: %v", err)
	}
	if got := passwords(); !slices.Equal(got, []string{minted(newSecret), minted(newSecret)}) {
		t.Errorf("after the reload: passwords %q, want both minted with the new secret", got)
	}
	if err := s.ReloadTURN(turnserver.Reloadable{Secret: "short"}); err == nil {
		t.Error("a reload with a short secret was accepted")
	}
	if got := passwords(); !slices.Equal(got, []string{minted(newSecret), minted(newSecret)}) {
		t.Errorf("after a refused reload: passwords %q, want the new secret's still", got)
	}
	if st := s.Relay().Stats(); st.Reloads != 1 || st.ReloadFailures != 1 {
		t.Errorf("relay stats: %d reloads, %d failures, want 1 and 1", st.Reloads, st.ReloadFailures)
	}

	bare := DefaultConfig()
	bare.Listen = "127.0.0.1:0"
	b, err := Start(bare)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.ReloadTURN(turnserver.Reloadable{Secret: newSecret}); !errors.Is(err, errNothingToReload) {
		t.Errorf("a service without TURN: ReloadTURN = %v, want errNothingToReload", err)
	}
}
