package turnserver

import (
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// TestStreamWriterOrderAndDrops writes numbered frames to a TCP client that does not read, so
// that the first go out at once (the kernel takes them), the next wait in the queue, and the
// rest are dropped; then the client reads. It gets exactly the frames that were not dropped,
// whole and in order, and a response written after them arrives last.
func TestStreamWriterOrderAndDrops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	_ = server.(*net.TCPConn).SetWriteBuffer(8 << 10)
	_ = client.(*net.TCPConn).SetReadBuffer(8 << 10)

	const frameSize, limit = 1000, 8 * 1000
	w := newStreamWriter(server, limit)
	if runtime.GOOS == "linux" && w.raw == nil {
		t.Fatal("no direct sender for a TCP connection on Linux")
	}
	go w.run()
	defer w.close()
	frame := func(i int) []byte {
		f := make([]byte, frameSize)
		binary.BigEndian.PutUint32(f, uint32(i))
		return f
	}
	var kept []int
	dropped := 0
	for i := 0; dropped < 100; i++ {
		if i > 100000 {
			t.Fatal("no frame dropped although the client reads nothing")
		}
		d, err := w.write(frame(i), true)
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if d {
			dropped++
			continue
		}
		kept = append(kept, i)
	}
	// A response is never dropped: it waits for room, which the client's reading makes.
	done := make(chan error, 1)
	go func() {
		_, err := w.write(frame(-1), false)
		done <- err
	}()

	_ = client.SetReadDeadline(time.Now().Add(waitDeadline))
	buf := make([]byte, frameSize)
	for _, want := range kept {
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatalf("reading frame %d: %v", want, err)
		}
		if got := int(binary.BigEndian.Uint32(buf)); got != want {
			t.Fatalf("frame %d arrived where %d was expected: out of order or cut", got, want)
		}
	}
	if _, err := io.ReadFull(client, buf); err != nil || int32(binary.BigEndian.Uint32(buf)) != -1 {
		t.Fatalf("last frame %d (%v), want the response", int32(binary.BigEndian.Uint32(buf)), err)
	}
	if err := <-done; err != nil {
		t.Fatalf("response write: %v", err)
	}
	t.Logf("%d frames kept, %d dropped", len(kept), dropped)
}
