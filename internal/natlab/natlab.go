//go:build linux

// Package natlab builds real NATs out of Linux network namespaces, veth pairs, bridges and
// iptables, and runs the real rtcmesh binary inside them, so tests can check NAT traversal
// against the kernel's own connection tracking rather than a simulation.
//
// A Lab has one "internet" namespace (a bridge on 203.0.113.0/24 where the signaling server
// and TURN relay live, plus a private address of its own as a cloud VM has, InternetPrivate)
// and any number of homes. A home is a router namespace whose uplink sits
// on the internet bridge with a public TEST-NET address and whose LAN is a bridge on
// 10.N.0.0/24; hosts are namespaces on that LAN with a default route via the router. The
// router masquerades the LAN behind its uplink (plain MASQUERADE for an "easy" NAT,
// MASQUERADE --random-fully for a "hard", endpoint-dependent one) and, like a real home
// router, drops unsolicited inbound traffic.
//
// Nothing in a lab routes outside it: no namespace has a route to the host, the host's own
// namespace is never touched, and everything a lab creates (namespaces, and with them their
// interfaces and iptables rules; processes) is removed in t.Cleanup. Namespaces left behind by
// a killed run are removed when the next lab starts.
package natlab

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
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireAllEnv names the environment variable under which a lab that cannot run fails the
// test instead of skipping it (CI sets it, so a missing tool is never silently ignored).
const RequireAllEnv = "RTCMESH_REQUIRE_ALL"

// Available says why a lab cannot run on this machine, or nil when it can: it needs root
// (namespaces and iptables) and the ip and iptables commands.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("natlab needs root (network namespaces and iptables)")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("natlab needs %s (install iproute2 and iptables): %w", tool, err)
		}
	}
	return nil
}

// Require skips t with a one-line reason when a lab cannot run here, or fails it when
// RTCMESH_REQUIRE_ALL=1.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv(RequireAllEnv) == "1" {
			t.Fatalf("%v (%s=1)", err, RequireAllEnv)
		}
		t.Skip(err)
	}
}

// Build compiles the rtcmesh binary into dir and returns its path. Run it once per test
// binary (from TestMain), not per test: a build takes seconds.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "rtcmesh")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/rtcmesh/rtcmesh/cmd/rtcmesh")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building rtcmesh: %w\n%s", err, out)
	}
	return bin, nil
}

// NATType is how a home router maps its LAN's flows onto its public address.
type NATType int

const (
	// Easy is plain MASQUERADE: the source port is kept when it is free, so the mapping is
	// endpoint-independent and hole punching works.
	Easy NATType = iota
	// Hard is MASQUERADE --random-fully: every destination gets a new random port
	// (endpoint-dependent, "symmetric"), so two hard NATs can only meet through a relay.
	Hard
)

func (n NATType) String() string {
	switch n {
	case Easy:
		return "easy"
	case Hard:
		return "hard"
	}
	return "NATType(" + strconv.Itoa(int(n)) + ")"
}

// namePattern matches every namespace a lab creates: "rl", 6 hex digits, the creating
// process's pid, then the role.
var namePattern = regexp.MustCompile(`^rl[0-9a-f]{6}-p([0-9]+)-`)

const (
	// InternetServer is the internet namespace's own address on the lab internet,
	// 203.0.113.0/24 (TEST-NET-3), where the signaling server and TURN relay listen.
	InternetServer = "203.0.113.1"
	// InternetPrefix is the lab internet's range. It is a documentation range, which a TURN
	// relay refuses as a peer by default (it is not globally reachable): the lab's relays are
	// told to allow it, as relays of a private deployment would be.
	InternetPrefix = "203.0.113.0/24"
	// InternetPrivate is the internet namespace's private address, on an interface of its
	// own with nothing attached (a cloud VM's private network, 172.16.0.0/24): what a TURN
	// relay on that host must refuse to relay to.
	InternetPrivate = "172.16.0.1"
	maxHomes        = 200 // routers get 203.0.113.10 upwards, LANs 10.1.0.0/24 upwards
	maxHosts        = 200 // hosts get 10.N.0.10 upwards
)

// Lab is one set of namespaces forming an internet and its homes. Its methods fail the test
// that created it on error; they are not safe for concurrent use.
type Lab struct {
	t      testing.TB
	binary string
	prefix string
	inet   *Namespace
	homes  map[string]*Home
	nHomes int
	nVeths int
	procs  []*Process
}

// Namespace is one network namespace of a lab.
type Namespace struct {
	lab *Lab
	// Name is the namespace's name, as `ip netns` knows it.
	Name string
	// Addr is the namespace's own IPv4 address (the uplink's for a router).
	Addr string
}

// Home is a router namespace with its LAN.
type Home struct {
	lab *Lab
	// Name is the name given to Lab.Home.
	Name string
	// NAT is the router's mapping behaviour.
	NAT NATType
	// Router is the router's namespace; Router.Addr is its public address.
	Router *Namespace
	// LAN is the home network, 10.N.0.0/24; the router is 10.N.0.1.
	LAN     string
	index   int
	hosts   []*Namespace
	removed bool
}

// New builds a lab's internet namespace and registers its removal with t.Cleanup. binary is
// the rtcmesh binary processes run (see Build). Namespaces left behind by killed runs are
// removed first.
func New(t testing.TB, binary string) *Lab {
	t.Helper()
	Require(t)
	removeStale(t)
	var id [3]byte
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatalf("natlab: random id: %v", err)
	}
	l := &Lab{
		t:      t,
		binary: binary,
		prefix: fmt.Sprintf("rl%s-p%d-", hex.EncodeToString(id[:]), os.Getpid()),
		homes:  map[string]*Home{},
	}
	t.Cleanup(l.close)
	l.inet = l.newNamespace("inet")
	l.inet.Addr = InternetServer
	l.inet.run("ip", "link", "add", "br0", "type", "bridge")
	l.inet.run("ip", "addr", "add", InternetServer+"/24", "dev", "br0")
	l.inet.run("ip", "link", "set", "br0", "up")
	// An empty bridge is a plain interface to hold the host's private address (the dummy
	// driver is not always available).
	l.inet.run("ip", "link", "add", "priv0", "type", "bridge")
	l.inet.run("ip", "addr", "add", InternetPrivate+"/24", "dev", "priv0")
	l.inet.run("ip", "link", "set", "priv0", "up")
	l.inet.keepBridgesPlain()
	return l
}

// removeStale deletes lab namespaces whose creating process is gone (a run that was killed
// before its cleanup ran). Labs of live processes, including parallel tests, are left alone.
func removeStale(t testing.TB) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("natlab: ip netns list: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		m := namePattern.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if _, err := os.Stat("/proc/" + m[1]); err == nil {
			continue
		}
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Logf("natlab: removing stale namespace %s: %v: %s", name, err, out)
		}
	}
}

// newNamespace creates a namespace with loopback up, IPv6 off (so only the lab's IPv4
// addresses become ICE candidates) and bridged traffic kept out of iptables.
func (l *Lab) newNamespace(role string) *Namespace {
	l.t.Helper()
	ns := &Namespace{lab: l, Name: l.prefix + role}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		l.t.Fatalf("natlab: ip netns add %s: %v: %s", ns.Name, err, out)
	}
	ns.run("ip", "link", "set", "lo", "up")
	ns.run("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
	ns.run("sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1")
	return ns
}

// keepBridgesPlain stops br_netfilter, if the host has it loaded, from passing this
// namespace's bridged frames through iptables, so a bridge acts as a plain switch.
func (ns *Namespace) keepBridgesPlain() {
	if _, err := ns.output("sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=0"); err != nil {
		ns.lab.t.Logf("natlab: %s: bridge-nf-call-iptables not set (br_netfilter not loaded): %v", ns.Name, err)
	}
}

// run executes a command inside the namespace and fails the test if it fails.
func (ns *Namespace) run(args ...string) {
	ns.lab.t.Helper()
	if out, err := ns.output(args...); err != nil {
		ns.lab.t.Fatalf("natlab: %s: %s: %v: %s", ns.Name, strings.Join(args, " "), err, out)
	}
}

// output executes a command inside the namespace and returns its combined output.
func (ns *Namespace) output(args ...string) ([]byte, error) {
	full := append([]string{"netns", "exec", ns.Name}, args...)
	return exec.Command("ip", full...).CombinedOutput()
}

// Output runs a command inside the namespace (for diagnostics, such as reading
// /proc/net/nf_conntrack) and returns its combined output.
func (ns *Namespace) Output(args ...string) (string, error) {
	out, err := ns.output(args...)
	return string(out), err
}

// Internet is the namespace on the lab's public network, at InternetServer.
func (l *Lab) Internet() *Namespace { return l.inet }

// link connects two namespaces with a veth pair created directly inside them (never in the
// host's namespace) and attaches bEnd to bridge in b.
func (l *Lab) link(a *Namespace, aEnd string, b *Namespace, bridge string) {
	l.t.Helper()
	l.nVeths++
	bEnd := fmt.Sprintf("v%d", l.nVeths)
	a.run("ip", "link", "add", aEnd, "type", "veth", "peer", "name", bEnd, "netns", b.Name)
	b.run("ip", "link", "set", bEnd, "master", bridge)
	b.run("ip", "link", "set", bEnd, "up")
	a.run("ip", "link", "set", aEnd, "up")
}

// Home creates a home: a router on the internet with the next public address, masquerading
// its LAN (10.N.0.0/24) as nat says, and dropping unsolicited inbound traffic.
func (l *Lab) Home(name string, nat NATType) *Home {
	l.t.Helper()
	if _, dup := l.homes[name]; dup {
		l.t.Fatalf("natlab: home %q exists", name)
	}
	if nat != Easy && nat != Hard {
		l.t.Fatalf("natlab: home %q: unknown NAT type %v", name, nat)
	}
	if l.nHomes >= maxHomes {
		l.t.Fatalf("natlab: more than %d homes", maxHomes)
	}
	l.nHomes++
	h := &Home{lab: l, Name: name, NAT: nat, index: l.nHomes, LAN: fmt.Sprintf("10.%d.0.0/24", l.nHomes)}
	r := l.newNamespace("r" + strconv.Itoa(h.index))
	r.Addr = fmt.Sprintf("203.0.113.%d", 9+h.index)
	h.Router = r
	l.homes[name] = h
	r.keepBridgesPlain()
	l.link(r, "up0", l.inet, "br0")
	r.run("ip", "addr", "add", r.Addr+"/24", "dev", "up0")
	r.run("ip", "link", "add", "lan0", "type", "bridge")
	r.run("ip", "addr", "add", fmt.Sprintf("10.%d.0.1/24", h.index), "dev", "lan0")
	r.run("ip", "link", "set", "lan0", "up")
	r.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	masq := []string{"iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "up0", "-j", "MASQUERADE"}
	if nat == Hard {
		masq = append(masq, "--random-fully")
	}
	r.run(masq...)
	// A router that accepts unsolicited inbound packets breaks hole punching between easy
	// NATs: the peer's first punch creates a conntrack entry before the host has sent, and
	// the host's own packet is then mapped to a new port (see DESIGN.md, test tier 4).
	// Dropping it discards the unconfirmed entry, as real home routers do.
	for _, chain := range []string{"FORWARD", "INPUT"} {
		r.run("iptables", "-A", chain, "-i", "up0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
		r.run("iptables", "-A", chain, "-i", "up0", "-j", "DROP")
	}
	return h
}

// BlockUDP makes the home's router drop every UDP packet from its LAN to the internet, as
// restrictive networks do: its hosts reach the internet over TCP only, so a link must go
// through a TURN relay reached over TCP.
func (h *Home) BlockUDP() {
	h.lab.t.Helper()
	h.Router.run("iptables", "-I", "FORWARD", "1", "-o", "up0", "-p", "udp", "-j", "DROP")
}

// Host creates a host namespace on the home's LAN (10.N.0.10 upwards) with a default route via
// the router.
func (h *Home) Host(name string) *Namespace {
	l := h.lab
	l.t.Helper()
	if h.removed {
		l.t.Fatalf("natlab: home %q was removed", h.Name)
	}
	if len(h.hosts) >= maxHosts {
		l.t.Fatalf("natlab: more than %d hosts in home %q", maxHosts, h.Name)
	}
	ns := l.newNamespace(fmt.Sprintf("h%d-%d", h.index, len(h.hosts)+1))
	ns.Addr = fmt.Sprintf("10.%d.0.%d", h.index, 10+len(h.hosts))
	h.hosts = append(h.hosts, ns)
	l.link(ns, "eth0", h.Router, "lan0")
	ns.run("ip", "addr", "add", ns.Addr+"/24", "dev", "eth0")
	ns.run("ip", "route", "add", "default", "via", fmt.Sprintf("10.%d.0.1", h.index))
	return ns
}

// RemoveHome deletes a home's router namespace, which cuts its hosts off the internet at
// once (their processes keep running, isolated on their LAN).
func (l *Lab) RemoveHome(name string) {
	l.t.Helper()
	h, ok := l.homes[name]
	if !ok || h.removed {
		l.t.Fatalf("natlab: no home %q to remove", name)
	}
	h.removed = true
	if out, err := exec.Command("ip", "netns", "delete", h.Router.Name).CombinedOutput(); err != nil {
		l.t.Fatalf("natlab: removing router of %q: %v: %s", name, err, out)
	}
}

// close kills every process and deletes every namespace of the lab.
func (l *Lab) close() {
	for _, p := range l.procs {
		p.Kill()
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		l.t.Errorf("natlab: ip netns list: %v", err)
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if !strings.HasPrefix(name, l.prefix) {
			continue
		}
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			l.t.Errorf("natlab: deleting namespace %s: %v: %s", name, err, out)
		}
	}
}

// Process is an rtcmesh process running in a lab namespace. Its standard output and standard
// error are read line by line and kept; lines that are JSON objects can be awaited.
type Process struct {
	// Name labels the process in failure messages.
	Name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *lineLog // standard output: a node's events
	err   *lineLog // standard error: logs
	done  chan struct{}
}

// lineLog is the lines a stream has carried so far, and a signal for each new one.
type lineLog struct {
	mu      sync.Mutex
	lines   []map[string]any
	raw     bytes.Buffer
	changed chan struct{} // closed and replaced on every new line and at end of stream
	ended   bool
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

// maxRaw bounds the text kept for failure messages per stream.
const maxRaw = 1 << 20

func (ll *lineLog) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var m map[string]any
		isJSON := json.Unmarshal(sc.Bytes(), &m) == nil
		ll.mu.Lock()
		if ll.raw.Len() < maxRaw {
			ll.raw.Write(sc.Bytes())
			ll.raw.WriteByte('\n')
		}
		if isJSON {
			ll.lines = append(ll.lines, m)
		}
		close(ll.changed)
		ll.changed = make(chan struct{})
		ll.mu.Unlock()
	}
	ll.mu.Lock()
	ll.ended = true
	close(ll.changed)
	ll.changed = make(chan struct{})
	ll.mu.Unlock()
}

// Start runs the lab's rtcmesh binary with args inside the namespace. The process is killed
// when the test ends (or the test binary dies).
func (ns *Namespace) Start(name string, args ...string) *Process {
	ns.lab.t.Helper()
	return ns.StartProgram(name, nil, ns.lab.binary, args...)
}

// StartProgram runs any program inside the namespace, with the test's environment plus env
// ("KEY=value" entries), as Start does the rtcmesh binary. A test re-executes its own binary
// (os.Args[0]) this way to run Go code, such as a protocol client, inside a lab namespace.
func (ns *Namespace) StartProgram(name string, env []string, path string, args ...string) *Process {
	l := ns.lab
	l.t.Helper()
	full := append([]string{"netns", "exec", ns.Name, path}, args...)
	cmd := exec.Command("ip", full...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	// ip netns exec execs the binary in place, so this signal reaches rtcmesh itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &Process{Name: name, cmd: cmd, out: newLineLog(), err: newLineLog(), done: make(chan struct{})}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		l.t.Fatalf("natlab: %s: %v", name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		l.t.Fatalf("natlab: %s: %v", name, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		l.t.Fatalf("natlab: %s: %v", name, err)
	}
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("natlab: starting %s: %v", name, err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); p.out.read(stdout) }()
	go func() { defer readers.Done(); p.err.read(stderr) }()
	go func() {
		readers.Wait() // Wait closes the pipes, so read them to the end first
		_ = cmd.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return p
}

// Kill stops the process at once (SIGKILL) and waits for it to exit. Killing a process that
// has exited does nothing.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill() // fails only when it has exited already
	<-p.done
}

// Logs is what the process wrote to standard error so far (up to 1 MiB).
func (p *Process) Logs() string {
	p.err.mu.Lock()
	defer p.err.mu.Unlock()
	return p.err.raw.String()
}

// Output is what the process wrote to standard output so far (up to 1 MiB).
func (p *Process) Output() string {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	return p.out.raw.String()
}

// Mark is the number of JSON lines the process has written to standard output so far, to
// await only later ones.
func (p *Process) Mark() int {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	return len(p.out.lines)
}

// Events returns the JSON lines the process has written to standard output so far, from
// index since (see Mark).
func (p *Process) Events(since int) []map[string]any {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	if since >= len(p.out.lines) {
		return nil
	}
	return append([]map[string]any(nil), p.out.lines[since:]...)
}

// WriteLine writes one line to the process's standard input (a node broadcasts it).
func (p *Process) WriteLine(t testing.TB, line string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		t.Fatalf("natlab: writing to %s: %v", p.Name, err)
	}
}

// Await waits up to timeout for a JSON line on standard output, at or after index since (see
// Mark), that match accepts, and returns it. It fails t, with the process's logs, otherwise.
func (p *Process) Await(t testing.TB, since int, timeout time.Duration, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	m, err := p.Wait(since, timeout, match)
	if err != nil {
		t.Fatalf("%s: %s: %v\nstdout:\n%s\nstderr:\n%s", p.Name, what, err, p.Output(), p.Logs())
	}
	return m
}

// Wait is Await returning an error instead of failing a test, for waiting on several
// processes and reporting every one that missed.
func (p *Process) Wait(since int, timeout time.Duration, match func(map[string]any) bool) (map[string]any, error) {
	return p.out.await(since, timeout, match)
}

// AwaitLog is Await for the JSON log lines on standard error, from the first.
func (p *Process) AwaitLog(t testing.TB, timeout time.Duration, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	m, err := p.err.await(0, timeout, match)
	if err != nil {
		t.Fatalf("%s: %s: %v\nstderr:\n%s", p.Name, what, err, p.Logs())
	}
	return m
}

func (ll *lineLog) await(since int, timeout time.Duration, match func(map[string]any) bool) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	next := since
	for {
		ll.mu.Lock()
		lines, ended, changed := ll.lines, ll.ended, ll.changed
		ll.mu.Unlock()
		for ; next < len(lines); next++ {
			if match(lines[next]) {
				return lines[next], nil
			}
		}
		if ended {
			return nil, errors.New("the process's output ended")
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("not within %v", timeout)
		}
	}
}
