//go:build !js

package signalnats_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalnats"
)

// requireAllEnv set to 1 turns a missing nats-server binary into a failure (CI).
const requireAllEnv = "RTCMESH_REQUIRE_ALL"

// natsServerBinary finds a nats-server program (Debian's package puts it in /usr/sbin), or
// skips (fails under RTCMESH_REQUIRE_ALL=1) when there is none.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server"
	}
	if os.Getenv(requireAllEnv) == "1" {
		t.Fatalf("nats-server is not installed (apt-get install nats-server; %s=1)", requireAllEnv)
	}
	t.Skip("nats-server is not installed (apt-get install nats-server): the test against a standalone server needs it")
	return ""
}

// startNATSProcess runs the nats-server program on a free loopback port with a user and
// password, and returns its address.
func startNATSProcess(t *testing.T, bin, user, pass string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var out bytes.Buffer
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "--user", user, "--pass", pass)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("nats-server output:\n%s", out.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitFor(t, "nats-server listening", func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return addr
}

// The same cluster against Debian's nats-server program, with a password: a wrong password is
// refused, the right one (given as Config fields, or in the URL) shares networks, and eight
// WebRTC nodes on two instances form one mesh that survives the loss of one instance.
func TestDebianNATSServer(t *testing.T) {
	bin := natsServerBinary(t)
	version, _ := exec.Command(bin, "--version").CombinedOutput()
	t.Logf("%s: %s", bin, bytes.TrimSpace(version))
	addr := startNATSProcess(t, bin, "rtcmesh", "s3cret-for-tests")

	bad := testClusterConfig("nats://" + addr)
	bad.User, bad.Password = "rtcmesh", "wrong"
	bad.ConnectTimeout = 2 * time.Second
	if cl, err := signalnats.Dial(bad); err == nil {
		cl.Close()
		t.Fatal("Dial with a wrong password succeeded")
	}

	good := testClusterConfig("nats://" + addr)
	good.User, good.Password = "rtcmesh", "s3cret-for-tests"
	a, b := startInstance(t, good), startInstance(t, testClusterConfig("nats://rtcmesh:s3cret-for-tests@"+addr))
	ca, cb := connect(t, newKey(t), a.url()), connect(t, newKey(t), b.url())
	ca.welcome()
	cb.welcome()
	ca.waitPeers(cb.c.ID())
	if err := ca.c.SendOffer(cb.c.ID(), "v=0"); err != nil {
		t.Fatal(err)
	}
	off := cb.next("offer", func(m signaling.Message) bool { _, ok := m.(*signaling.Offer); return ok }).(*signaling.Offer)
	if off.From != ca.c.ID() {
		t.Fatalf("offer from %s, want %s", off.From, ca.c.ID())
	}
	ca.close()
	cb.close()
	a.stop()
	b.stop()

	if testing.Short() {
		t.Log("the WebRTC mesh on Debian's nats-server is skipped in -short mode")
		return
	}
	runMeshAcrossInstances(t, fmt.Sprintf("nats://rtcmesh:s3cret-for-tests@%s", addr))
}
