// Package wallclock steps the wall clock of a time.Time, for the tests of
// resilient and its submodules that check what a step of the system's wall
// clock (NTP, a resumed virtual machine) does to times kept on the
// monotonic clock. Only tests import it, and not within a synctest
// bubble, whose time.Now has no monotonic reading.
package wallclock

import (
	"testing"
	"time"
	"unsafe"
)

// Stepped returns now, a time.Now reading, as time.Now reads the same
// instant once the system's wall clock has stepped by d, a whole number of
// seconds: its wall clock moved, its monotonic reading kept. It fails the
// test when now has no monotonic reading (a time stripped of it by Round,
// or time.Now's in a synctest bubble, which has none): there is no wall
// clock apart from it to step, and a test that skipped would pass
// unchecked. It relies on time.Time's layout (the wall seconds in bits 30
// to 62 of its first word while it holds a monotonic reading), and skips
// the test when that does not hold.
func Stepped(t testing.TB, now time.Time, d time.Duration) time.Time {
	t.Helper()
	if now == now.Round(0) {
		t.Fatal("wallclock: cannot step the wall clock of a time without a monotonic reading (a synctest bubble's time.Now has none)")
	}
	type layout struct {
		wall uint64
		ext  int64
		loc  *time.Location
	}
	stepped := now
	if unsafe.Sizeof(stepped) != unsafe.Sizeof(layout{}) {
		t.Skip("cannot step the wall clock of a time.Time")
	}
	(*layout)(unsafe.Pointer(&stepped)).wall += uint64(int64(d/time.Second)) << 30
	if stepped.Sub(now) != 0 || stepped.Round(0).Sub(now.Round(0)) != d {
		t.Skip("cannot step the wall clock of a time.Time: its layout changed")
	}
	return stepped
}
