package coturnbench

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// What is measured, per scenario and relay, in alternating runs (coturn, rtcmesh, [baseline],
// then the next run starts with the next relay):
//
//   - msg/s: echoes received by turnutils_uclient per second while traffic flows. uclient prints
//     its running totals once a second; the rate is taken over the seconds strictly between the
//     first and the last second in which the total grew, timed by this process as the lines
//     arrive, so neither the random start delay nor the wait for stragglers counts.
//   - loss: uclient's "Total lost packets" percentage (messages sent whose echo never came).
//   - CPU/msg: the relay process's user+system CPU (/proc/<pid>/stat) from just before uclient
//     starts until it exits, divided by the messages it relayed, counted as messages sent plus
//     echoes received (each echo crosses the relay twice).
//
// Every relay gets the same client, peer, credentials (TURN REST secret) and load. rtcmesh runs
// with a bandwidth limit far above the load (so the limiter's cost is included) and a per-user
// quota above the client count; coturn runs with its defaults plus what loopback needs.
//
// When the benchmark runs as root with the ip command, everything runs in a private network
// namespace whose loopback has a 1500-byte MTU, as a real path would. On the host's 64 KiB-MTU
// loopback, uclient's TCP reader (it peeks, waits for a whole message and keeps a fixed 128 KiB
// receive buffer) can deadlock against any relay: a partial message left in a 64 KiB segment
// closes its receive window for good. That was seen with coturn too (93% loss in one run of
// three), which makes TCP figures a lottery there. Without root the host loopback is used and a
// note says so.

var (
	runsFlag      = flag.Int("coturnbench.runs", 3, "alternating runs per scenario and relay")
	scenariosFlag = flag.String("coturnbench.scenarios", "", "comma-separated scenarios to run (default all: "+strings.Join(scenarioNames(), ",")+")")
	baselineFlag  = flag.String("coturnbench.baseline", "", "path of another rtcmesh binary to run as a third relay, e.g. one built from an older commit")
	scaleFlag     = flag.Float64("coturnbench.scale", 1, "multiplies every scenario's message count")
	hostFlag      = flag.Bool("coturnbench.host", false, "use the host loopback even when a network namespace is possible")
)

const (
	requireAllEnv = "RTCMESH_REQUIRE_ALL"
	// secret is the TURN REST shared secret both relays check uclient's credentials with.
	secret = "coturnbench-shared-secret"
	// messageSize is the payload of every message, like a full WebRTC datagram.
	messageSize = 1200
	// runTimeout bounds one uclient run: its start delay (up to 6 s), the traffic and its wait
	// for stragglers (10 s).
	runTimeout = 3 * time.Minute
	// cpuTicksPerSecond is USER_HZ, the unit of /proc/<pid>/stat's utime and stime; it is 100 on
	// every Linux architecture Go supports.
	cpuTicksPerSecond = 100
)

// scenario is one uclient load.
type scenario struct {
	name     string
	tcp      bool // client to relay over TCP (the relay still relays UDP)
	clients  int
	messages int // per client
	interval int // milliseconds between a client's messages; 0 sends as fast as uclient can
}

var scenarios = []scenario{
	{name: "udp-1", clients: 1, messages: 40000},
	{name: "udp-20", clients: 20, messages: 2500},
	{name: "tcp-1", tcp: true, clients: 1, messages: 40000},
	{name: "tcp-20", tcp: true, clients: 20, messages: 2500},
	// 20 clients at one message per 5 ms: 4,000 msg/s offered, well below saturation.
	{name: "udp-paced", clients: 20, messages: 1000, interval: 5},
}

func scenarioNames() []string {
	var names []string
	for _, s := range scenarios {
		names = append(names, s.name)
	}
	return names
}

// result is one run's figures.
type result struct {
	rate      float64 // echoes per second while traffic flowed
	lossPct   float64
	cpuPerMsg time.Duration
	sent      int
	received  int
	drops     udpDrops
}

// udpDrops counts datagrams the kernel dropped because a socket's receive buffer was full, by
// socket: where a run's loss happened.
type udpDrops struct {
	listener, relay, client, peer int
	// rcvbufErrors is the namespace's (or, on the host, the whole machine's) UDP RcvbufErrors
	// counter, from /proc/net/snmp. uclient's sockets are closed before the per-socket counters
	// can be read, so their drops are the counter's growth over the run less the other sockets'.
	rcvbufErrors int
}

func (d udpDrops) String() string {
	return fmt.Sprintf("drops: listener %d, relay sockets %d, clients %d, peer %d", d.listener, d.relay, d.client, d.peer)
}

// relay is one contender.
type relay struct {
	name  string
	start func(b *testing.B, env *env, port int) *exec.Cmd
}

// env is where the processes run: the host, or a network namespace.
type env struct {
	netns string // empty for the host
	dir   string
}

func (e *env) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if e.netns != "" {
		return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.netns, name}, args...)...)
	}
	return exec.CommandContext(ctx, name, args...)
}

func requireTools(b *testing.B) {
	var missing []string
	for _, tool := range []string{"turnserver", "turnutils_uclient", "turnutils_peer"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	reason := fmt.Sprintf("coturnbench needs Debian's coturn package (apt-get install coturn): %s not found", strings.Join(missing, ", "))
	if os.Getenv(requireAllEnv) == "1" {
		b.Fatalf("%s (%s=1)", reason, requireAllEnv)
	}
	b.Skip(reason)
}

// BenchmarkVsCoturn runs every scenario against coturn and rtcmesh (and the baseline binary, if
// given) in alternating runs and prints the medians and the ratios to coturn. It runs its load
// once whatever b.N is: use -benchtime 1x.
func BenchmarkVsCoturn(b *testing.B) {
	requireTools(b)
	dir := b.TempDir()
	bin := filepath.Join(dir, "rtcmesh")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/rtcmesh/rtcmesh/cmd/rtcmesh").CombinedOutput(); err != nil {
		b.Fatalf("building rtcmesh: %v\n%s", err, out)
	}
	e := &env{dir: dir}
	if !*hostFlag {
		if ns, err := newNetns(b); err != nil {
			b.Logf("note: %v; using the host loopback, where uclient's TCP reader can deadlock (see the comment at the top)", err)
		} else {
			e.netns = ns
		}
	}
	relays := []relay{{name: "coturn", start: startCoturn}, {name: "rtcmesh", start: rtcmeshStarter(bin)}}
	if *baselineFlag != "" {
		relays = append(relays, relay{name: "baseline", start: rtcmeshStarter(*baselineFlag)})
	}
	selected := scenarios
	if *scenariosFlag != "" {
		selected = nil
		for _, name := range strings.Split(*scenariosFlag, ",") {
			i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.name == name })
			if i < 0 {
				b.Fatalf("unknown scenario %q; known: %s", name, strings.Join(scenarioNames(), ","))
			}
			selected = append(selected, scenarios[i])
		}
	}
	if *runsFlag < 1 || *scaleFlag <= 0 {
		b.Fatalf("-coturnbench.runs must be at least 1 and -coturnbench.scale positive")
	}

	port := 30000
	results := map[string]map[string][]result{}
	for _, sc := range selected {
		sc.messages = max(1, int(float64(sc.messages)**scaleFlag))
		results[sc.name] = map[string][]result{}
		for run := range *runsFlag {
			for k := range relays {
				r := relays[(run+k)%len(relays)]
				port += 10
				res, err := runOnce(b, e, r, sc, port)
				if err != nil {
					b.Errorf("%s %s run %d: %v", sc.name, r.name, run+1, err)
					continue
				}
				b.Logf("%-9s %-8s run %d: %8.0f msg/s  loss %6.2f%%  CPU %5.1f µs/msg  (sent %d, received %d; %v)",
					sc.name, r.name, run+1, res.rate, res.lossPct, float64(res.cpuPerMsg.Nanoseconds())/1e3, res.sent, res.received, res.drops)
				results[sc.name][r.name] = append(results[sc.name][r.name], res)
			}
		}
	}
	b.Log("\n" + table(selected, relays, results))
}

// runOnce starts the relay and a peer, runs uclient against them and stops both.
func runOnce(b *testing.B, e *env, r relay, sc scenario, port int) (result, error) {
	peerPort := port + 1
	peer := e.command(context.Background(), "turnutils_peer", "-L", "127.0.0.1", "-p", strconv.Itoa(peerPort))
	peer.Stdout, peer.Stderr = io.Discard, io.Discard
	if err := peer.Start(); err != nil {
		return result{}, fmt.Errorf("starting turnutils_peer: %w", err)
	}
	defer stop(peer)
	server := r.start(b, e, port)
	defer stop(server)
	if err := waitListening(e, port); err != nil {
		return result{}, fmt.Errorf("%s: %w", r.name, err)
	}
	before, err := cpuTime(server.Process.Pid)
	if err != nil {
		return result{}, err
	}
	dropsBefore := readDrops(e, port, peerPort)
	args := []string{"-W", secret, "-u", "bench", "-e", "127.0.0.1", "-r", strconv.Itoa(peerPort), "-p", strconv.Itoa(port),
		"-l", strconv.Itoa(messageSize), "-n", strconv.Itoa(sc.messages), "-m", strconv.Itoa(sc.clients),
		"-z", strconv.Itoa(sc.interval), "-c"}
	if sc.tcp {
		args = append([]string{"-t"}, args...)
	}
	args = append(args, "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	client := e.command(ctx, "turnutils_uclient", args...)
	out, err := client.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	client.Stderr = client.Stdout
	if err := client.Start(); err != nil {
		return result{}, fmt.Errorf("starting turnutils_uclient: %w", err)
	}
	res, transcript, parseErr := parseUclient(out)
	waitErr := client.Wait()
	res.drops = readDrops(e, port, peerPort)
	if res.drops.rcvbufErrors >= dropsBefore.rcvbufErrors {
		res.drops.client = max(0, res.drops.rcvbufErrors-dropsBefore.rcvbufErrors-res.drops.listener-res.drops.relay-res.drops.peer)
	}
	after, err := cpuTime(server.Process.Pid)
	if err != nil {
		return result{}, err
	}
	if parseErr != nil || waitErr != nil {
		return result{}, fmt.Errorf("uclient: %v %v; its last lines:\n%s", waitErr, parseErr, lastLines(transcript, 15))
	}
	if n := res.sent + res.received; n > 0 {
		res.cpuPerMsg = (after - before) / time.Duration(n)
	}
	return res, nil
}

func rtcmeshStarter(bin string) func(*testing.B, *env, int) *exec.Cmd {
	return func(b *testing.B, e *env, port int) *exec.Cmd {
		listen := "127.0.0.1:" + strconv.Itoa(port)
		cmd := e.command(context.Background(), bin, "turn", "--listen", listen, "--listen-tcp", listen,
			"--allow-peers", "127.0.0.1/32", "--max-allocations-per-user", "1000",
			"--bandwidth", "100000000", "--log-level", "warn")
		cmd.Env = append(os.Environ(), "RTCMESH_SECRET="+secret)
		return startLogged(b, e, cmd, "rtcmesh")
	}
}

func startCoturn(b *testing.B, e *env, port int) *exec.Cmd {
	empty := filepath.Join(e.dir, "turnserver.conf")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := e.command(context.Background(), "turnserver", "-c", empty, "-n",
		"--listening-ip=127.0.0.1", "--listening-port="+strconv.Itoa(port), "--relay-ip=127.0.0.1",
		"--use-auth-secret", "--static-auth-secret="+secret, "--realm=rtcmesh",
		"--allow-loopback-peers", "--no-tls", "--no-dtls", "--no-cli",
		"--log-file=stdout", "--simple-log", "--pidfile="+filepath.Join(e.dir, "turnserver.pid"))
	return startLogged(b, e, cmd, "coturn")
}

// startLogged starts cmd with its output in a file of the benchmark's directory, shown when the
// run fails.
func startLogged(b *testing.B, e *env, cmd *exec.Cmd, name string) *exec.Cmd {
	f, err := os.CreateTemp(e.dir, name+"-*.log")
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting %s: %v", name, err)
	}
	_ = f.Close()
	return cmd
}

func stop(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// waitListening waits until something accepts TCP connections on port (both relays listen on
// TCP and UDP at once).
func waitListening(e *env, port int) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		if e.netns != "" {
			err = exec.Command("ip", "netns", "exec", e.netns, "bash", "-c",
				fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", port)).Run()
		} else {
			var c net.Conn
			if c, err = net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second); err == nil {
				_ = c.Close()
			}
		}
		if err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("nothing listening on port %d within 10 s", port)
}

// readDrops sums the receive-buffer drops of the UDP sockets of a run, from /proc/net/udp:
// the relay's listener (bound to port), uclient's sockets (connected to port, if still open),
// the peer (bound to peerPort) and the rest, which are the relay sockets. Sockets are fresh in
// every run, and on the host other programs' sockets count as relay sockets. It also reads the
// UDP RcvbufErrors counter (see udpDrops).
func readDrops(e *env, port, peerPort int) udpDrops {
	var d udpDrops
	read := func(path string) ([]byte, error) {
		if e.netns != "" {
			return exec.Command("ip", "netns", "exec", e.netns, "cat", path).Output()
		}
		return os.ReadFile(path)
	}
	if snmp, err := read("/proc/net/snmp"); err == nil {
		d.rcvbufErrors = rcvbufErrors(string(snmp))
	}
	data, err := read("/proc/net/udp")
	if err != nil {
		return d
	}
	portOf := func(hexAddr string) int {
		_, p, _ := strings.Cut(hexAddr, ":")
		n, _ := strconv.ParseInt(p, 16, 32)
		return int(n)
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 {
			continue
		}
		drops, _ := strconv.Atoi(f[len(f)-1])
		switch local, remote := portOf(f[1]), portOf(f[2]); {
		case local == port:
			d.listener += drops
		case remote == port:
			d.client += drops
		case local == peerPort:
			d.peer += drops
		default:
			d.relay += drops
		}
	}
	return d
}

// rcvbufErrors reads the Udp RcvbufErrors counter from the text of /proc/net/snmp: a header
// line naming the fields, then a line of values.
func rcvbufErrors(snmp string) int {
	var names []string
	for _, line := range strings.Split(snmp, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		if i := slices.Index(names, "RcvbufErrors"); i > 0 && i < len(fields) {
			n, _ := strconv.Atoi(fields[i])
			return n
		}
		return 0
	}
	return 0
}

// cpuTime is the user+system CPU time a process has used, from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading relay CPU time: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces; fields count from the
	// last ')'.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat has %d fields after the name", pid, len(fields))
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / cpuTicksPerSecond, nil
}

var (
	progressLine = regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`)
	lossLine     = regexp.MustCompile(`Total lost packets (\d+) \(([0-9.]+)%\)`)
)

// parseUclient reads uclient's output to the end and computes the run's figures.
func parseUclient(r io.Reader) (result, []string, error) {
	type sample struct {
		at   time.Time
		recv int
	}
	var (
		samples    []sample
		transcript []string
		res        result
		sawLoss    bool
	)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		now, line := time.Now(), sc.Text()
		transcript = append(transcript, line)
		if m := progressLine.FindStringSubmatch(line); m != nil {
			res.sent, _ = strconv.Atoi(m[1])
			res.received, _ = strconv.Atoi(m[2])
			if strings.Contains(line, "msz=") {
				samples = append(samples, sample{at: now, recv: res.received})
			}
		}
		if m := lossLine.FindStringSubmatch(line); m != nil {
			res.lossPct, _ = strconv.ParseFloat(m[2], 64)
			sawLoss = true
		}
	}
	if err := sc.Err(); err != nil {
		return res, transcript, err
	}
	if !sawLoss {
		return res, transcript, errors.New("no final statistics")
	}
	first, last := -1, -1
	for i := 1; i < len(samples); i++ {
		if samples[i].recv > samples[i-1].recv {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	switch {
	case first < 0:
		res.rate = 0
	case last-1 > first: // whole seconds of traffic between the first and last growth
		res.rate = float64(samples[last-1].recv-samples[first].recv) / samples[last-1].at.Sub(samples[first].at).Seconds()
	default: // too short for whole seconds: count the partial ones too
		res.rate = float64(res.received) / samples[last].at.Sub(samples[first-1].at).Seconds()
	}
	return res, transcript, nil
}

func lastLines(lines []string, n int) string {
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// newNetns creates a network namespace with loopback up at a 1500-byte MTU and removes it when
// the benchmark ends.
func newNetns(b *testing.B) (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("not root, so no private network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "", errors.New("no ip command, so no private network namespace")
	}
	name := fmt.Sprintf("coturnbench-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return "", fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	b.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			b.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "mtu", "1500", "up").CombinedOutput(); err != nil {
		return "", fmt.Errorf("setting up loopback in %s: %v: %s", name, err, out)
	}
	return name, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// table prints the medians per scenario and relay, and each relay's ratio to coturn.
func table(selected []scenario, relays []relay, results map[string]map[string][]result) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-9s %-8s %9s %8s %9s | %9s %9s %9s\n", "scenario", "relay", "msg/s", "loss%", "CPU µs", "msg/s ×", "loss ×", "CPU ×")
	for _, sc := range selected {
		med := map[string][3]float64{}
		for _, r := range relays {
			var rate, loss, cpu []float64
			for _, res := range results[sc.name][r.name] {
				rate = append(rate, res.rate)
				loss = append(loss, res.lossPct)
				cpu = append(cpu, float64(res.cpuPerMsg.Nanoseconds())/1e3)
			}
			med[r.name] = [3]float64{median(rate), median(loss), median(cpu)}
		}
		ref := med["coturn"]
		for _, r := range relays {
			m := med[r.name]
			fmt.Fprintf(&sb, "%-9s %-8s %9.0f %8.2f %9.1f | %9s %9s %9s\n", sc.name, r.name, m[0], m[1], m[2],
				ratio(m[0], ref[0]), ratio(m[1], ref[1]), ratio(m[2], ref[2]))
		}
	}
	return sb.String()
}

func ratio(x, ref float64) string {
	if ref == 0 {
		if x == 0 {
			return "1.00"
		}
		return "inf"
	}
	return strconv.FormatFloat(x/ref, 'f', 2, 64)
}
