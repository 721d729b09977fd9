package composetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// requireAllEnv set to 1 turns a skip for a missing engine or tool into a failure.
	requireAllEnv = "RTCMESH_REQUIRE_ALL"
	// nodes is how many node containers the stack is scaled to.
	nodes = 5
	// nodeHTTPPort is the nodes' --http-listen port inside their containers (docker-compose.yml).
	nodeHTTPPort = "9090"
	// commandTimeout bounds one docker or docker-compose command (a build, up, down) on a
	// shared, slow machine.
	commandTimeout = 5 * time.Minute
	// joinTimeout bounds how long the five nodes get to form a connected overlay; on this
	// machine it takes seconds.
	joinTimeout = 2 * time.Minute
	// deliveryTimeout bounds how long a broadcast gets to reach every node.
	deliveryTimeout = time.Minute
	// pollInterval is how often the test looks again at the nodes' state.
	pollInterval = 200 * time.Millisecond
)

// compose is how docker-compose is run here: the v1 binary or the v2 plugin.
type compose struct {
	argv    []string // "docker-compose" or "docker", "compose"
	root    string   // the repository root, holding docker-compose.yml
	project string   // unique project name (-p)
	env     []string // the variables docker-compose.yml reads
}

// available reports why the smoke test cannot run here, or nil. It returns the compose command.
func available() ([]string, error) {
	if _, err := exec.LookPath("docker"); err != nil {
		return nil, errors.New("docker is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("no reachable Docker engine: %v: %s", err, firstLine(out))
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}, nil
	}
	if exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}, nil
	}
	return nil, errors.New("neither docker-compose nor the docker compose plugin is installed")
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// run runs a command with the test's bound and returns its standard output; a failure ends
// the test with the command's output.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runErr runs a command and returns its standard output, or an error carrying both outputs.
func runErr(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func (c *compose) args(args ...string) (string, []string) {
	all := append(slices.Clone(c.argv[1:]), "-f", filepath.Join(c.root, "docker-compose.yml"), "-p", c.project)
	return c.argv[0], append(all, args...)
}

func (c *compose) run(t *testing.T, args ...string) string {
	t.Helper()
	name, all := c.args(args...)
	return run(t, c.env, name, all...)
}

// nodeState is what the test knows of one node container.
type nodeState struct {
	container string
	http      string // host:port of its --http-listen on loopback
	id        string // node ID, from its "ready" event
	neighbors map[string]bool
	delivered map[string]bool // message IDs of its deliver events
}

// event is one JSON line of a node's standard output.
type event struct {
	Event string `json:"event"`
	ID    string `json:"id"`
	Peer  string `json:"peer"`
}

// refresh replays the node's standard output (docker logs keeps it) into its state.
func (n *nodeState) refresh(t *testing.T) {
	t.Helper()
	out := run(t, nil, "docker", "logs", n.container)
	n.neighbors, n.delivered = map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev event
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		switch ev.Event {
		case "ready":
			n.id = ev.ID
		case "neighbor_up":
			n.neighbors[ev.Peer] = true
		case "neighbor_down":
			delete(n.neighbors, ev.Peer)
		case "deliver":
			n.delivered[ev.ID] = true
		}
	}
}

// ready asks the node's /readyz: 200 once it has a neighbour.
func (n *nodeState) ready() bool {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + n.http + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// metric returns one sample of the node's /metrics, or fails the test.
func (n *nodeState) metric(t *testing.T, series string) float64 {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + n.http + "/metrics")
	if err != nil {
		t.Fatalf("GET %s/metrics: %v", n.http, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s/metrics: %v", n.http, err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s/metrics: %s: %v", n.http, series, err)
			}
			return f
		}
	}
	t.Fatalf("%s/metrics has no %s", n.http, series)
	return 0
}

// connected reports whether the neighbour relation the nodes reported joins all of them.
func connected(ns []*nodeState) bool {
	byID := map[string]*nodeState{}
	for _, n := range ns {
		if n.id == "" {
			return false
		}
		byID[n.id] = n
	}
	seen := map[string]bool{ns[0].id: true}
	queue := []string{ns[0].id}
	for len(queue) > 0 {
		n := byID[queue[0]]
		queue = queue[1:]
		for p := range n.neighbors {
			if !seen[p] && byID[p] != nil {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return len(seen) == len(ns)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestComposeSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("the compose smoke test builds an image and runs six containers; skipped in -short mode")
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
	image := "rtcmesh-composetest:" + suffix

	// The build context is a directory of its own holding only what the Dockerfile copies, so
	// the test neither writes into the tree nor races `make image` over bin/.
	start := time.Now()
	ctxDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ctxDir, "bin", "rootfs", "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	goBuild := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(ctxDir, "bin", "rtcmesh"), "./cmd/rtcmesh")
	goBuild.Dir = root
	goBuild.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := goBuild.CombinedOutput(); err != nil {
		t.Fatalf("building the static binary: %v\n%s", err, out)
	}
	binaryTime := time.Since(start)
	start = time.Now()
	t.Cleanup(func() {
		if _, err := runErr(nil, "docker", "rmi", "--force", image); err != nil {
			t.Logf("removing the image: %v", err)
		}
	})
	run(t, []string{"DOCKER_BUILDKIT=0"}, "docker", "build", "--quiet", "-t", image, "-f", filepath.Join(root, "Dockerfile"), ctxDir)
	imageTime := time.Since(start)
	t.Logf("static binary built in %v, image %s in %v", binaryTime.Round(time.Millisecond), image, imageTime.Round(time.Millisecond))

	c := &compose{argv: argv, root: root, project: "rtcmeshsmoke" + suffix, env: []string{
		"RTCMESH_IMAGE=" + image,
		"RTCMESH_TURN_SECRET=" + randomHex(t, 16),
		"RTCMESH_PUBLIC_IP=127.0.0.1",
		"RTCMESH_PUBLISH_IP=127.0.0.1",
		// Empty host ports: the engine picks free ones, so runs never collide.
		"RTCMESH_HTTP_PORT=", "RTCMESH_TURN_PORT=", "RTCMESH_RELAY_PORTS=",
		"RTCMESH_NETWORK=smoke",
		"RTCMESH_HTTP_BROADCAST=true",
		"RTCMESH_LOG_LEVEL=info",
	}}
	t.Cleanup(func() {
		if t.Failed() {
			name, args := c.args("logs", "--no-color", "--tail", "40")
			out, _ := runErr(c.env, name, args...)
			t.Logf("last log lines of the stack:\n%s", out)
		}
		name, args := c.args("down", "--volumes", "--rmi", "local", "--timeout", "15")
		if _, err := runErr(c.env, name, args...); err != nil {
			t.Errorf("tearing the stack down: %v", err)
		}
	})
	start = time.Now()
	c.run(t, "up", "--detach", "--scale", "node="+strconv.Itoa(nodes))
	upTime := time.Since(start)

	containers := strings.Fields(c.run(t, "ps", "-q", "node"))
	if len(containers) != nodes {
		t.Fatalf("%d node containers, want %d: %q", len(containers), nodes, containers)
	}
	var ns []*nodeState
	for _, id := range containers {
		// The nodes publish on 127.0.0.1 only; `docker port` names the free port the engine
		// picked for this container (docker-compose port --index N says the same by index).
		addr := strings.TrimSpace(firstLine([]byte(run(t, nil, "docker", "port", id, nodeHTTPPort+"/tcp"))))
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Fatalf("container %s publishes %s on %q, want 127.0.0.1", id, nodeHTTPPort, addr)
		}
		ns = append(ns, &nodeState{container: id, http: addr})
	}

	// Joined: every node answers /readyz with 200 (it has a neighbour) and the neighbour
	// relation the nodes report on their standard output connects all of them.
	deadline := time.Now().Add(joinTimeout)
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
				break
			}
		}
		if time.Now().After(deadline) {
			for _, n := range ns {
				t.Logf("node %s (%s): id %q, ready %v, neighbours %d", n.container[:12], n.http, n.id, n.ready(), len(n.neighbors))
			}
			t.Fatalf("the %d nodes did not form a connected overlay within %v", nodes, joinTimeout)
		}
		time.Sleep(pollInterval)
	}
	joinTime := time.Since(start)
	degrees := make([]int, len(ns))
	for i, n := range ns {
		degrees[i] = len(n.neighbors)
	}
	t.Logf("docker-compose up took %v; all %d nodes joined a connected overlay %v after up started (neighbours per node %v)",
		upTime.Round(time.Millisecond), nodes, joinTime.Round(time.Millisecond), degrees)

	// Broadcast through the first node's POST /broadcast; every node, the sender included,
	// must write a deliver event with the ID the endpoint answered.
	payload := "compose smoke " + suffix
	start = time.Now()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post("http://"+ns[0].http+"/broadcast", "text/plain", strings.NewReader(payload))
	if err != nil {
		t.Fatalf("POST /broadcast: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var answer struct {
		ID    string `json:"id"`
		Bytes int    `json:"bytes"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &answer) != nil || answer.ID == "" || answer.Bytes != len(payload) {
		t.Fatalf("POST /broadcast answered %d %q, want 200 with the message ID and %d bytes", resp.StatusCode, body, len(payload))
	}
	deadline = time.Now().Add(deliveryTimeout)
	for {
		missing := 0
		for _, n := range ns {
			n.refresh(t)
			if !n.delivered[answer.ID] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s reached %d of %d nodes within %v", answer.ID, nodes-missing, nodes, deliveryTimeout)
		}
		time.Sleep(pollInterval)
	}
	deliveryTime := time.Since(start)
	// The metrics agree: one broadcast at the sender, one delivery of another node's message
	// everywhere else.
	for i, n := range ns {
		wantBroadcasts, wantDelivered := 0.0, 1.0
		if i == 0 {
			wantBroadcasts, wantDelivered = 1, 0
		}
		if b, d := n.metric(t, "rtcmesh_gossip_broadcasts_total"), n.metric(t, "rtcmesh_gossip_delivered_total"); b != wantBroadcasts || d != wantDelivered {
			t.Errorf("node %s: broadcasts_total %v, delivered_total %v; want %v and %v", n.id, b, d, wantBroadcasts, wantDelivered)
		}
	}
	t.Logf("broadcast %s delivered by all %d nodes within %v of the POST (polling every %v)",
		answer.ID, nodes, deliveryTime.Round(time.Millisecond), pollInterval)
}
