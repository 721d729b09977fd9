package signalserver_test

import (
	"testing"

	"github.com/gorilla/websocket"

	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
)

// BenchmarkRelay measures end-to-end relays over loopback: one client sends candidates,
// another reads them, the server parses, stamps and forwards each.
func BenchmarkRelay(b *testing.B) {
	srv, err := signalserver.New(overDefaults(signalserver.Config{RateLimit: 1e9, RateBurst: 1e9, SendQueueBytes: 1 << 20, MaxQueuedBytes: 1 << 30}))
	if err != nil {
		b.Fatal(err)
	}
	url, stop := serveForBench(b, srv)
	defer stop()
	send := dialBench(b, url, "sender")
	recv := dialBench(b, url, "receiver")
	frame, err := signaling.Marshal(&signaling.Candidate{To: idOf("receiver"), Candidate: `{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0"}`})
	if err != nil {
		b.Fatal(err)
	}
	errs := make(chan error, 1)
	// At most window relays in flight: an unpaced sender would overflow the receiver's
	// send queue, which the server (correctly) treats as a slow consumer.
	const window = 256
	inFlight := make(chan struct{}, window)
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			inFlight <- struct{}{}
			if err := send.WriteMessage(websocket.TextMessage, frame); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	for i := 0; i < b.N; i++ {
		if _, _, err := recv.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		<-inFlight
	}
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if got := srv.Stats().MessagesRelayed; got < uint64(b.N) {
		b.Fatalf("relayed %d, want %d", got, b.N)
	}
}
