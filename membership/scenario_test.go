package membership

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestScenarios runs the scripts in testdata/. Regenerate the expected output with
//
//	go test ./membership -run TestScenarios -rewrite
//
// and read the diff: the golden files are the protocol's specification by example.
//
// Commands (names are node IDs; flags are bare words):
//
//	config active=3 passive=6 arwl=6 prwl=3 ka=3 kp=4 shuffle-ttl=6 shuffle=1h timeout=3s backoff=1s seed=1
//	config defences=off|on evictions=2 protected=2 protect-after=2s from-peer=8 merge=8
//	config sampled=off|on               SampledPassive (on in the LAN defaults); off keeps
//	                                    the paper's eviction of what a shuffle sent away
//	                                    (defences: Config.DisableDefences, or the LAN defaults)
//	add n1 n2 ... [contacts=(n1,n2)]   create nodes (re-create a dead one, fresh)
//	join n2 [via=n1]                    Join(via), or Join("") through the contacts
//	send n1 n2 NEIGHBOR high            n2.Step(n1, msg) right now; fields as traces print them
//	deliver | stabilise [quiet]         deliver queued messages until quiet
//	tick 10s [quiet]                    advance time, firing timers, delivering messages
//	shuffle n1                          start a shuffle round at n1 now
//	passive n1 a b c                    seed n1's passive view (setup only; no reaction)
//	link n1 n2 [low]                    n1 asks n2 to be its neighbour (NEIGHBOR, high by
//	                                    default) as its repair would, then delivers
//	kill n3 [silent]                    stop n3; unless silent its neighbours get PeerDown
//	mute n3                             n3 stays up but loses every message sent to it
//	peerdown n1 n3                      n1.PeerDown(n3)
//	leave n2                            n2.Leave()
//	views [n1 ...]                      sorted views of the named (default: all live) nodes
//	check                               invariants over the live nodes
//	stats n1                            counters
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		cfg := DefaultLANConfig()
		cfg.ShuffleInterval = time.Hour // shuffles only when a script asks for them
		net := newNetwork(1, cfg)
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			return runCommand(t, net, td)
		})
	})
}

// words returns the directive's arguments as written: bare keys, key=value, key=a,b.
func words(td *datadriven.TestData) []string {
	out := make([]string, 0, len(td.CmdArgs))
	for _, a := range td.CmdArgs {
		if len(a.Vals) == 0 {
			out = append(out, a.Key)
		} else {
			out = append(out, a.Key+"="+strings.Join(a.Vals, ","))
		}
	}
	return out
}

func runCommand(t *testing.T, net *network, td *datadriven.TestData) string {
	var b strings.Builder
	net.trace = &b
	defer func() { net.trace = nil }()
	args := words(td)
	var names []string // bare words
	named := map[string]string{}
	flags := map[string]bool{}
	for _, w := range args {
		if k, v, ok := strings.Cut(w, "="); ok {
			named[k] = v
		} else {
			names = append(names, w)
			flags[w] = true
		}
	}
	quiet := flags["quiet"]
	if quiet {
		net.trace = nil
		names = removeWord(names, "quiet")
	}
	fail := func(err error) string {
		if err == nil {
			return b.String()
		}
		return b.String() + "error: " + err.Error() + "\n"
	}
	const limit = 1_000_000
	switch td.Cmd {
	case "config":
		for k, v := range named {
			if err := setConfig(&net.cfg, &net.seed, k, v); err != nil {
				td.Fatalf(t, "%v", err)
			}
		}
		return "ok\n"
	case "add":
		var contacts []string
		if v, ok := named["contacts"]; ok && v != "" {
			contacts = strings.Split(v, ",")
		}
		for _, name := range names {
			if err := net.add(name, contacts); err != nil {
				return fail(err)
			}
		}
	case "join":
		if len(names) != 1 {
			td.Fatalf(t, "join needs one node")
		}
		nd, err := net.live(names[0])
		if err != nil {
			return fail(err)
		}
		nd.core.Join(named["via"])
		net.collect(names[0])
	case "send":
		if len(names) < 3 {
			td.Fatalf(t, "send needs: from to TYPE [fields]")
		}
		from, to := names[0], names[1]
		rest := args[2:]
		rest = removeWord(rest, "quiet")
		msg, err := parseMsg(rest)
		if err != nil {
			td.Fatalf(t, "%v", err)
		}
		nd, err := net.live(to)
		if err != nil {
			return fail(err)
		}
		net.logf("%s -> %s %s", from, to, formatMsg(msg))
		if err := nd.core.Step(from, msg); err != nil {
			net.logf("  %s: error: %v", to, err)
		}
		net.collect(to)
	case "deliver", "stabilise":
		if !net.deliverAll(limit) {
			return fail(fmt.Errorf("network not quiet after %d messages", limit))
		}
	case "tick":
		if len(names) != 1 {
			td.Fatalf(t, "tick needs a duration")
		}
		d, err := time.ParseDuration(names[0])
		if err != nil {
			td.Fatalf(t, "%v", err)
		}
		if !net.advance(d, limit) {
			return fail(fmt.Errorf("network not quiet after %d messages", limit))
		}
		net.logf("now %v", net.now)
		if quiet {
			return fmt.Sprintf("now %v\n", net.now)
		}
	case "shuffle":
		for _, name := range names {
			nd, err := net.live(name)
			if err != nil {
				return fail(err)
			}
			nd.core.shuffle()
			net.collect(name)
		}
	case "passive":
		nd, err := net.live(names[0])
		if err != nil {
			return fail(err)
		}
		for _, p := range names[1:] {
			nd.core.addPassive(p)
		}
		return net.views(names[:1])
	case "link":
		nd, err := net.live(names[0])
		if err != nil {
			return fail(err)
		}
		nd.core.joined = true
		nd.core.askNeighbor(names[1], !flags["low"])
		nd.core.updateDue()
		net.collect(names[0])
		if !net.deliverAll(limit) {
			return fail(fmt.Errorf("network not quiet after %d messages", limit))
		}
	case "kill":
		if err := net.kill(names[0], flags["silent"]); err != nil {
			return fail(err)
		}
	case "mute":
		nd, err := net.live(names[0])
		if err != nil {
			return fail(err)
		}
		nd.mute = true
	case "peerdown":
		nd, err := net.live(names[0])
		if err != nil {
			return fail(err)
		}
		nd.core.PeerDown(names[1])
		net.collect(names[0])
	case "leave":
		nd, err := net.live(names[0])
		if err != nil {
			return fail(err)
		}
		nd.core.Leave()
		net.collect(names[0])
	case "views":
		return net.views(names)
	case "check":
		problems, summary := net.check()
		if len(problems) == 0 {
			return "ok: " + summary + "\n"
		}
		return "FAIL: " + summary + "\n" + strings.Join(problems, "\n") + "\n"
	case "stats":
		nd, err := net.live(names[0])
		if err != nil {
			return fail(err)
		}
		return formatStats(nd.core.Stats())
	default:
		td.Fatalf(t, "unknown command %q", td.Cmd)
	}
	if b.Len() == 0 {
		return "ok\n"
	}
	return b.String()
}

func removeWord(ws []string, w string) []string {
	out := ws[:0:0]
	for _, x := range ws {
		if x != w {
			out = append(out, x)
		}
	}
	return out
}

func setConfig(cfg *Config, seed *uint64, k, v string) error {
	atoi := func() (int, error) { return strconv.Atoi(v) }
	dur := func() (time.Duration, error) { return time.ParseDuration(v) }
	var err error
	var i int
	var d time.Duration
	switch k {
	case "active":
		i, err = atoi()
		cfg.ActiveSize = i
	case "passive":
		i, err = atoi()
		cfg.PassiveSize = i
	case "arwl":
		i, err = atoi()
		cfg.ARWL = uint8(i)
	case "prwl":
		i, err = atoi()
		cfg.PRWL = uint8(i)
	case "ka":
		i, err = atoi()
		cfg.ShuffleActive = i
	case "kp":
		i, err = atoi()
		cfg.ShufflePassive = i
	case "shuffle-ttl":
		i, err = atoi()
		cfg.ShuffleTTL = uint8(i)
	case "shuffle":
		d, err = dur()
		cfg.ShuffleInterval = d
	case "timeout":
		d, err = dur()
		cfg.NeighborTimeout = d
	case "backoff":
		d, err = dur()
		cfg.RejoinBackoff = d
	case "seed":
		i, err = atoi()
		*seed = uint64(i)
	case "defences":
		switch v {
		case "off":
			cfg.DisableDefences()
		case "on":
			d := DefaultLANConfig()
			cfg.ShuffleReplyTimeout, cfg.MaxPendingShuffles = d.ShuffleReplyTimeout, d.MaxPendingShuffles
			cfg.ShuffleFromNeighborsOnly, cfg.MaxShuffleMerge, cfg.MaxPassiveFromPeer = d.ShuffleFromNeighborsOnly, d.MaxShuffleMerge, d.MaxPassiveFromPeer
			cfg.MaxForcedEvictions, cfg.ProtectedNeighbors, cfg.ProtectAfter = d.MaxForcedEvictions, d.ProtectedNeighbors, d.ProtectAfter
			cfg.PeerMessageRate, cfg.PeerMessageBurst, cfg.MaxRateEntries = d.PeerMessageRate, d.PeerMessageBurst, d.MaxRateEntries
			cfg.StalledRoundsBeforeContacts = d.StalledRoundsBeforeContacts
			cfg.SampledPassive, cfg.OpportunisticRepair = d.SampledPassive, d.OpportunisticRepair
		default:
			err = fmt.Errorf("want on or off")
		}
	case "evictions":
		i, err = atoi()
		cfg.MaxForcedEvictions = i
	case "protected":
		i, err = atoi()
		cfg.ProtectedNeighbors = i
	case "protect-after":
		d, err = dur()
		cfg.ProtectAfter = d
	case "from-peer":
		i, err = atoi()
		cfg.MaxPassiveFromPeer = i
	case "merge":
		i, err = atoi()
		cfg.MaxShuffleMerge = i
	case "sampled":
		switch v {
		case "off":
			cfg.SampledPassive = false
		case "on":
			cfg.SampledPassive = true
		default:
			err = fmt.Errorf("want on or off")
		}
	default:
		return fmt.Errorf("unknown config key %q", k)
	}
	if err != nil {
		return fmt.Errorf("config %s=%s: %w", k, v, err)
	}
	return nil
}

func formatStats(s Stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "active=%d passive=%d peer-downs=%d rejoins=%d invalid=%d\n",
		s.ActiveSize, s.PassiveSize, s.PeerDowns, s.Rejoins, s.InvalidMessages)
	for _, dir := range []struct {
		name   string
		counts [ShuffleReply + 1]uint64
	}{{"sent", s.MessagesSent}, {"received", s.MessagesReceived}} {
		b.WriteString(dir.name + ":")
		for t := Join; t <= ShuffleReply; t++ {
			if dir.counts[t] > 0 {
				fmt.Fprintf(&b, " %v=%d", t, dir.counts[t])
			}
		}
		b.WriteString("\n")
	}
	// The defences' counters, only when one moved (older scripts predate them).
	var d strings.Builder
	for r := RefusedUnsolicitedReply; int(r) < len(s.Refused); r++ {
		if s.Refused[r] > 0 {
			fmt.Fprintf(&d, " refused-%v=%d", r, s.Refused[r])
		}
	}
	for _, f := range []struct {
		name string
		v    uint64
	}{{"forced-evictions", s.ForcedEvictions}, {"evictions-refused", s.EvictionsRefused},
		{"passive-capped", s.PassiveCapped}, {"passive-not-sampled", s.PassiveNotSampled},
		{"shuffle-entries-dropped", s.ShuffleEntriesDropped},
		{"repair-stalls", s.RepairStalls}, {"contact-requests", s.ContactRequests}} {
		if f.v > 0 {
			fmt.Fprintf(&d, " %s=%d", f.name, f.v)
		}
	}
	if d.Len() > 0 {
		b.WriteString("defences:" + d.String() + "\n")
	}
	return b.String()
}
