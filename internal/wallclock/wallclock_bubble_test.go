package wallclock

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// recorder is a testing.TB whose Skip and Fatal record what they were
// told and end Stepped by a panic of their own, for a test of Stepped's
// refusals.
type recorder struct {
	testing.TB
	skipped, failed string
}

type stop struct{}

func (r *recorder) Helper()                   {}
func (r *recorder) Skip(args ...any)          { r.skipped = fmt.Sprint(args...); panic(stop{}) }
func (r *recorder) Fatal(args ...any)         { r.failed = fmt.Sprint(args...); panic(stop{}) }
func (r *recorder) Fatalf(f string, a ...any) { r.failed = fmt.Sprintf(f, a...); panic(stop{}) }

// stepped calls Stepped with r, and recovers the panic that ends it.
func (r *recorder) stepped(now time.Time, d time.Duration) (got time.Time) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(stop); !ok {
				panic(p)
			}
		}
	}()
	return Stepped(r, now, d)
}

// A time without a monotonic reading, such as time.Now's in a synctest
// bubble (which has none), has no wall clock to step apart from it: the
// test that asked is told so by a failure, not skipped, which would pass
// it in silence.
func TestSteppedNoMonotonicReadingFails(t *testing.T) {
	r := &recorder{TB: t}
	r.stepped(time.Now().Round(0), time.Hour)
	if r.failed == "" || r.skipped != "" {
		t.Errorf("Stepped of a time stripped of its monotonic reading: failed %q, skipped %q; want a failure", r.failed, r.skipped)
	}
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{TB: t}
		r.stepped(time.Now(), -time.Hour)
		if r.failed == "" || r.skipped != "" {
			t.Errorf("Stepped of a bubble's time.Now: failed %q, skipped %q; want a failure", r.failed, r.skipped)
		}
	})
}

// Stepped moves the wall clock of a time.Now reading by d, and keeps its
// monotonic reading: the two instants are one to Sub, d apart to the wall
// clock.
func TestStepped(t *testing.T) {
	now := time.Now()
	for _, d := range []time.Duration{-2 * time.Hour, time.Hour, 0} {
		s := Stepped(t, now, d)
		if s.Sub(now) != 0 || s.Round(0).Sub(now.Round(0)) != d || !s.Equal(now) {
			t.Errorf("Stepped(now, %v): Sub %v, wall Sub %v; want 0 and %v", d, s.Sub(now), s.Round(0).Sub(now.Round(0)), d)
		}
	}
}
