package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/node/nodetest"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalclient"
	"github.com/rtcmesh/rtcmesh/turnserver"
)

// testWait is the generous deadline for conditions on loopback sockets: the test machines
// are shared and slow.
const testWait = 10 * time.Second

const testTURNSecret = "cmd-test-turn-secret-0123456789"

// noEnv is a getenv with no variables set, so tests do not depend on the environment.
func noEnv(string) string { return "" }

// logBuffer collects a command's JSON log lines; the commands log from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// running is a command started in-process by startCommand.
type running[A any] struct {
	addrs  A
	cancel context.CancelFunc
	done   chan error
	logs   *logBuffer
}

// startCommand runs serve in a goroutine with a cancellable context and waits for its ready
// callback. The command is stopped with the test if the test did not stop it.
func startCommand[A any](t *testing.T, serve func(ctx context.Context, log zerolog.Logger, ready func(A)) error) *running[A] {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running[A]{cancel: cancel, done: make(chan error, 1), logs: &logBuffer{}}
	ready := make(chan A, 1)
	go func() { r.done <- serve(ctx, newLogger(r.logs, zerolog.DebugLevel), func(a A) { ready <- a }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(testWait):
			t.Error("command did not return after its context was cancelled")
		}
		if t.Failed() {
			t.Logf("command log:\n%s", r.logs)
		}
	})
	select {
	case r.addrs = <-ready:
	case err := <-r.done:
		t.Fatalf("command returned before it was ready: %v", err)
	case <-time.After(testWait):
		t.Fatal("command did not become ready")
	}
	return r
}

// stop cancels the command's context and returns what it returned.
func (r *running[A]) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(testWait):
		t.Fatal("command did not return after its context was cancelled")
		return nil
	}
}

// testID is the node ID of the test client called name (see startClient).
func testID(t testing.TB, name string) string { return nodetest.Key(t, name).ID() }

// startClient runs a signaling client until the test ends; the channel yields Run's result.
func startClient(t *testing.T, url, name, network, token string) (*signalclient.Client, <-chan error) {
	t.Helper()
	cfg := signalclient.DefaultConfig(url, nodetest.Key(t, name), network)
	cfg.Token = token
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	c, err := signalclient.New(cfg)
	if err != nil {
		t.Fatalf("signalclient.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		done <- c.Run(ctx)
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(testWait):
			t.Errorf("client %s did not stop", name)
		}
	})
	return c, done
}

func nextEvent(t *testing.T, c *signalclient.Client) signalclient.Event {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatal("client's events channel closed")
		}
		return ev
	case <-time.After(testWait):
		t.Fatal("timed out waiting for a signaling event")
	}
	return signalclient.Event{}
}

func expectWelcome(t *testing.T, c *signalclient.Client) *signaling.Welcome {
	t.Helper()
	ev := nextEvent(t, c)
	w, ok := ev.Message.(*signaling.Welcome)
	if !ok {
		t.Fatalf("got event %+v, want a welcome", ev)
	}
	return w
}

// checkCredentials checks that a welcome's ICE server carries TURN REST credentials for id
// under secret that expire ttl after they were minted, with no more than testWait between
// minting and now.
func checkCredentials(t *testing.T, s signaling.ICEServer, id, secret string, ttl time.Duration) {
	t.Helper()
	expiryText, user, ok := strings.Cut(s.Username, ":")
	if !ok || user != id {
		t.Fatalf("TURN username %q, want expiry:%s", s.Username, id)
	}
	expiry, err := strconv.ParseInt(expiryText, 10, 64)
	if err != nil {
		t.Fatalf("TURN username %q: expiry is not a number", s.Username)
	}
	minted := time.Unix(expiry, 0).Add(-ttl)
	if d := time.Since(minted); d < -time.Second || d > testWait {
		t.Fatalf("TURN credentials expire at %v, want about %v from now", time.Unix(expiry, 0), ttl)
	}
	wantUser, wantPass := turnserver.Credentials(secret, id, ttl, minted)
	if s.Username != wantUser || s.Credential != wantPass {
		t.Fatalf("TURN credentials %q/%q, want %q/%q", s.Username, s.Credential, wantUser, wantPass)
	}
}

// newTURNClient is a pion/turn client on 127.0.0.1 talking UDP to server.
func newTURNClient(t *testing.T, server, username, password string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server,
		TURNServerAddr: server,
		Conn:           conn,
		Username:       username,
		Password:       password,
		LoggerFactory:  &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled},
	})
	if err != nil {
		t.Fatalf("turn.NewClient: %v", err)
	}
	if err := client.Listen(); err != nil {
		t.Fatalf("turn client Listen: %v", err)
	}
	t.Cleanup(client.Close)
	return client
}

func TestSignalServesRelaysAndShutsDown(t *testing.T) {
	const (
		networkSecret = "network-secret-0123456789"
		externalTURN  = "turn:turn.example.org:3478?transport=udp"
		externalTURNS = "turns:turn.example.org:443?transport=tcp"
		stunURL       = "stun:stun.example.org:3478"
		ttl           = time.Hour
	)
	cfg, _, err := parseSignalFlags([]string{
		"--listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0", "--turn-relay-ports", "0",
		"--turn-secret", testTURNSecret, "--turn-credential-ttl", ttl.String(),
		"--turn-url", externalTURN + "," + externalTURNS, "--stun-url", stunURL,
		"--network-secret", networkSecret, "--drain-timeout", "5s",
	}, io.Discard, noEnv)
	if err != nil {
		t.Fatalf("parseSignalFlags: %v", err)
	}
	cmd := startCommand(t, func(ctx context.Context, log zerolog.Logger, ready func(signalAddrs)) error {
		return serveSignal(ctx, cfg, log, ready)
	})
	addrs := cmd.addrs
	if addrs.TURN.UDP == nil || addrs.TURN.TCP == nil {
		t.Fatalf("embedded TURN addresses %+v, want UDP and TCP", addrs.TURN)
	}
	if logs := cmd.logs.String(); !strings.Contains(logs, "signaling server listening") || !strings.Contains(logs, addrs.HTTP.String()) ||
		!strings.Contains(logs, addrs.TURN.UDP.String()) {
		t.Errorf("start log does not name the listen addresses %v and %v:\n%s", addrs.HTTP, addrs.TURN.UDP, logs)
	}
	url := "ws://" + addrs.HTTP.String() + "/ws"
	token := signaling.NetworkToken([]byte(networkSecret), "net1")

	a, _ := startClient(t, url, "node-a", "net1", token)
	welcomeA := expectWelcome(t, a)
	wantUDP := "turn:" + addrs.TURN.UDP.String() + "?transport=udp"
	var embedded *signaling.ICEServer
	var sawExternal, sawSTUN bool
	for i, s := range welcomeA.ICEServers {
		switch {
		case slices.Contains(s.URLs, wantUDP):
			if !slices.Equal(s.URLs, addrs.TURN.URLs) {
				t.Errorf("embedded relay URLs %q, want %q", s.URLs, addrs.TURN.URLs)
			}
			checkCredentials(t, s, testID(t, "node-a"), testTURNSecret, ttl)
			embedded = &welcomeA.ICEServers[i]
		case slices.Equal(s.URLs, []string{externalTURN, externalTURNS}):
			checkCredentials(t, s, testID(t, "node-a"), testTURNSecret, ttl)
			sawExternal = true
		case slices.Equal(s.URLs, []string{stunURL}):
			if s.Username != "" || s.Credential != "" {
				t.Errorf("STUN server carries credentials: %+v", s)
			}
			sawSTUN = true
		default:
			t.Errorf("unexpected ICE server %+v", s)
		}
	}
	if embedded == nil || !sawExternal || !sawSTUN {
		t.Fatalf("welcome ICE servers %+v: want the embedded relay (%s), the external TURN servers and the STUN server", welcomeA.ICEServers, wantUDP)
	}

	// The credentials in the welcome open an allocation on the embedded relay.
	relayConn, err := newTURNClient(t, addrs.TURN.UDP.String(), embedded.Username, embedded.Credential).Allocate()
	if err != nil {
		t.Fatalf("allocating on the embedded relay with the welcome's credentials: %v", err)
	}
	defer relayConn.Close()

	b, _ := startClient(t, url, "node-b", "net1", token)
	welcomeB := expectWelcome(t, b)
	if !slices.Contains(welcomeB.Contacts, testID(t, "node-a")) {
		t.Errorf("node-b's contacts %q do not include node-a", welcomeB.Contacts)
	}
	if err := a.SendOffer(testID(t, "node-b"), "v=0 offer from a"); err != nil {
		t.Fatalf("SendOffer: %v", err)
	}
	ev := nextEvent(t, b)
	if o, ok := ev.Message.(*signaling.Offer); !ok || o.From != testID(t, "node-a") || o.SDP != "v=0 offer from a" {
		t.Fatalf("node-b got %+v, want the offer from node-a", ev)
	}

	// The network is closed: a hello without the token is refused for good.
	_, strangerDone := startClient(t, url, "node-c", "net1", "")
	select {
	case err := <-strangerDone:
		var se *signaling.Error
		if !errors.As(err, &se) || se.Code != signaling.CodeUnauthorized {
			t.Fatalf("client without a token stopped with %v, want unauthorized", err)
		}
	case <-time.After(testWait):
		t.Fatal("client without a token was not refused")
	}

	resp, err := http.Get("http://" + addrs.HTTP.String() + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Fatalf("/healthz answered %d %q, want 200 \"ok\"", resp.StatusCode, body)
	}

	if err := cmd.stop(t); err != nil {
		t.Fatalf("serveSignal returned %v after cancel, want nil", err)
	}
	for _, c := range []*signalclient.Client{a, b} {
		for {
			ev := nextEvent(t, c)
			if ev.Disconnected != nil {
				if !errors.Is(ev.Disconnected, signalclient.ErrServerGoingAway) {
					t.Errorf("client disconnected with %v, want %v", ev.Disconnected, signalclient.ErrServerGoingAway)
				}
				break
			}
		}
	}
	if _, err := net.DialTimeout("tcp", addrs.HTTP.String(), time.Second); err == nil {
		t.Error("the HTTP listener still accepts connections after shutdown")
	}
	if logs := cmd.logs.String(); !strings.Contains(logs, "TURN relay closed") {
		t.Errorf("the embedded relay was not closed:\n%s", logs)
	}
}

func TestSignalWithoutTURN(t *testing.T) {
	cfg, _, err := parseSignalFlags([]string{"--listen", "127.0.0.1:0"}, io.Discard, noEnv)
	if err != nil {
		t.Fatalf("parseSignalFlags: %v", err)
	}
	if cfg.TURN != nil || cfg.NetworkSecret != "" {
		t.Fatalf("defaults run an embedded relay or close networks: %+v", cfg)
	}
	cmd := startCommand(t, func(ctx context.Context, log zerolog.Logger, ready func(signalAddrs)) error {
		return serveSignal(ctx, cfg, log, ready)
	})
	c, _ := startClient(t, "ws://"+cmd.addrs.HTTP.String()+"/ws", "node-a", "open", "")
	if w := expectWelcome(t, c); len(w.ICEServers) != 0 {
		t.Errorf("welcome without any TURN or STUN flag carries ICE servers %+v", w.ICEServers)
	}
	if err := cmd.stop(t); err != nil {
		t.Fatalf("serveSignal returned %v, want nil", err)
	}
}

func TestSignalFlagsFromEnvironment(t *testing.T) {
	env := map[string]string{
		"RTCMESH_LISTEN":          "127.0.0.1:9999",
		"RTCMESH_TURN_URL":        "turn:a.example.org:3478,turns:b.example.org:443?transport=tcp",
		"RTCMESH_TURN_SECRET":     testTURNSecret,
		"RTCMESH_ALLOWED_ORIGINS": "https://app.example.org, https://other.example.org",
		"RTCMESH_CONTACTS":        "5",
		"RTCMESH_LOG_LEVEL":       "warn",
	}
	cfg, level, err := parseSignalFlags([]string{"--contacts", "3"}, io.Discard, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("parseSignalFlags: %v", err)
	}
	if cfg.Listen != "127.0.0.1:9999" || cfg.TURNSecret != testTURNSecret || level != zerolog.WarnLevel {
		t.Errorf("environment not applied: listen %q, level %v", cfg.Listen, level)
	}
	if !slices.Equal(cfg.TURNURLs, []string{"turn:a.example.org:3478", "turns:b.example.org:443?transport=tcp"}) {
		t.Errorf("TURN URLs %q", cfg.TURNURLs)
	}
	if !slices.Equal(cfg.Signal.AllowedOrigins, []string{"https://app.example.org", "https://other.example.org"}) {
		t.Errorf("allowed origins %q", cfg.Signal.AllowedOrigins)
	}
	if cfg.Signal.ContactCount != 3 {
		t.Errorf("contacts %d: the command line must win over RTCMESH_CONTACTS", cfg.Signal.ContactCount)
	}
}

// runMain runs realMain, failing the test if it does not return (a command line that should
// have been refused started a server instead).
func runMain(t *testing.T, args ...string) (code int, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- realMain(args, &out, &errOut) }()
	select {
	case code = <-done:
		return code, errOut.String()
	case <-time.After(testWait):
		t.Fatalf("rtcmesh %q did not return", args)
		return 0, ""
	}
}

func TestCommandLineErrors(t *testing.T) {
	good := testTURNSecret
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"signal", "--turn-listen", "127.0.0.1:0", "--turn-secret", "short"}, "--turn-secret must be at least 16 bytes, got 5"},
		{[]string{"signal", "--turn-url", "turn:turn.example.org:3478"}, "--turn-secret must be at least 16 bytes, got 0"},
		{[]string{"signal", "--turn-listen", "127.0.0.1:0", "--turn-secret", good, "--turn-relay-ports", "60000-50000"}, "MIN is above MAX"},
		{[]string{"signal", "--turn-relay-ports", "50000-70000"}, "not a number from 1 to 65535"},
		{[]string{"signal", "--turn-listen", "0.0.0.0:3478", "--turn-secret", good}, "--turn-public-ip is required"},
		{[]string{"signal", "--turn-url", "http://turn.example.org", "--turn-secret", good}, `must start with turn: or turns:`},
		{[]string{"signal", "--stun-url", "turn:x.example.org"}, `must start with stun: or stuns:`},
		{[]string{"signal", "--network-secret", "tiny"}, "--network-secret must be at least 16 bytes"},
		{[]string{"signal", "--contacts", "0"}, "--contacts must be positive"},
		{[]string{"signal", "--pow-bits", "33"}, "--pow-bits"},
		{[]string{"signal", "--pow-bits", "-1"}, "outside 0..32"},
		{[]string{"node", "--pow-bits", "40"}, "--pow-bits: identity: proof-of-work difficulty 40 bits is outside 0..32"},
		{[]string{"signal", "--allowed-origins", "example.org"}, "want scheme://host[:port]"},
		{[]string{"signal", "--log-level", "loud"}, `unknown log level "loud"`},
		{[]string{"signal", "extra"}, `unexpected argument "extra"`},
		{[]string{"turn", "--listen", "127.0.0.1:0", "--secret", "short"}, "--secret must be at least 16 bytes, got 5"},
		{[]string{"turn", "--listen", "127.0.0.1:0", "--secret", good, "--relay-ports", "5000"}, "is not MIN-MAX"},
		{[]string{"turn", "--listen", "127.0.0.1:0", "--secret", good, "--relay-ports", "0-10"}, "not a number from 1 to 65535"},
		{[]string{"turn", "--secret", good}, "--public-ip is required"},
		{[]string{"turn", "--listen", "127.0.0.1:0", "--secret", good, "--allow-peers", "10.0.0.0/33"}, `"10.0.0.0/33" is not a CIDR`},
		{[]string{"turn", "--listen", "127.0.0.1:0", "--secret", good, "--public-ip", "turn.example.org"}, "is not an IP address"},
		{[]string{"turn", "--listen", "127.0.0.1:0", "--secret", good, "--tls-listen", "127.0.0.1:0"}, "--tls-listen needs --tls-cert and --tls-key"},
		{[]string{"turn", "--listen", "off", "--listen-tcp", "off", "--secret", good}, "no listener"},
		{[]string{"turn", "--log-level", "verbose"}, `unknown log level "verbose"`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stderr := runMain(t, tc.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if prefix := "rtcmesh " + tc.args[0] + ": "; !strings.Contains(stderr, prefix) || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q, want %q and %q", stderr, prefix, tc.want)
			}
		})
	}
}

func TestEnvironmentErrors(t *testing.T) {
	t.Setenv("RTCMESH_LOG_LEVEL", "loud")
	for _, cmd := range []string{"signal", "turn"} {
		code, stderr := runMain(t, cmd)
		if code != 2 || !strings.Contains(stderr, `RTCMESH_LOG_LEVEL="loud"`) || !strings.Contains(stderr, "unknown log level") {
			t.Errorf("rtcmesh %s with RTCMESH_LOG_LEVEL=loud: exit %d, stderr %q; want 2 and a message naming the variable", cmd, code, stderr)
		}
	}
}

func TestHelpListsEveryFlagWithItsVariable(t *testing.T) {
	signalFS, _ := signalFlagSet(io.Discard)
	turnFS, _ := turnFlagSet(io.Discard)
	for name, fs := range map[string]*flag.FlagSet{"signal": signalFS, "turn": turnFS} {
		code, stderr := runMain(t, name, "--help")
		if code != 0 {
			t.Errorf("rtcmesh %s --help: exit code %d, want 0", name, code)
		}
		n := 0
		fs.VisitAll(func(f *flag.Flag) {
			n++
			if want := "--" + f.Name + " (" + envName(f.Name) + ", default "; !strings.Contains(stderr, want) {
				t.Errorf("rtcmesh %s --help does not list %q:\n%s", name, want, stderr)
			}
		})
		for _, v := range []string{"RTCMESH_LISTEN", "RTCMESH_LOG_LEVEL"} {
			if !strings.Contains(stderr, v) {
				t.Errorf("rtcmesh %s --help does not mention %s", name, v)
			}
		}
		if n < 10 {
			t.Errorf("rtcmesh %s has only %d flags", name, n)
		}
	}
}
