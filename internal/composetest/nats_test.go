package composetest

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// natsNodesPerInstance is how many node containers start on each signaling instance of the
// nats profile.
const natsNodesPerInstance = 4

// buildBinary builds a static Go program of this module into dir/bin/name.
func buildBinary(t *testing.T, root, dir, name, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "bin", name), pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
}

// waitOverlay waits until every node answers /readyz and their neighbours connect them all.
func waitOverlay(t *testing.T, ns []*nodeState, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		allReady := true
		for _, n := range ns {
			allReady = allReady && n.ready()
		}
		if allReady {
			for _, n := range ns {
				n.refresh(t)
			}
			if connected(ns) {
				return
			}
		}
		if time.Now().After(deadline) {
			for _, n := range ns {
				t.Logf("node %s (%s): id %q, ready %v, neighbours %d", n.container[:12], n.http, n.id, n.ready(), len(n.neighbors))
			}
			t.Fatalf("the %d nodes did not form a connected overlay within %v", len(ns), within)
		}
		time.Sleep(pollInterval)
	}
}

// broadcastEverywhere posts payload to from's /broadcast and waits until every node of ns
// delivered it.
func broadcastEverywhere(t *testing.T, from *nodeState, ns []*nodeState, payload string) time.Duration {
	t.Helper()
	start := time.Now()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post("http://"+from.http+"/broadcast", "text/plain", strings.NewReader(payload))
	if err != nil {
		t.Fatalf("POST /broadcast: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var answer struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &answer) != nil || answer.ID == "" {
		t.Fatalf("POST /broadcast answered %d %q", resp.StatusCode, body)
	}
	deadline := time.Now().Add(deliveryTimeout)
	for {
		missing := 0
		for _, n := range ns {
			n.refresh(t)
			if !n.delivered[answer.ID] {
				missing++
			}
		}
		if missing == 0 {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s reached %d of %d nodes within %v", answer.ID, len(ns)-missing, len(ns), deliveryTimeout)
		}
		time.Sleep(pollInterval)
	}
}

// signalMetric reads one series from a signaling instance's /metrics.
func signalMetric(addr, series string) (float64, bool) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestComposeNATSProfile brings up docker-compose.yml's nats profile: a NATS image built FROM
// scratch from the nats-server Go module, two signaling instances sharing their networks
// through it, and nodes on each. They form one overlay and a broadcast from a node of instance
// a reaches every node; then instance a is killed (SIGKILL), its nodes move to b, and the next
// broadcast reaches every node again.
func TestComposeNATSProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("the compose nats profile builds two images and runs eleven containers; skipped in -short mode")
	}
	argv, err := available()
	if err != nil {
		if os.Getenv(requireAllEnv) == "1" {
			t.Fatalf("%v (%s=1)", err, requireAllEnv)
		}
		t.Skip(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	suffix := randomHex(t, 4)
	image, natsImage := "rtcmesh-composetest:"+suffix, "rtcmesh-nats-composetest:"+suffix

	start := time.Now()
	ctxDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ctxDir, "bin", "rootfs", "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	buildBinary(t, root, ctxDir, "rtcmesh", "./cmd/rtcmesh")
	buildBinary(t, root, ctxDir, "nats-server", "github.com/nats-io/nats-server/v2")
	binaryTime := time.Since(start)
	start = time.Now()
	t.Cleanup(func() {
		if _, err := runErr(nil, "docker", "rmi", "--force", image, natsImage); err != nil {
			t.Logf("removing the images: %v", err)
		}
	})
	run(t, []string{"DOCKER_BUILDKIT=0"}, "docker", "build", "--quiet", "-t", image, "-f", filepath.Join(root, "Dockerfile"), ctxDir)
	run(t, []string{"DOCKER_BUILDKIT=0"}, "docker", "build", "--quiet", "-t", natsImage, "-f", filepath.Join(root, "Dockerfile.nats"), ctxDir)
	t.Logf("binaries built in %v, images in %v", binaryTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	c := &compose{argv: argv, root: root, project: "rtcmeshnats" + suffix, env: []string{
		"RTCMESH_IMAGE=" + image,
		"RTCMESH_NATS_IMAGE=" + natsImage,
		"RTCMESH_NATS_TOKEN=" + randomHex(t, 16),
		// The default signal service is not started, but the file names its secret.
		"RTCMESH_TURN_SECRET=" + randomHex(t, 16),
		"RTCMESH_PUBLISH_IP=127.0.0.1",
		"RTCMESH_NETWORK=natsprofile",
		"RTCMESH_HTTP_BROADCAST=true",
		"RTCMESH_LOG_LEVEL=info",
	}}
	t.Cleanup(func() {
		if t.Failed() {
			name, args := c.args("--profile", "nats", "logs", "--no-color", "--tail", "40")
			out, _ := runErr(c.env, name, args...)
			t.Logf("last log lines of the stack:\n%s", out)
		}
		name, args := c.args("--profile", "nats", "down", "--volumes", "--rmi", "local", "--timeout", "15")
		if _, err := runErr(c.env, name, args...); err != nil {
			t.Errorf("tearing the stack down: %v", err)
		}
	})
	per := strconv.Itoa(natsNodesPerInstance)
	start = time.Now()
	// The instances first, ready (connected to NATS): a node whose instance is not up yet
	// would start on the other one, and the test would prove less.
	c.run(t, "--profile", "nats", "up", "--detach", "nats", "signal-a", "signal-b")
	signalAddr := func(service string) string {
		return strings.TrimSpace(firstLine([]byte(c.run(t, "--profile", "nats", "port", service, "8080"))))
	}
	signalA, signalB := signalAddr("signal-a"), signalAddr("signal-b")
	deadline := time.Now().Add(joinTimeout)
	for !(&nodeState{http: signalA}).ready() || !(&nodeState{http: signalB}).ready() {
		if time.Now().After(deadline) {
			t.Fatalf("the signaling instances were not ready within %v", joinTimeout)
		}
		time.Sleep(pollInterval)
	}
	c.run(t, "--profile", "nats", "up", "--detach", "--scale", "node-a="+per, "--scale", "node-b="+per, "node-a", "node-b")
	upTime := time.Since(start)
	if out := c.run(t, "--profile", "nats", "ps", "-q", "signal"); strings.TrimSpace(out) != "" {
		t.Errorf("the default signal service runs too: %q", out)
	}

	nodesOf := func(service string) []*nodeState {
		var ns []*nodeState
		for _, id := range strings.Fields(c.run(t, "--profile", "nats", "ps", "-q", service)) {
			addr := strings.TrimSpace(firstLine([]byte(run(t, nil, "docker", "port", id, nodeHTTPPort+"/tcp"))))
			ns = append(ns, &nodeState{container: id, http: addr})
		}
		if len(ns) != natsNodesPerInstance {
			t.Fatalf("%d %s containers, want %d", len(ns), service, natsNodesPerInstance)
		}
		return ns
	}
	onA, onB := nodesOf("node-a"), nodesOf("node-b")
	all := append(append([]*nodeState(nil), onA...), onB...)
	waitOverlay(t, all, joinTimeout)
	t.Logf("docker-compose up took %v; the %d nodes on two instances joined one overlay %v after up started",
		upTime.Round(time.Millisecond), len(all), time.Since(start).Round(time.Millisecond))
	took := broadcastEverywhere(t, onA[0], all, "nats profile "+suffix)
	t.Logf("a broadcast from a node of instance a reached all %d nodes in %v", len(all), took.Round(time.Millisecond))

	for addr, name := range map[string]string{signalA: "a", signalB: "b"} {
		if n, ok := signalMetric(addr, "rtcmesh_signal_peers"); !ok || n != natsNodesPerInstance {
			t.Errorf("instance %s holds %v nodes (read %v), want %d", name, n, ok, natsNodesPerInstance)
		}
	}
	// Links between nodes of a and nodes of b were negotiated through NATS.
	if n, ok := signalMetric(signalB, "rtcmesh_signal_nats_relays_in_total"); !ok || n == 0 {
		t.Errorf("instance b's rtcmesh_signal_nats_relays_in_total is %v (found %v), want signals from a", n, ok)
	}

	// Instance a is killed; its nodes move to b.
	for _, id := range strings.Fields(c.run(t, "--profile", "nats", "ps", "-q", "signal-a")) {
		run(t, nil, "docker", "kill", "--signal", "KILL", id)
	}
	killed := time.Now()
	deadline = time.Now().Add(joinTimeout)
	for {
		if n, ok := signalMetric(signalB, "rtcmesh_signal_peers"); ok && n == float64(len(all)) {
			break
		}
		if time.Now().After(deadline) {
			n, _ := signalMetric(signalB, "rtcmesh_signal_peers")
			t.Fatalf("instance b holds %v nodes %v after a was killed, want %d", n, joinTimeout, len(all))
		}
		time.Sleep(pollInterval)
	}
	t.Logf("all %d nodes on instance b %v after a was killed", len(all), time.Since(killed).Round(time.Millisecond))
	took = broadcastEverywhere(t, onA[1], all, "after the kill "+suffix)
	t.Logf("a broadcast from a former node of a reached all %d nodes in %v", len(all), took.Round(time.Millisecond))
}
