package redisquota

import (
	"strconv"
	"testing"
	"time"
)

// wrapsTo returns a number of microseconds, hundreds of years, that
// overflows a time.Duration when multiplied by time.Microsecond and wraps
// to d plus a few nanoseconds: d must be 384 modulo 1000 nanoseconds, as
// 2^64 + d must be a multiple of 1000.
func wrapsTo(d time.Duration) int64 {
	const floor = (1 << 64) / 1000 // 18446744073709551, 2^64 = 1000·floor + 616
	return floor + (int64(d)+616)/1000
}

// hostileStore returns a Store of no Redis holding one partition of id
// "id1", for apply to reach with the fleet's messages.
func hostileStore() (*Store, *part) {
	s := &Store{parts: map[string]*part{}, byID: map[string]*part{}, epoch: time.Now().Add(-time.Hour)}
	p := newPart(s, "x", "id1", s.totalField("g", 1))
	s.parts["x"], s.byID["id1"] = p, p
	return s, p
}

// TestApplyHostileOverflow checks that the fleet's messages whose times,
// hundreds of years apart, overflow a time.Duration are not believed: a
// pause, a reset's kept pause or a window of 584 years wrapped to half an
// hour, within the bounds (maxPause, maxWindow), and the member paused for
// it, or paced by it; so did a pause whose end less the time it was sent
// overflows an int64 first.
func TestApplyHostileOverflow(t *testing.T) {
	far := wrapsTo(30*time.Minute + 384)
	if time.Duration(far)*time.Microsecond != 30*time.Minute+384 {
		t.Fatalf("%d µs does not wrap to 30m: the test no longer tests an overflow", far)
	}
	f := strconv.FormatInt(far, 10)
	// A pause at the largest time sent at a time so far back that until -
	// now overflows an int64, and then wraps to 30 minutes too.
	const maxI, back = "9223372036854775807", "-9204925294581066258"
	for _, msg := range []string{
		"p id1 " + f + " 0", // a pause of 584 years
		"p id1 " + maxI + " " + back,
		"r id1 other 1 " + f + " 0 0 0", // a reset that kept a pause of 584 years
		"r id1 other 1 " + maxI + " " + back + " 0 0",
	} {
		_, p := hostileStore()
		p.s.apply(msg, time.Now())
		if pu := p.PauseUntil(); !pu.IsZero() {
			t.Errorf("after %q, the member is paused for %v, want no pause: the value is not believed", msg, time.Until(pu).Round(time.Minute))
		}
	}
	for _, msg := range []string{
		"q id1 60 " + f,             // a window of 584 years
		"r id1 other 1 0 1 60 " + f, // a reset that kept a window of 584 years
	} {
		_, p := hostileStore()
		p.s.apply(msg, time.Now())
		if l, w := p.limit.Load(), time.Duration(p.window.Load()); l != 0 || w != 0 {
			t.Errorf("after %q, the member paces by %d per %v, want no quota: the window is not believed", msg, l, w)
		}
	}
}
