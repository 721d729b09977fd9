package scoring

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func newScorer(t *testing.T, cfg Config) *Scorer {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// penalties returns how many offences o a peer with the given first-delivery credit takes
// before it is refused, all at one instant.
func penalties(t *testing.T, o Offence, credit int) int {
	s := newScorer(t, DefaultConfig())
	now := time.Hour
	for range credit {
		s.Credit(now, "p")
	}
	for n := 1; n < 1000; n++ {
		if s.Penalise(now, "p", o) {
			return n
		}
	}
	t.Fatalf("%v: never refused", o)
	return 0
}

// TestIHaveSpamCostsNothing: by default, announcements beyond the per-peer cap are counted
// (for metrics) but never lower a score.
func TestIHaveSpamCostsNothing(t *testing.T) {
	s := newScorer(t, DefaultConfig())
	now := time.Hour
	for range 1000 {
		if s.Penalise(now, "p", IHaveSpam) {
			t.Fatal("refused for IHave spam")
		}
	}
	if got := s.Score(now, "p"); got != 0 {
		t.Fatalf("score %v after IHave spam, want 0", got)
	}
	if st := s.Stats(now); st.Offences[IHaveSpam] != 1000 {
		t.Fatalf("IHave spam counted %d times, want 1000", st.Offences[IHaveSpam])
	}
}

// TestThresholds checks the numbers DefaultConfig documents.
func TestThresholds(t *testing.T) {
	for _, c := range []struct {
		o             Offence
		fresh, credit int
	}{
		{InvalidSignature, 3, 3},
		{Flood, 11, 13},
		{GraftSpam, 11, 13},
		{BrokenPromise, 11, 13},
		{MembershipSpam, 11, 13},
		{StrangerWalk, 21, 25},
		{UnansweredPull, 3, 3},
		// A silent neighbour with no credit goes at once; one with full credit (an honest
		// neighbour whose link stalled) survives one report.
		{SilentNeighbor, 1, 2},
	} {
		if got := penalties(t, c.o, 0); got != c.fresh {
			t.Errorf("%v: fresh peer refused after %d, want %d", c.o, got, c.fresh)
		}
		if got := penalties(t, c.o, 1000); got != c.credit {
			t.Errorf("%v: credited peer refused after %d, want %d", c.o, got, c.credit)
		}
	}
}

// TestRefusedForCoolingPeriod: a peer below the threshold is listed once by Disconnects,
// refused until CoolingPeriod has passed, ignored meanwhile, and starts clean afterwards.
func TestRefusedForCoolingPeriod(t *testing.T) {
	cfg := DefaultConfig()
	s := newScorer(t, cfg)
	now := time.Hour
	for range 3 {
		s.Penalise(now, "bad", InvalidSignature)
	}
	if d := s.Disconnects(); len(d) != 1 || d[0] != "bad" {
		t.Fatalf("Disconnects = %v", d)
	}
	if d := s.Disconnects(); len(d) != 0 {
		t.Fatalf("Disconnects again = %v", d)
	}
	if !s.Refused(now+cfg.CoolingPeriod-time.Millisecond, "bad") {
		t.Fatal("not refused within the cooling period")
	}
	if s.Penalise(now+time.Second, "bad", InvalidSignature) {
		t.Fatal("a refused peer was refused again")
	}
	if st := s.Stats(now + time.Second); st.Refused != 1 || st.Disconnects != 1 {
		t.Fatalf("stats %+v", st)
	}
	end := now + cfg.CoolingPeriod
	if s.Refused(end, "bad") {
		t.Fatal("still refused after the cooling period")
	}
	if v := s.Score(end, "bad"); v != 0 {
		t.Fatalf("score after cooling %v, want a clean 0", v)
	}
	if st := s.Stats(end); st.Refused != 0 {
		t.Fatalf("stats after cooling %+v", st)
	}
}

// TestDecay: offences spread out in time are forgiven; the same number at once is not.
func TestDecay(t *testing.T) {
	s := newScorer(t, DefaultConfig())
	now := time.Hour
	for range 30 {
		if s.Penalise(now, "slow", BrokenPromise) {
			t.Fatal("one broken promise a minute refused a peer")
		}
		now += time.Minute
	}
	// After 10 minutes of quiet the counter has decayed to nothing and the record is gone.
	st := s.Stats(now + 10*time.Minute)
	if st.Peers != 0 || st.Offences[BrokenPromise] != 30 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDecayIsLazyAndDeterministic: the score depends on the times of the events only, not on
// when or how often it is read.
func TestDecayIsLazyAndDeterministic(t *testing.T) {
	events := func(s *Scorer, read bool) float64 {
		now := time.Hour
		for i := range 50 {
			now += time.Duration(i%7) * 300 * time.Millisecond
			if i%3 == 0 {
				s.Credit(now, "p")
			} else {
				s.Penalise(now, "p", GraftSpam)
			}
			if read {
				s.Score(now+time.Duration(i)*time.Millisecond, "p")
				s.Stats(now)
			}
		}
		return s.Score(now+time.Minute, "p")
	}
	a, b := events(newScorer(t, DefaultConfig()), false), events(newScorer(t, DefaultConfig()), true)
	if a != b {
		t.Fatalf("score %v without reads, %v with", a, b)
	}
}

// TestFirstDeliveriesCapped: credit stops at FirstDeliveryCap and decays.
func TestFirstDeliveriesCapped(t *testing.T) {
	cfg := DefaultConfig()
	s := newScorer(t, cfg)
	now := time.Hour
	for range 10000 {
		s.Credit(now, "good")
	}
	if v := s.Score(now, "good"); v != cfg.FirstDeliveryCap*cfg.FirstDeliveryWeight {
		t.Fatalf("score %v, want the cap %v", v, cfg.FirstDeliveryCap)
	}
	later := s.Score(now+70*time.Second, "good")
	if math.Abs(later-cfg.FirstDeliveryCap*math.Pow(cfg.FirstDeliveryDecay, 70)) > 1e-9 {
		t.Fatalf("score after 70 s %v", later)
	}
}

// TestAttackManyIdentities: Sybils that each misbehave a little cannot grow the tables past
// their bounds, and the refusals in force stay bounded too.
func TestAttackManyIdentities(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxPeers, cfg.MaxRefused = 100, 10
	s := newScorer(t, cfg)
	now := time.Hour
	for i := range 10000 {
		p := fmt.Sprintf("sybil%d", i)
		s.Penalise(now, p, Flood)
		if i%100 == 0 {
			for range 20 {
				s.Penalise(now, p, Flood)
			}
		}
		if len(s.peers) > cfg.MaxPeers || len(s.refused) > cfg.MaxRefused {
			t.Fatalf("after %d peers: %d records, %d refused", i+1, len(s.peers), len(s.refused))
		}
	}
	st := s.Stats(now)
	if st.Disconnects != 100 || st.Refused != 10 || st.RefusalsEvicted != 90 || st.Evicted == 0 {
		t.Fatalf("stats %+v", st)
	}
	if st.MinScore != -1 || st.Negative != st.Peers {
		t.Fatalf("stats %+v", st)
	}
}

// TestDisabled: a disabled Scorer records nothing and refuses no one.
func TestDisabled(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DisableDefences()
	s := newScorer(t, cfg)
	for range 100 {
		if s.Penalise(time.Hour, "p", InvalidSignature) {
			t.Fatal("refused with scoring off")
		}
	}
	if st := s.Stats(time.Hour); st.Peers != 0 || st.Disconnects != 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := New(Config{}); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"DecayInterval":       func(c *Config) { c.DecayInterval = 0 },
		"DecayToZero":         func(c *Config) { c.DecayToZero = 1 },
		"FirstDeliveryWeight": func(c *Config) { c.FirstDeliveryWeight = -1 },
		"FirstDeliveryCap":    func(c *Config) { c.FirstDeliveryCap = math.Inf(1) },
		"FirstDeliveryDecay":  func(c *Config) { c.FirstDeliveryDecay = 1 },
		"Weight[flood]":       func(c *Config) { c.Weight[Flood] = 1 },
		"Decay[graft_spam]":   func(c *Config) { c.Decay[GraftSpam] = math.NaN() },
		"DisconnectThreshold": func(c *Config) { c.DisconnectThreshold = 0 },
		"CoolingPeriod":       func(c *Config) { c.CoolingPeriod = 0 },
		"MaxPeers":            func(c *Config) { c.MaxPeers = 0 },
		"MaxRefused":          func(c *Config) { c.MaxRefused = -1 },
		"HelloCredit":         func(c *Config) { c.HelloCredit = -1 },
	} {
		cfg := DefaultConfig()
		mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v", name, err)
		}
	}
	if cfg := DefaultConfig(); cfg.Validate() != nil {
		t.Fatal(cfg.Validate())
	}
}

// TestRank: Rank is the score at the latest time any call gave, what membership asks without
// a clock; a refused peer ranks below everyone, and with scoring off everyone ranks 0.
func TestRank(t *testing.T) {
	s := newScorer(t, DefaultConfig())
	s.Credit(time.Second, "good")
	s.Penalise(time.Second, "meh", MembershipSpam)
	for range 3 {
		s.Penalise(time.Second, "bad", InvalidSignature)
	}
	if s.Rank("good") != 1 || s.Rank("meh") != -1 || !math.IsInf(s.Rank("bad"), -1) || s.Rank("nobody") != 0 {
		t.Errorf("ranks good %v meh %v bad %v nobody %v; want 1, -1, -Inf, 0", s.Rank("good"), s.Rank("meh"), s.Rank("bad"), s.Rank("nobody"))
	}
	// Time moves on through another call: the ranks decay with it.
	s.Refused(time.Second+100*time.Second, "other")
	if got, want := s.Rank("good"), s.Score(101*time.Second, "good"); got != want || got >= 1 {
		t.Errorf("rank after 100 s %v, score %v: want equal, decayed", got, want)
	}
	off := DefaultConfig()
	off.DisableDefences()
	s = newScorer(t, off)
	s.Credit(time.Second, "good")
	if s.Rank("good") != 0 {
		t.Error("scoring off ranks a peer")
	}
}

// TestGreeted: a hello counts as HelloCredit first deliveries, within their cap and decay; a
// refused peer earns nothing, and HelloCredit 0 turns the credit off.
func TestGreeted(t *testing.T) {
	s := newScorer(t, DefaultConfig())
	now := time.Hour
	s.Greeted(now, "p")
	if got := s.Score(now, "p"); got != 0.5 {
		t.Fatalf("score after a hello %v, want 0.5 (half a first delivery)", got)
	}
	if got := s.Rank("p"); got <= 0 {
		t.Fatalf("rank after a hello %v, want above 0 (evicted after unranked peers)", got)
	}
	for range 200 {
		s.Greeted(now, "p")
	}
	if got := s.Score(now, "p"); got != 50 {
		t.Fatalf("score after 201 hellos %v, want the first-delivery cap 50", got)
	}
	if got := s.Score(now+70*time.Second, "p"); got > 26 || got < 24 {
		t.Fatalf("score 70 s later %v, want about half (first deliveries' decay)", got)
	}
	if st := s.Stats(now); st.Greetings != 201 || st.FirstDeliveries != 0 {
		t.Fatalf("stats: %d greetings, %d first deliveries", st.Greetings, st.FirstDeliveries)
	}
	// A silent neighbour with no credit is refused at once, and greets in vain afterwards.
	if !s.Penalise(now, "z", SilentNeighbor) {
		t.Fatal("a silent neighbour with no credit was not refused")
	}
	s.Greeted(now, "z")
	if got := s.Score(now, "z"); got != 0 {
		t.Fatalf("refused peer's score after a hello %v, want 0", got)
	}
	cfg := DefaultConfig()
	cfg.HelloCredit = 0
	s = newScorer(t, cfg)
	s.Greeted(now, "p")
	if got := s.Score(now, "p"); got != 0 {
		t.Fatalf("score with HelloCredit 0: %v", got)
	}
}
