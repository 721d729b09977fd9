package metrics

import "testing"

type fakeLinks struct {
	bad, work uint64
	bits      int
}

func (f fakeLinks) LinkProofsRefused() (uint64, uint64, int) { return f.bad, f.work, f.bits }

func TestLinkProofCollector(t *testing.T) {
	c := NewLinkProofCollector(fakeLinks{bad: 2, work: 5, bits: 20})
	lint(t, c)
	fams := gather(t, c)
	if got := value(t, fams, "rtcmesh_link_proofs_refused_total", "reason", "bad_proof"); got != 2 {
		t.Errorf("bad_proof = %v, want 2", got)
	}
	if got := value(t, fams, "rtcmesh_link_proofs_refused_total", "reason", "insufficient_work"); got != 5 {
		t.Errorf("insufficient_work = %v, want 5", got)
	}
	if got := value(t, fams, "rtcmesh_link_pow_difficulty"); got != 20 {
		t.Errorf("pow_bits = %v, want 20", got)
	}
}
