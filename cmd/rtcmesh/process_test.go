package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the rtcmesh binary: run with this variable set, it is rtcmesh.
const beMainEnv = "RTCMESH_TEST_BE_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(beMainEnv) == "1" {
		os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// process is one rtcmesh process started by a test.
type process struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan map[string]any // stdout (node) or stderr (signal) JSON lines
}

func startProcess(t *testing.T, jsonFrom string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), beMainEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader
	if jsonFrom == "stdout" {
		r, err = cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
	} else {
		r, err = cmd.StderrPipe()
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, cmd: cmd, stdin: stdin, lines: make(chan map[string]any, 1024)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				p.lines <- m
			}
		}
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

// await reads lines until match accepts one.
func (p *process) await(what string, match func(map[string]any) bool) map[string]any {
	p.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("%s: process output ended", what)
			}
			if match(m) {
				return m
			}
		case <-timeout:
			p.t.Fatalf("%s: not within 30 s", what)
		}
	}
}

// stop sends SIGTERM and expects exit code 0.
func (p *process) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			p.t.Errorf("%v: %v", p.cmd.Args[1:2], err)
		}
	case <-time.After(20 * time.Second):
		p.t.Errorf("%v did not stop within 20 s of SIGTERM", p.cmd.Args[1:2])
	}
}

// TestProcesses runs one signaling server and three nodes as separate processes, types a line
// into one node, and expects every node to deliver it.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("separate processes skipped in -short mode")
	}
	sig := startProcess(t, "stderr", "signal", "--listen", "127.0.0.1:0")
	ws := sig.await("signaling server listening", func(m map[string]any) bool {
		return m["message"] == "signaling server listening"
	})["ws"].(string)

	var nodes []*process
	var ids []string
	for range 3 {
		p := startProcess(t, "stdout", "node", "--signal", ws, "--network", "proc", "--ephemeral",
			"--mdns=false", "--ice-networks", "127.0.0.0/8", "--profile", "lan", "--log-level", "warn")
		ids = append(ids, p.await("ready", func(m map[string]any) bool { return m["event"] == "ready" })["id"].(string))
		nodes = append(nodes, p)
	}
	for k, p := range nodes {
		up := p.await(ids[k]+" gets a neighbour", func(m map[string]any) bool { return m["event"] == "neighbor_up" })
		if path, _ := up["path"].(string); path == "" || path == "relay" {
			t.Errorf("neighbour_up path %q, want a direct path", path)
		}
	}
	if _, err := io.WriteString(nodes[0].stdin, "hello from the first process\n"); err != nil {
		t.Fatal(err)
	}
	for k, p := range nodes {
		d := p.await(ids[k]+" delivers the line", func(m map[string]any) bool {
			return m["event"] == "deliver" && m["data"] == "hello from the first process"
		})
		if d["origin"] != ids[0] {
			t.Errorf("%s: origin %v, want %s", ids[k], d["origin"], ids[0])
		}
		wantHops := k != 0
		if hops, _ := d["hops"].(float64); (hops > 0) != wantHops {
			t.Errorf("%s: hops %v", ids[k], d["hops"])
		}
	}
	for _, p := range nodes {
		p.stop()
	}
	sig.stop()
	if !strings.HasPrefix(ws, "ws://127.0.0.1:") {
		t.Errorf("signaling URL %q is not on loopback", ws)
	}
}
