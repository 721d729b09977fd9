//go:build linux

package turnserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

// peekingConn reads a TCP stream to a TURN server the way turnutils_uclient does: it peeks at
// the socket until a whole message is queued and only then reads it, and its receive buffer is
// small and fixed. A message whose first part is queued while the rest never comes stalls it
// for good, as it stalls uclient. Reading can be paused (see pause and resume), so that the
// server's queue fills.
type peekingConn struct {
	net.Conn
	rc syscall.RawConn

	mu      sync.Mutex
	cond    sync.Cond
	paused  bool
	stalled error // why reading stopped for good, if it did
}

// err reports why reading stopped for good, if it did.
func (c *peekingConn) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stalled
}

func newPeekingConn(t *testing.T, addr string, rcvbuf int) *peekingConn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial TCP: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	rc, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	c := &peekingConn{Conn: conn, rc: rc}
	c.cond.L = &c.mu
	return c
}

// pause stops reading: no message is taken from the socket until resume.
func (c *peekingConn) pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = true
}

// waitResumed waits while reading is paused.
func (c *peekingConn) waitResumed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.paused {
		c.cond.Wait()
	}
}

func (c *peekingConn) resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = false
	c.cond.Broadcast()
}

// queued peeks at up to len(buf) queued bytes without waiting.
func (c *peekingConn) queued(buf []byte) (int, error) {
	var n int
	var errno error
	err := c.rc.Read(func(fd uintptr) bool {
		n, _, errno = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	if errors.Is(errno, syscall.EAGAIN) {
		return 0, nil
	}
	return n, errors.Join(err, errno)
}

// Read returns exactly one whole STUN message or ChannelData frame. It fails when a message
// stays incomplete for waitDeadline: the connection has stalled.
func (c *peekingConn) Read(p []byte) (int, error) {
	head := make([]byte, stunHeaderSize)
	var since time.Time
	for {
		c.waitResumed()
		n, err := c.queued(head)
		if err != nil {
			return 0, err
		}
		size := 0
		switch {
		case n >= channelDataHeaderSize && head[0]&0xc0 == 0x40:
			size = channelDataHeaderSize + (int(binary.BigEndian.Uint16(head[2:4]))+3)&^3 // padded over TCP
		case n >= 4 && head[0]&0xc0 == 0:
			size = stunHeaderSize + int(binary.BigEndian.Uint16(head[2:4]))
		case n >= 1 && head[0]&0xc0 != 0 && head[0]&0xc0 != 0x40:
			return 0, fmt.Errorf("not a STUN message or ChannelData: first byte %#x", head[0])
		}
		if size > len(p) {
			return 0, fmt.Errorf("a %d-byte message does not fit a %d-byte read", size, len(p))
		}
		if size > 0 {
			if m, err := c.queued(p[:size]); err != nil {
				return 0, err
			} else if m == size {
				return io.ReadFull(c.Conn, p[:size]) //nolint:wrapcheck // the test reads it as it is
			}
		}
		// Nothing, or part of a message: wait for more, as uclient waits for a read event.
		if n > 0 {
			if since.IsZero() {
				since = time.Now()
			} else if time.Since(since) > waitDeadline/2 {
				err := fmt.Errorf("stalled: the first %d+ bytes of a message have been queued alone for %v", n, waitDeadline/2)
				c.mu.Lock()
				c.stalled = err
				c.mu.Unlock()
				return 0, err
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTCPSlowReaderBurst relays bursts of peer datagrams to a TCP client that stops reading and
// then reads like turnutils_uclient (whole messages only, from a small fixed receive buffer).
// A burst the connection can carry (the client's receive buffer, the server's send buffer and
// queue) arrives whole and in order, with nothing dropped, and never leaves the client a
// message it cannot complete. A burst larger than that is dropped in part, and meanwhile the
// relay socket's read loop keeps going (every datagram is relayed or counted as dropped while
// the client reads nothing) and the server keeps relaying for another client.
func TestTCPSlowReaderBurst(t *testing.T) {
	cfg := loopbackConfig(t, newTestClock())
	cfg.AllowedPeers = loopbackOnly
	srv := startServer(t, cfg)
	conn := newPeekingConn(t, srv.TCPAddr().String(), 16<<10)
	user, pass := srv.Credentials("node-tcp")
	client := startClient(t, turn.NewSTUNConn(conn), conn.RemoteAddr().String(), user, pass)
	relay, err := client.Allocate()
	if err != nil {
		t.Fatalf("Allocate over TCP: %v", err)
	}
	peer := newLoopbackPeer(t)
	relayRoundTrips(t, relay, peer, 5) // a permission, and the channel pion's client binds

	const size = 1200
	seq := 0
	burst := func(n int) (first int) {
		first = seq
		before := srv.Stats()
		msg := make([]byte, size)
		for i := range n {
			binary.BigEndian.PutUint32(msg, uint32(seq))
			seq++
			if _, err := peer.WriteTo(msg, relay.LocalAddr()); err != nil {
				t.Fatalf("peer write: %v", err)
			}
			if (i+1)%32 == 0 || i == n-1 {
				// The relay socket's read loop takes each datagram although the client reads
				// nothing: it is relayed or dropped, never left waiting.
				want := uint64(i + 1)
				waitFor(t, fmt.Sprintf("the relay to take %d datagrams", want), func() bool {
					st := srv.Stats()
					return st.PacketsFromPeers-before.PacketsFromPeers+st.TCPQueueDrops-before.TCPQueueDrops == want
				})
			}
		}
		return first
	}
	// readBurst reads want datagrams of the burst of n starting at first, and fails on any that
	// arrives out of order or twice.
	readBurst := func(first, n, want int) {
		buf := make([]byte, 2048)
		next := first
		for i := range want {
			_ = relay.SetReadDeadline(time.Now().Add(waitDeadline))
			m, from, err := relay.ReadFrom(buf)
			if err != nil {
				t.Fatalf("reading datagram %d of %d: %v (TCP connection: %v)", i+1, want, err, conn.err())
			}
			if from.String() != peer.LocalAddr().String() || m != size {
				t.Fatalf("client got %d bytes from %v, want %d from the peer", m, from, size)
			}
			s := int(binary.BigEndian.Uint32(buf))
			if s < next || s >= first+n {
				t.Fatalf("datagram %d arrived after %d (burst %d..%d)", s, next-1, first, first+n-1)
			}
			next = s + 1
		}
	}

	// What the connection can carry: nothing is dropped.
	conn.pause()
	const carried = 150
	first := burst(carried)
	if st := srv.Stats(); st.TCPQueueDrops != 0 {
		t.Fatalf("%d datagrams dropped from a burst of %d the connection can carry", st.TCPQueueDrops, carried)
	}
	conn.resume()
	readBurst(first, carried, carried) // in order, so all of them: none was dropped

	// Far more than it can carry: the server drops what does not fit and keeps serving.
	conn.pause()
	const flood = 3000
	first = burst(flood)
	dropped := srv.Stats().TCPQueueDrops
	if dropped == 0 {
		t.Fatalf("nothing dropped from %d datagrams to a client that reads nothing", flood)
	}
	other, err := newUDPClient(t, srv, user, pass).Allocate()
	if err != nil {
		t.Fatalf("Allocate for another client while the TCP client reads nothing: %v", err)
	}
	relayRoundTrips(t, other, newLoopbackPeer(t), 3)
	conn.resume()
	readBurst(first, flood, flood-int(dropped)) // every one that was not dropped
	relayRoundTrips(t, relay, peer, 3)
	t.Logf("%d carried without loss; of %d, %d were dropped", carried, flood, dropped)
}
