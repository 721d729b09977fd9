package defaults

import (
	"testing"
	"time"
)

func TestField(t *testing.T) {
	var f Filler
	zero, set, negative := 0, 7, -3
	var d, nd time.Duration = 0, -time.Second
	Field(&f, "Zero", &zero, 5)
	Field(&f, "Set", &set, 5)
	Field(&f, "Negative", &negative, 5)
	Field(&f, "D", &d, time.Minute)
	Field(&f, "ND", &nd, time.Minute)
	if zero != 5 || set != 7 || negative != -3 || d != time.Minute || nd != -time.Second {
		t.Errorf("filled: %d %d %d %v %v", zero, set, negative, d, nd)
	}
	errs := f.Errs()
	if len(errs) != 2 || errs[0].Error() != "Negative is -3, must not be negative" || errs[1].Error() != "ND is -1s, must not be negative" {
		t.Errorf("errors: %v", errs)
	}
}
