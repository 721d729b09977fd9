package gossip

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestScenarios runs the scripts in testdata/. Commands:
//
//	add a b c [flood] [threshold=N] [quiet=D] [flush=D] [batch=N] [missing=D] [retry=D] [cache-max=N] [cache-age=D]
//	      [catch-up=D] [catch-up-refs=N]
//	                              create cores (testConfig with the given changes; catch-up
//	                              is off unless catch-up sets its window)
//	link a b | link a-b b-c ...   NeighborUp on both ends of each pair
//	unlink a b                    NeighborDown on both ends; messages in flight on the link are lost
//	down a b                      NeighborDown(b) at a only
//	broadcast a [payload=x]       a broadcasts; prints a's delivery and the messages it queued
//	deliver                       deliver every queued message, FIFO, until none is left
//	deliver-one a->b              deliver the first message queued from a to b
//	drop a->b                     lose every message queued from a to b
//	inject a->b TYPE [id=m1] [hops=N] [origin=x] [payload=x] [seq=N] [time=D]
//	                              b steps a message a never sent (Graft, Prune, Gossip, IHave);
//	                              a Gossip has seq 1 and the current time unless told
//	tick D                        advance every core's clock by D; prints the messages queued
//	queue                         print the messages in flight
//	peers [a b ...]               print eager and lazy peers
//	deadline a                    print a's NextDeadline
//	stats a                       print a's Stats
//	catch-up a                    print a's catch-up counters
//	refused a                     print a's refusal counters and tracked origins
//	highwater a origin            print a's HighWater(origin)
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		net := newTestNet(t, testConfig(), 1)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			net.out.Reset()
			net.mark = len(net.queue)
			runCommand(t, net, d)
			return net.out.String()
		})
	})
}

func runCommand(t *testing.T, net *testNet, d *datadriven.TestData) {
	plain := func() []string { // arguments without a value
		var names []string
		for _, a := range d.CmdArgs {
			if len(a.Vals) == 0 {
				names = append(names, a.Key)
			}
		}
		return names
	}
	dur := func(s string) time.Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			d.Fatalf(t, "bad duration %q: %v", s, err)
		}
		return v
	}
	num := func(s string) int {
		v, err := strconv.Atoi(s)
		if err != nil {
			d.Fatalf(t, "bad number %q: %v", s, err)
		}
		return v
	}
	link := func(s string) (string, string) {
		from, to, ok := strings.Cut(s, "->")
		if !ok {
			d.Fatalf(t, "want a->b, got %q", s)
		}
		return from, to
	}
	pairs := func() [][2]string {
		names := plain()
		if len(names) == 2 && !strings.Contains(names[0], "-") {
			return [][2]string{{names[0], names[1]}}
		}
		var ps [][2]string
		for _, s := range names {
			a, b, ok := strings.Cut(s, "-")
			if !ok {
				d.Fatalf(t, "want a-b, got %q", s)
			}
			ps = append(ps, [2]string{a, b})
		}
		return ps
	}

	switch d.Cmd {
	case "add":
		saved := net.cfg
		for _, a := range d.CmdArgs {
			if len(a.Vals) == 0 {
				if a.Key == "flood" {
					net.cfg.Flood = true
				}
				continue
			}
			v := a.Vals[0]
			switch a.Key {
			case "threshold":
				net.cfg.OptimizationThreshold = num(v)
			case "quiet":
				net.cfg.OptimizationQuiet = dur(v)
			case "flush":
				net.cfg.LazyFlushInterval = dur(v)
			case "batch":
				net.cfg.LazyBatchMax = num(v)
			case "missing":
				net.cfg.MissingTimeout = dur(v)
			case "retry":
				net.cfg.GraftRetryTimeout = dur(v)
			case "cache-max":
				net.cfg.CacheMaxMessages = num(v)
			case "cache-age":
				net.cfg.CacheMaxAge = dur(v)
			case "catch-up":
				net.cfg.CatchUpWindow = dur(v)
			case "catch-up-refs":
				net.cfg.CatchUpMaxRefs = num(v)
			default:
				d.Fatalf(t, "unknown add option %q", a.Key)
			}
		}
		for _, name := range plain() {
			if name != "flood" {
				net.add(name)
			}
		}
		net.cfg = saved
	case "link":
		for _, p := range pairs() {
			net.link(p[0], p[1])
		}
	case "unlink":
		for _, p := range pairs() {
			net.unlink(p[0], p[1])
		}
	case "down":
		names := plain()
		net.core(names[0]).NeighborDown(names[1])
		net.collect(names[0])
	case "broadcast":
		payload := "hello"
		d.MaybeScanArgs(t, "payload", &payload)
		net.broadcast(plain()[0], []byte(payload))
		net.printQueue("  queued ", net.mark)
	case "deliver":
		net.deliverAll()
	case "deliver-one":
		from, to := link(plain()[0])
		if !net.deliverOne(from, to) {
			net.printf("nothing queued %s->%s\n", from, to)
		}
	case "drop":
		from, to := link(plain()[0])
		kept := net.queue[:0]
		for _, f := range net.queue {
			if f.from == from && f.to == to {
				net.printf("dropped %s\n", net.format(f))
				continue
			}
			kept = append(kept, f)
		}
		net.queue = kept
	case "inject":
		args := plain()
		from, to := link(args[0])
		m := Message{}
		switch args[1] {
		case "GOSSIP":
			m.Type = Gossip
		case "IHAVE":
			m.Type = IHave
		case "GRAFT":
			m.Type = Graft
		case "PRUNE":
			m.Type = Prune
		default:
			d.Fatalf(t, "unknown type %q", args[1])
		}
		var label, origin, payload string
		hops := 1
		d.MaybeScanArgs(t, "id", &label)
		d.MaybeScanArgs(t, "hops", &hops)
		d.MaybeScanArgs(t, "origin", &origin)
		d.MaybeScanArgs(t, "payload", &payload)
		if label != "" {
			m.ID = net.idFor(label)
		}
		m.Origin, m.Hops = origin, uint16(hops)
		if m.Type == Gossip {
			seq, at := 1, net.now.String()
			d.MaybeScanArgs(t, "seq", &seq)
			d.MaybeScanArgs(t, "time", &at)
			m.Seq, m.Time = uint64(seq), dur(at).Milliseconds()
		}
		if payload != "" {
			m.Payload = []byte(payload)
		}
		if m.Type == IHave {
			m.IHave = []Announcement{{ID: m.ID, Hops: uint16(hops)}}
			m.ID, m.Hops = MessageID{}, 0
		}
		net.step(inFlight{from: from, to: to, msg: m})
		net.printQueue("  queued ", net.mark)
	case "tick":
		net.tick(dur(plain()[0]))
		net.printf("now %v\n", net.now)
		net.printQueue("  queued ", net.mark)
	case "queue":
		net.printQueue("", 0)
	case "peers":
		net.peers(plain())
	case "deadline":
		at, ok := net.core(plain()[0]).NextDeadline()
		if ok {
			net.printf("%v\n", at)
		} else {
			net.printf("none\n")
		}
	case "stats":
		s := net.core(plain()[0]).Stats()
		net.printf("eager=%d lazy=%d cached=%d seen=%d missing=%d\n", s.EagerPeers, s.LazyPeers, s.CachedMessages, s.SeenIDs, s.PendingMissing)
		net.printf("broadcasts=%d delivered=%d duplicates=%d invalid=%d\n", s.Broadcasts, s.Delivered, s.Duplicates, s.InvalidMessages)
		var sent, recv []string
		for typ := Gossip; typ <= Prune; typ++ {
			sent = append(sent, fmt.Sprintf("%v=%d", typ, s.Sent[typ]))
			recv = append(recv, fmt.Sprintf("%v=%d", typ, s.Received[typ]))
		}
		net.printf("sent %s\nreceived %s\n", strings.Join(sent, " "), strings.Join(recv, " "))
	case "catch-up":
		s := net.core(plain()[0]).Stats()
		net.printf("history=%d bytes=%d history-delivered=%d history-duplicates=%d pulls=%d throttled=%d unsent=%d unsent-dropped=%d\n",
			s.HistoryMessages, s.HistoryBytes, s.HistoryDelivered, s.HistoryDuplicates, s.PendingPulls, s.CatchUpThrottled, s.Unsent, s.UnsentDropped)
	case "refused":
		s := net.core(plain()[0]).Stats()
		net.printf("self-origin=%d clock=%d replay=%d signature=%d reports-dropped=%d origins=%d restarts=%d\n",
			s.RefusedSelfOrigin, s.RefusedClock, s.RefusedReplay, s.RefusedSignature, s.MisbehaviourDropped, s.Origins, s.OriginRestarts)
	case "highwater":
		names := plain()
		net.printf("%d\n", net.core(names[0]).HighWater(names[1]))
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
}
