package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// smallParams is a run small enough for a test: 12 nodes, 8 broadcasts (2 of warm-up).
func smallParams(system string) params {
	return params{System: system, N: 12, Seed: 7, Broadcasts: 8, Warmup: 2, Interval: 50 * time.Millisecond,
		Size: 256, Latency: 5 * time.Millisecond, Settle: 200 * time.Millisecond, Idle: 500 * time.Millisecond,
		Drain: 20 * time.Second, Form: time.Minute, Degree: 4, OptThreshold: -1, LazyFlush: -1}
}

// TestRunsMeasureBothSystems runs both sides on a small network and checks that the figures
// describe what happened: every node delivered every measured broadcast, at least one payload
// copy arrived per delivery, bytes were sent, and hops came out of both (gossipsub's from the
// rebuilt delivery tree).
func TestRunsMeasureBothSystems(t *testing.T) {
	for _, run := range []struct {
		name string
		fn   func(params) (result, error)
	}{{"rtcmesh", runRTCMesh}, {"gossipsub", runGossipsub}} {
		t.Run(run.name, func(t *testing.T) {
			p := smallParams(run.name)
			r, err := run.fn(p)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", summary(r))
			if r.Reliability != 1 {
				t.Errorf("reliability %v, want 1", r.Reliability)
			}
			if r.Measured != p.Broadcasts-p.Warmup {
				t.Errorf("measured %d broadcasts, want %d", r.Measured, p.Broadcasts-p.Warmup)
			}
			if r.Copies < 1 {
				t.Errorf("%.3f payload copies per node, want at least 1: every delivery needs one", r.Copies)
			}
			// A payload of p.Size bytes crossed at least N-1 links per broadcast.
			if min := float64(p.Size * (p.N - 1)); r.Bytes < min {
				t.Errorf("%.0f bytes per broadcast, want at least %.0f", r.Bytes, min)
			}
			if r.HopsMean < 1 || r.HopsLast < 1 {
				t.Errorf("hops mean %.2f, last %.2f: want known and at least 1", r.HopsMean, r.HopsLast)
			}
			// Every delivery crossed at least one link of p.Latency.
			if r.P50 < float64(p.Latency)/float64(time.Millisecond) || r.Max < r.P99 || r.P99 < r.P50 {
				t.Errorf("latencies p50 %.1f, p99 %.1f, max %.1f ms are not ordered or below one link", r.P50, r.P99, r.Max)
			}
			if r.CPUPerBcast <= 0 {
				t.Errorf("CPU per broadcast %.3f ms, want positive", r.CPUPerBcast)
			}
		})
	}
}

// TestTrackerFigures checks the tracker's arithmetic on a hand-made run of 3 nodes and two
// broadcasts, the first a warm-up.
func TestTrackerFigures(t *testing.T) {
	tr := newTracker(3, 2, 1)
	at := time.Unix(1000, 0)
	tr.sending(0, 0, at)
	tr.delivered(0, 1, 1, at.Add(time.Second)) // warm-up: left out
	tr.sending(1, 2, at)
	tr.delivered(1, 2, 0, at)                          // the origin: ignored
	tr.delivered(1, 0, 1, at.Add(20*time.Millisecond)) // first delivery at node 0
	tr.delivered(1, 0, 5, at.Add(time.Second))         // a second delivery: ignored
	select {
	case <-tr.done:
		t.Fatal("done before node 1 delivered the measured broadcast")
	default:
	}
	tr.delivered(1, 1, 3, at.Add(600*time.Millisecond))
	select {
	case <-tr.done:
	default:
		t.Fatal("not done once every node delivered the measured broadcast")
	}
	var r result
	tr.fill(&r)
	if r.Measured != 1 || r.Reliability != 1 || r.P50 != 20 || r.Max != 600 || r.Late500 != 1 || r.HopsMean != 2 || r.HopsLast != 3 {
		t.Errorf("figures %+v, want 1 measured, reliability 1, p50 20 ms, max 600 ms, 1 late, hops 2 mean and 3 last", r)
	}
}

// TestReportHasRatios checks the markdown table: one column per N, both systems and a ratio.
func TestReportHasRatios(t *testing.T) {
	o, _, err := parse([]string{"-n", "100"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	runs := []result{
		{System: "gossipsub", N: 100, Reliability: 1, Copies: 7, P50: 32, HopsMean: -1, HopsLast: -1},
		{System: "rtcmesh", N: 100, Reliability: 1, Copies: 1, P50: 64, HopsMean: 6, HopsLast: 10},
	}
	var out bytes.Buffer
	printReport(&out, o, []int{100}, []string{"gossipsub", "rtcmesh"}, runs)
	for _, want := range []string{"| N = 100 gossipsub / rtcmesh |", "| latency p50 | 32.0 ms / 64.0 ms (2.00×) |", "| hops mean | n/a / 6.0 |", "| payload copies per node | 7.000 / 1.000 (0.14×) |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
