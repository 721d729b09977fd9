package main

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Why not mocknet's own latency: a mocknet stream hands a write of 256 bytes or more to the
// reader only at its arrival time and takes the next write only then, so every stream carries
// at most one such write per latency (100 a second at 10 ms): a gossipsub RPC with a 256-byte
// payload is one. When the process is short of CPU and timers fire late, that queue grows and
// the latency measured is the queue's. memlink, on the rtcmesh side, delays each frame without
// holding back the next (a FIFO per link, every due frame handed over at once), as a real link
// with room to spare does. So gossipsub runs over mocknet links without latency, and each
// outbound stream gets the same FIFO delay here: a write is copied and queued at once, and one
// goroutine per stream writes every frame that is due, in order. -mocknet-latency keeps
// mocknet's own model instead.

// delayHost is a host whose outbound streams delay every write by a fixed latency.
type delayHost struct {
	host.Host
	latency time.Duration
}

// NewStream opens a stream as the host does and delays its writes.
func (h delayHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return newDelayStream(s, h.latency), nil
}

type delayed struct {
	data []byte
	due  time.Time
}

// delayStream queues writes and hands each to the underlying stream latency after it was
// written, in order; Close and CloseWrite wait until the queue is written.
type delayStream struct {
	network.Stream
	latency time.Duration

	mu     sync.Mutex
	queue  []delayed
	err    error
	closed bool
	wake   chan struct{}
	done   chan struct{}
}

func newDelayStream(s network.Stream, latency time.Duration) *delayStream {
	d := &delayStream{Stream: s, latency: latency, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go d.loop()
	return d
}

func (d *delayStream) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return 0, d.err
	}
	if d.closed {
		return 0, network.ErrReset
	}
	d.queue = append(d.queue, delayed{data: append([]byte(nil), b...), due: time.Now().Add(d.latency)})
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

// loop writes due frames until the stream is closed and its queue empty, or a write fails.
func (d *delayStream) loop() {
	defer close(d.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.mu.Lock()
		now := time.Now()
		var due []delayed
		for len(d.queue) > 0 && !d.queue[0].due.After(now) {
			due = append(due, d.queue[0])
			d.queue = d.queue[1:]
		}
		var next time.Duration = -1
		if len(d.queue) > 0 {
			next = d.queue[0].due.Sub(now)
		}
		closed := d.closed && len(d.queue) == 0
		d.mu.Unlock()
		for _, f := range due {
			if _, err := d.Stream.Write(f.data); err != nil {
				d.mu.Lock()
				d.err, d.queue = err, nil
				d.mu.Unlock()
				return
			}
		}
		if closed {
			return
		}
		if next < 0 {
			<-d.wake
			continue
		}
		timer.Reset(next)
		select {
		case <-timer.C:
		case <-d.wake:
			timer.Stop() // Go 1.23 timers: no stale tick to drain
		}
	}
}

// drain marks the stream closed and waits until its queue is written.
func (d *delayStream) drain() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	<-d.done
}

func (d *delayStream) Close() error {
	d.drain()
	return d.Stream.Close()
}

func (d *delayStream) CloseWrite() error {
	d.drain()
	return d.Stream.CloseWrite()
}

func (d *delayStream) Reset() error {
	d.mu.Lock()
	d.closed, d.queue = true, nil
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return d.Stream.Reset()
}

func (d *delayStream) ResetWithError(code network.StreamErrorCode) error {
	d.mu.Lock()
	d.closed, d.queue = true, nil
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return d.Stream.ResetWithError(code)
}
