package memlink

import (
	"errors"
	"runtime"
	"testing"

	"github.com/rtcmesh/rtcmesh/link"
)

// BenchmarkFrame measures one 1 KiB frame through a memlink link, sender to
// consumer, with the consumer draining continuously.
func BenchmarkFrame(b *testing.B) {
	n, err := NewNetwork(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	x, _ := n.Transport("x")
	y, _ := n.Transport("y")
	x.Dial("y")
	for ev := range x.Events() {
		if ev.Type == link.LinkUp {
			break
		}
	}
	got := make(chan struct{})
	go func() {
		frames := 0
		for ev := range y.Events() {
			if ev.Type == link.Frame {
				if frames++; frames == b.N {
					close(got)
				}
			}
		}
	}()
	payload := make([]byte, 1024)
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for i := 0; i < b.N; {
		err := x.Send("y", payload)
		switch {
		case err == nil:
			i++
		case errors.Is(err, link.ErrQueueFull):
			runtime.Gosched()
		default:
			b.Fatal(err)
		}
	}
	<-got
}
