//go:build linux

package natlab_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/rtcmesh/rtcmesh/internal/natlab"
	"github.com/rtcmesh/rtcmesh/turnserver"
)

// The relay's refusals, checked from inside the lab: this test binary is re-executed in a home
// namespace, where it speaks TURN with pion's client to the real rtcmesh relay process in the
// lab's internet, and in the internet namespace, where it scrapes the relay's /metrics.

const (
	// helperEnv selects a helper mode when this test binary runs inside a lab namespace
	// (see runHelper); helperArgsEnv carries the mode's request as JSON.
	helperEnv     = "NATLAB_HELPER"
	helperArgsEnv = "NATLAB_HELPER_ARGS"

	helperTURNProbe = "turn-probe"
	helperScrape    = "scrape"

	// probeTimeout bounds each TURN transaction and HTTP request of a helper. pion's client
	// gives up on its own after its retransmissions; this backs it on a stalled TCP stream.
	probeTimeout = 30 * time.Second
	// probeRTO is the client's first retransmission timeout. pion's 500 ms default makes a
	// busy server see retransmitted requests, each refused and counted again.
	probeRTO = 2 * time.Second
)

// runHelper runs the helper mode named by helperEnv and returns the process's exit code. It
// prints its result as one JSON line on standard output, which the test awaits.
func runHelper(mode string) int {
	args := os.Getenv(helperArgsEnv)
	var out map[string]any
	switch mode {
	case helperTURNProbe:
		var req probeRequest
		if err := json.Unmarshal([]byte(args), &req); err != nil {
			fmt.Fprintf(os.Stderr, "turn probe: bad request %q: %v\n", args, err)
			return 2
		}
		out = map[string]any{"probe": runProbe(req)}
	case helperScrape:
		var url string
		if err := json.Unmarshal([]byte(args), &url); err != nil {
			fmt.Fprintf(os.Stderr, "scrape: bad request %q: %v\n", args, err)
			return 2
		}
		text, err := scrape(url)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		out = map[string]any{"metrics": text}
	default:
		fmt.Fprintf(os.Stderr, "unknown %s mode %q\n", helperEnv, mode)
		return 2
	}
	line, err := json.Marshal(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := os.Stdout.Write(append(line, '\n')); err != nil {
		return 1
	}
	return 0
}

// probeRequest is what a TURN probe does: Allocations allocations under one username, each
// from its own socket (a 5-tuple holds one allocation) and all held until the probe ends, then
// one CreatePermission per peer on the first allocation that succeeded.
type probeRequest struct {
	Server string `json:"server"` // the relay's host:port
	TCP    bool   `json:"tcp"`    // TURN over TCP rather than UDP
	// CAFile, when set, is a PEM certificate to trust: TURN over TLS (turns:) to Server.
	CAFile      string   `json:"ca_file"`
	Username    string   `json:"username"`
	Password    string   `json:"password"`
	Allocations int      `json:"allocations"`
	Permissions []string `json:"permissions"` // peer IP addresses
}

// probeOutcome is the answer to one request: Code is the STUN error code, 0 for success.
type probeOutcome struct {
	// Target is the peer of a permission, or the relayed address a successful allocation got.
	Target string `json:"target,omitempty"`
	Code   int    `json:"code"`
	// Err describes any failure, including ones without an error code (a timeout).
	Err string `json:"error,omitempty"`
}

type probeResult struct {
	// Mapped is the client's address as the relay saw it (a STUN binding request on the first
	// socket): the home router's public address, when the probe ran behind the home's NAT.
	Mapped      string         `json:"mapped"`
	Allocations []probeOutcome `json:"allocations"`
	Permissions []probeOutcome `json:"permissions"`
}

// runProbe carries out req. Allocations are released (Refresh with lifetime 0) before it
// returns, so a later probe under the same user starts from zero.
func runProbe(req probeRequest) probeResult {
	var res probeResult
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	var first *turn.Client
	for range req.Allocations {
		client, closeClient, err := dialTURN(req)
		if err != nil {
			res.Allocations = append(res.Allocations, probeOutcome{Err: err.Error()})
			continue
		}
		closers = append(closers, closeClient)
		if res.Mapped == "" {
			if mapped, err := client.SendBindingRequest(); err == nil {
				res.Mapped = mapped.String()
			} else {
				res.Mapped = "binding request failed: " + err.Error()
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		relay, err := client.AllocateWithContext(ctx)
		cancel()
		o := outcomeOf(err)
		if err == nil {
			o.Target = relay.LocalAddr().String()
			closers = append(closers, func() { _ = relay.Close() })
			if first == nil {
				first = client
			}
		}
		res.Allocations = append(res.Allocations, o)
	}
	for _, peer := range req.Permissions {
		o := probeOutcome{Target: peer, Err: "no allocation to ask with"}
		if ip, err := netip.ParseAddr(peer); err != nil {
			o.Err = err.Error()
		} else if first != nil {
			o = outcomeOf(first.CreatePermission(net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 9))))
			o.Target = peer
		}
		res.Permissions = append(res.Permissions, o)
	}
	return res
}

// dialTURN opens a socket to the relay and a pion client on it.
func dialTURN(req probeRequest) (*turn.Client, func(), error) {
	var conn net.PacketConn
	if req.CAFile != "" {
		pem, err := os.ReadFile(req.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the relay's certificate: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("no certificate in %s", req.CAFile)
		}
		host, _, err := net.SplitHostPort(req.Server)
		if err != nil {
			return nil, nil, fmt.Errorf("relay address %q: %w", req.Server, err)
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: probeTimeout}, "tcp4", req.Server,
			&tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12})
		if err != nil {
			return nil, nil, fmt.Errorf("connecting to %s over TLS: %w", req.Server, err)
		}
		conn = turn.NewSTUNConn(c)
	} else if req.TCP {
		c, err := net.DialTimeout("tcp4", req.Server, probeTimeout)
		if err != nil {
			return nil, nil, fmt.Errorf("connecting to %s over TCP: %w", req.Server, err)
		}
		conn = turn.NewSTUNConn(c)
	} else {
		c, err := net.ListenPacket("udp4", "0.0.0.0:0")
		if err != nil {
			return nil, nil, fmt.Errorf("opening a UDP socket: %w", err)
		}
		conn = c
	}
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: req.Server,
		TURNServerAddr: req.Server,
		Conn:           conn,
		Username:       req.Username,
		Password:       req.Password,
		RTO:            probeRTO,
	})
	if err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("TURN client: %w", err)
	}
	if err := client.Listen(); err != nil {
		client.Close()
		_ = conn.Close()
		return nil, nil, fmt.Errorf("TURN client listen: %w", err)
	}
	return client, func() { client.Close(); _ = conn.Close() }, nil
}

// outcomeOf turns a pion client error into an outcome with its STUN error code.
func outcomeOf(err error) probeOutcome {
	if err == nil {
		return probeOutcome{}
	}
	o := probeOutcome{Err: err.Error()}
	var ptr *stun.TurnError
	var val stun.TurnError
	switch {
	case errors.As(err, &ptr):
		o.Code = int(ptr.ErrorCodeAttr.Code)
	case errors.As(err, &val):
		o.Code = int(val.ErrorCodeAttr.Code)
	}
	return o
}

// scrape fetches a Prometheus text page.
func scrape(url string) (string, error) {
	client := &http.Client{Timeout: probeTimeout}
	resp, err := client.Get(url)
	if err != nil {
		return "", fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("scraping %s: %s", url, resp.Status)
	}
	return string(body), nil
}

// runInLab re-executes this test binary in ns in the given helper mode and returns the value
// of key in the JSON line it prints, decoded into out.
func runInLab(t *testing.T, ns *natlab.Namespace, name, mode string, args any, key string, out any) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("locating the test binary: %v", err)
	}
	request, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	p := ns.StartProgram(name, []string{helperEnv + "=" + mode, helperArgsEnv + "=" + string(request)}, self)
	line := p.Await(t, 0, deadline, key, func(m map[string]any) bool { _, ok := m[key]; return ok })
	raw, err := json.Marshal(line[key])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s: decoding %s: %v", name, raw, err)
	}
}

// metricValue returns the value of an unlabelled sample in a Prometheus text page.
func metricValue(t *testing.T, page, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %q: %v", name, line, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s missing from:\n%s", name, page)
	return 0
}

func randomSecret(t *testing.T) string {
	t.Helper()
	var secret [16]byte
	if _, err := rand.Read(secret[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(secret[:])
}

// labRelay is a relay process in the lab's internet and how to reach it.
type labRelay struct {
	name       string
	addr       string // host:port of its UDP and TCP listeners
	tlsAddr    string // host:port of its TLS listener; empty when it has none
	metricsURL string
	secret     string
	// relayPorts is its relay port range; every relayed address must be in it.
	relayPorts [2]int
	// perUser is its per-user allocation quota.
	perUser int
}

// TestRelayRefusalsInLab checks the relay's policy end to end, against both ways rtcmesh runs
// it (`rtcmesh turn`, and embedded in `rtcmesh signal`), over UDP, TCP and (the standalone
// relay, with a self-signed certificate the client trusts) TLS, from a client behind a home NAT: valid credentials get an allocation on the relay's public address;
// permissions to the relay host's loopback, its private address and the cloud metadata
// address are refused with 403 while a public peer is allowed; expired credentials and a
// wrong HMAC get 401; the per-user quota answers 486. The refusals must show in the counters
// of the relay's /metrics, scraped from inside the lab.
func TestRelayRefusalsInLab(t *testing.T) {
	lab := newLab(t)
	addr := natlab.InternetServer
	const perUser = 2 // the standalone relay's quota, small so exceeding it is cheap
	certFile, keyFile := selfSignedCert(t, addr)
	relays := []labRelay{
		{name: "turn", addr: addr + ":3478", tlsAddr: addr + ":5349", metricsURL: "http://" + addr + ":9090/metrics",
			secret: randomSecret(t), relayPorts: [2]int{40000, 40099}, perUser: perUser},
		{name: "signal", addr: addr + ":3479", metricsURL: "http://" + addr + ":8080/metrics",
			secret: randomSecret(t), relayPorts: [2]int{40100, 40199}, perUser: turnserver.DefaultConfig().MaxAllocationsPerUser},
	}
	ports := func(r labRelay) string { return fmt.Sprintf("%d-%d", r.relayPorts[0], r.relayPorts[1]) }
	// Secrets go through the environment, as the README advises, not the command line.
	standalone := lab.Internet().StartProgram("turn", []string{"RTCMESH_SECRET=" + relays[0].secret}, binaryPath(t),
		"turn", "--listen", relays[0].addr, "--listen-tcp", relays[0].addr, "--public-ip", addr,
		"--relay-ports", ports(relays[0]), "--max-allocations-per-user", strconv.Itoa(perUser),
		"--tls-listen", relays[0].tlsAddr, "--tls-cert", certFile, "--tls-key", keyFile,
		"--http-listen", addr+":9090", "--allow-peers", natlab.InternetPrefix)
	standalone.AwaitLog(t, deadline, "TURN relay listening", func(m map[string]any) bool {
		return m["message"] == "TURN relay listening"
	})
	embedded := lab.Internet().StartProgram("signal", []string{"RTCMESH_TURN_SECRET=" + relays[1].secret}, binaryPath(t),
		"signal", "--listen", addr+":8080", "--turn-listen", relays[1].addr, "--turn-public-ip", addr,
		"--turn-relay-ports", ports(relays[1]), "--turn-allow-peers", natlab.InternetPrefix)
	embedded.AwaitLog(t, deadline, "signaling server listening", func(m map[string]any) bool {
		return m["message"] == "signaling server listening"
	})

	home := lab.Home("a", natlab.Easy)
	client := home.Host("h1")
	// A public peer elsewhere on the lab internet (another home's router): allowed.
	publicPeer := lab.Home("b", natlab.Easy).Router.Addr
	denied := []string{"127.0.0.1", natlab.InternetPrivate, "169.254.169.254"}

	for _, r := range relays {
		transports := []string{"udp", "tcp"}
		if r.tlsAddr != "" {
			transports = append(transports, "tls")
		}
		for _, transport := range transports {
			t.Run(r.name+"/"+transport, func(t *testing.T) {
				req := probeRequest{Server: r.addr, TCP: transport == "tcp"}
				if transport == "tls" {
					req.Server, req.CAFile = r.tlsAddr, certFile
				}
				probe := func(t *testing.T, user, pass string, allocations int, peers []string) probeResult {
					t.Helper()
					var res probeResult
					req := req
					req.Username, req.Password, req.Allocations, req.Permissions = user, pass, allocations, peers
					runInLab(t, client, "probe "+r.name+"/"+transport, helperTURNProbe, req, "probe", &res)
					if len(res.Allocations) != allocations || len(res.Permissions) != len(peers) {
						t.Fatalf("probe answered %d allocations and %d permissions, want %d and %d: %+v",
							len(res.Allocations), len(res.Permissions), allocations, len(peers), res)
					}
					if host, _, err := net.SplitHostPort(res.Mapped); err != nil || host != home.Router.Addr {
						t.Fatalf("the relay saw the probe at %q, want home %s's router %s", res.Mapped, home.Name, home.Router.Addr)
					}
					return res
				}
				now := time.Now()

				t.Run("valid", func(t *testing.T) {
					user, pass := turnserver.Credentials(r.secret, "probe-valid-"+transport, time.Hour, now)
					res := probe(t, user, pass, 1, append(append([]string{}, denied...), publicPeer))
					alloc := res.Allocations[0]
					if alloc.Code != 0 || alloc.Err != "" {
						t.Fatalf("allocation with valid credentials: %+v", alloc)
					}
					relayed, err := netip.ParseAddrPort(alloc.Target)
					if err != nil || relayed.Addr().String() != addr ||
						int(relayed.Port()) < r.relayPorts[0] || int(relayed.Port()) > r.relayPorts[1] {
						t.Errorf("relayed address %q, want %s with a port in %s", alloc.Target, addr, ports(r))
					}
					for _, p := range res.Permissions {
						want := int(stun.CodeForbidden)
						if p.Target == publicPeer {
							want = 0
						}
						if p.Code != want {
							t.Errorf("permission to %s: code %d (%s), want %d", p.Target, p.Code, p.Err, want)
						}
					}
				})
				t.Run("expired", func(t *testing.T) {
					user, pass := turnserver.Credentials(r.secret, "probe-expired-"+transport, time.Hour, now.Add(-2*time.Hour))
					res := probe(t, user, pass, 1, nil)
					if c := res.Allocations[0].Code; c != int(stun.CodeUnauthorized) {
						t.Errorf("allocation with expired credentials: code %d (%s), want 401", c, res.Allocations[0].Err)
					}
				})
				t.Run("wrong HMAC", func(t *testing.T) {
					user, _ := turnserver.Credentials(r.secret, "probe-hmac-"+transport, time.Hour, now)
					_, otherPass := turnserver.Credentials(randomSecret(t), "probe-hmac-"+transport, time.Hour, now)
					res := probe(t, user, otherPass, 1, nil)
					if c := res.Allocations[0].Code; c != int(stun.CodeUnauthorized) {
						t.Errorf("allocation with a wrong HMAC: code %d (%s), want 401", c, res.Allocations[0].Err)
					}
				})
				t.Run("quota", func(t *testing.T) {
					user, pass := turnserver.Credentials(r.secret, "probe-quota-"+transport, time.Hour, now)
					res := probe(t, user, pass, r.perUser+1, nil)
					for i, a := range res.Allocations {
						want := 0
						if i == r.perUser {
							want = int(stun.CodeAllocQuotaReached)
						}
						if a.Code != want || (want == 0 && a.Err != "") {
							t.Errorf("allocation %d of %d (quota %d): code %d (%s), want %d", i+1, len(res.Allocations), r.perUser, a.Code, a.Err, want)
						}
					}
				})
			})
		}

		// Each transport refused three permissions, two sets of credentials and one allocation
		// over the quota. A request retransmitted before its answer arrived is refused and
		// counted again, so the counters are at least these.
		var page string
		runInLab(t, lab.Internet(), "scrape "+r.name, helperScrape, r.metricsURL, "metrics", &page)
		n := float64(len(transports))
		for _, c := range []struct {
			metric string
			min    float64
		}{
			{"rtcmesh_turn_permission_refusals_total", n * float64(len(denied))},
			{"rtcmesh_turn_auth_failures_total", n * 2},
			{"rtcmesh_turn_quota_refusals_total", n},
			{"rtcmesh_turn_allocations_total", n * float64(1+r.perUser)},
		} {
			v := metricValue(t, page, c.metric)
			if v < c.min {
				t.Errorf("%s: %s = %v, want at least %v", r.name, c.metric, v, c.min)
			}
			t.Logf("%s: %s = %v", r.name, c.metric, v)
		}
	}
}

// selfSignedCert writes a certificate for ip and its key as PEM files for the relay's TLS
// listener; the probe trusts the certificate itself.
func selfSignedCert(t *testing.T, ip string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "natlab relay"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP(ip)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// binaryPath is the rtcmesh binary built by TestMain (newLab has checked it was built).
func binaryPath(t *testing.T) string {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// TestUDPBlockedUsesTURNOverTCP puts two nodes in homes whose routers drop all UDP to the
// internet: the only way between them is the relay, reached over TCP (the embedded relay's
// turn:…?transport=tcp URL in the welcome). The link must open through the relay and carry a
// broadcast, and the routers must show the TCP connection to the relay.
func TestUDPBlockedUsesTURNOverTCP(t *testing.T) {
	lab := newLab(t)
	ws := startSignal(t, lab, true)
	homeA, homeB := lab.Home("a", natlab.Easy), lab.Home("b", natlab.Easy)
	homeA.BlockUDP()
	homeB.BlockUDP()
	a := startNode(t, homeA.Host("h1"), "a/h1", ws, false)
	b := startNode(t, homeB.Host("h1"), "b/h1", ws, false)
	pathA, pathB := awaitNeighbor(t, a, b), awaitNeighbor(t, b, a)
	if pathA != "relay" || pathB != "relay" {
		t.Errorf("paths %q / %q, want relay", pathA, pathB)
	}
	mark := b.Mark()
	a.WriteLine(t, "over TCP to the relay")
	awaitDelivery(t, b, mark, a, "over TCP to the relay")
	for _, h := range []*natlab.Home{homeA, homeB} {
		table, err := h.Router.Output("cat", "/proc/net/nf_conntrack")
		if err != nil {
			t.Fatalf("reading %s's conntrack table: %v: %s", h.Name, err, table)
		}
		var tcp []string
		for _, line := range strings.Split(table, "\n") {
			f := strings.Join(strings.Fields(line), " ")
			if strings.Contains(f, " tcp ") && strings.Contains(f, "dst="+natlab.InternetServer+" ") &&
				strings.Contains(f, "dport=3478 ") && strings.Contains(f, "ESTABLISHED") {
				tcp = append(tcp, f)
			}
		}
		if len(tcp) == 0 {
			t.Errorf("router %s has no established TCP connection to the relay:\n%s", h.Name, table)
		}
		t.Logf("router %s: TCP to the relay:\n%s", h.Name, strings.Join(tcp, "\n"))
	}
}
