// Package defaults fills the zero fields of a Config with their defaults and refuses negative
// ones, collecting every problem so that the caller reports them all at once. The signaling
// client and server share it so their Configs behave alike.
package defaults

import "fmt"

// Filler collects the problems found while filling fields.
type Filler struct{ errs []error }

// Field sets *v to def when it is zero and records an error when it is negative.
func Field[T ~int | ~int64](f *Filler, name string, v *T, def T) {
	switch {
	case *v == 0:
		*v = def
	case *v < 0:
		f.errs = append(f.errs, fmt.Errorf("%s is %v, must not be negative", name, *v))
	}
}

// Errs returns the problems found so far.
func (f *Filler) Errs() []error { return f.errs }
