//go:build !js

package rtclink

import (
	"errors"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
)

// BenchmarkLinkSetup measures Dial to LinkUp (at the dialer) on loopback,
// one link at a time, each between two fresh transports.
func BenchmarkLinkSetup(b *testing.B) {
	h := newHub(b)
	var setups []time.Duration
	for range b.N {
		b.StopTimer()
		x, y := newNode(b, h, nil), newNode(b, h, nil)
		b.StartTimer()
		start := time.Now()
		x.Dial(y.ID())
		x.rec.waitEvent(b, link.LinkUp, y.ID())
		setups = append(setups, time.Since(start))
		b.StopTimer()
		x.Close()
		y.Close()
		b.StartTimer()
	}
	slices.Sort(setups)
	b.ReportMetric(float64(setups[len(setups)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(setups[len(setups)*9/10].Microseconds())/1000, "ms-p90")
}

const (
	benchFrameSize = 16 << 10
	benchVolume    = 8 << 20 // bytes per measurement
	// rawHighWater and rawLowWater are the raw channel's flow control, as a
	// typical pion user writes it; the Transport's buffer is the same size.
	rawHighWater = 1 << 20
	rawLowWater  = 256 << 10
)

// BenchmarkThroughput moves benchVolume bytes in 16 KiB frames over one
// link through Transport.Send and over a raw pion data channel (same
// settings, bufferedAmount flow control, OnMessage), alternately, and
// reports both rates and their ratio.
func BenchmarkThroughput(b *testing.B) {
	h := newHub(b)
	// Plain transports with a counting consumer: a recorder would cost the
	// receiver more than the link does.
	mk := func() (*Transport, *atomic.Int64, chan struct{}) {
		id, err := identity.GenerateKey()
		if err != nil {
			b.Fatal(err)
		}
		tr, err := New(testConfig(id, hubSignaler{h: h, self: id.ID()}))
		if err != nil {
			b.Fatal(err)
		}
		h.add(tr.ID(), tr)
		b.Cleanup(func() { tr.Close() })
		var received atomic.Int64
		up := make(chan struct{}, 1)
		go func() {
			for ev := range tr.Events() {
				switch ev.Type {
				case link.LinkUp:
					up <- struct{}{}
				case link.Frame:
					received.Add(int64(len(ev.Data)))
				}
			}
		}()
		return tr, &received, up
	}
	sender, _, senderUp := mk()
	receiver, received, receiverUp := mk()
	sender.Dial(receiver.ID())
	<-senderUp
	<-receiverUp
	raw := newRawPair(b)
	payload := make([]byte, benchFrameSize)
	n := benchVolume / benchFrameSize

	var tTransport, tRaw time.Duration
	for round := range b.N {
		transfer := func() time.Duration {
			target := received.Load() + int64(n*len(payload))
			start := time.Now()
			for i := 0; i < n; {
				err := sender.Send(receiver.ID(), payload)
				switch {
				case err == nil:
					i++
				case errors.Is(err, link.ErrQueueFull):
					time.Sleep(100 * time.Microsecond)
				default:
					b.Fatal(err)
				}
			}
			deadline := time.Now().Add(waitLimit)
			for received.Load() < target {
				if time.Now().After(deadline) {
					b.Fatal("transport transfer stalled")
				}
				time.Sleep(100 * time.Microsecond)
			}
			return time.Since(start)
		}
		// Alternate the order so neither side always runs second.
		if round%2 == 0 {
			tTransport += transfer()
			tRaw += raw.transfer(b, payload, n)
		} else {
			tRaw += raw.transfer(b, payload, n)
			tTransport += transfer()
		}
	}
	rounds := float64(b.N)
	mbTransport := benchVolume / tTransport.Seconds() * rounds / (1 << 20)
	mbRaw := benchVolume / tRaw.Seconds() * rounds / (1 << 20)
	b.ReportMetric(mbTransport, "MiB/s-transport")
	b.ReportMetric(mbRaw, "MiB/s-raw")
	b.ReportMetric(mbTransport/mbRaw, "ratio")
}

// rawPair is two PeerConnections with one data channel, used directly.
type rawPair struct {
	dc       *webrtc.DataChannel
	received atomic.Int64
	arrived  chan struct{} // signalled on every message
	low      chan struct{}
}

func newRawPair(b *testing.B) *rawPair {
	se := loopbackSettings()
	api := webrtc.NewAPI(webrtc.WithSettingEngine(*se),
		webrtc.WithMediaEngine(&webrtc.MediaEngine{}),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	offerer, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	answerer, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = offerer.GracefulClose()
		_ = answerer.GracefulClose()
	})
	p := &rawPair{arrived: make(chan struct{}, 1), low: make(chan struct{}, 1)}
	opened := make(chan struct{})
	answerer.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			p.received.Add(int64(len(m.Data)))
			select {
			case p.arrived <- struct{}{}:
			default:
			}
		})
	})
	p.dc, err = offerer.CreateDataChannel("raw", nil)
	if err != nil {
		b.Fatal(err)
	}
	p.dc.OnOpen(func() { close(opened) })
	p.dc.SetBufferedAmountLowThreshold(rawLowWater)
	p.dc.OnBufferedAmountLow(func() {
		select {
		case p.low <- struct{}{}:
		default:
		}
	})
	// Non-trickle exchange: wait for gathering, then swap descriptions.
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		b.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		b.Fatal(err)
	}
	<-gathered
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		b.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		b.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		b.Fatal(err)
	}
	<-gathered
	if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
		b.Fatal(err)
	}
	select {
	case <-opened:
	case <-time.After(waitLimit):
		b.Fatal("raw data channel did not open")
	}
	return p
}

func (p *rawPair) transfer(b *testing.B, payload []byte, n int) time.Duration {
	target := p.received.Load() + int64(n*len(payload))
	start := time.Now()
	for i := 0; i < n; i++ {
		for p.dc.BufferedAmount() > rawHighWater {
			<-p.low
		}
		if err := p.dc.Send(payload); err != nil {
			b.Fatal(err)
		}
	}
	for p.received.Load() < target {
		select {
		case <-p.arrived:
		case <-time.After(waitLimit):
			b.Fatal("raw transfer stalled")
		}
	}
	return time.Since(start)
}

// BenchmarkPerLinkCost opens 100 links (one node to 100 others) and reports
// goroutines and heap per link, counting both ends, plus the time to bring
// all 100 up concurrently.
func BenchmarkPerLinkCost(b *testing.B) {
	const links = 100
	for range b.N {
		b.StopTimer()
		h := newHub(b)
		center := newNode(b, h, nil)
		leaves := make([]*node, links)
		for i := range leaves {
			leaves[i] = newNode(b, h, nil)
		}
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		b.StartTimer()
		start := time.Now()
		for _, l := range leaves {
			center.Dial(l.ID())
		}
		center.rec.waitUntil(b, "all links up", func(evs []link.Event) bool {
			return count(evs, link.LinkUp, "") == links
		})
		elapsed := time.Since(start)
		b.StopTimer()
		for _, l := range leaves {
			l.rec.waitEvent(b, link.LinkUp, center.ID())
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		g1 := runtime.NumGoroutine()
		b.ReportMetric(float64(g1-g0)/links, "goroutines/link")
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/links/1024, "KiB-heap/link")
		b.ReportMetric(elapsed.Seconds()*1000, "ms-100-links-up")
		center.Close()
		for _, l := range leaves {
			l.Close()
		}
		h.stop()
		b.StartTimer()
	}
}
