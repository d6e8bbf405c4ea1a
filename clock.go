package resilient

import (
	"sync/atomic"
	"time"
)

// clockRenewal is how long a callClock keeps an epoch: a step of the wall
// clock (or a suspended machine's resumption) shows in the times it
// returns within that much time.
const clockRenewal = time.Second

// callClock reads the time at which a call or an attempt starts. time.Now
// reads two clocks, the wall clock and the monotonic one (about 55 ns on a
// virtual machine whose clock source is kvm-clock, a tenth of what the
// chain costs a call that succeeds at once); a callClock reads the
// monotonic one only, and returns its epoch (a time.Now reading, renewed
// every clockRenewal) plus the monotonic time elapsed since. What it
// returns compares and subtracts like a time.Now reading (both carry the
// monotonic reading); its wall-clock reading is the epoch's plus the
// elapsed time, so that it misses a step of the wall clock until the next
// renewal, one second at most. Deadlines, backoffs and breaker windows run
// on the monotonic reading; only a time without one is compared with the
// wall-clock reading: what a server gives as a date (a rate-limit reset,
// Retry-After), read when it arrives and kept as its distance from then,
// and a caller's deadline made from a date rather than from time.Now. The renewal costs one time.Now and one small allocation a
// second.
//
// Inside a testing/synctest bubble, time.Since reads the bubble's fake
// clock, and an epoch read outside a bubble is renewed inside it (time runs
// backwards from it), so that every time comes from the bubble's clock. The
// zero callClock is ready to use.
type callClock struct {
	epoch atomic.Pointer[time.Time]
}

// now returns the current time.
func (c *callClock) now() time.Time {
	if e := c.epoch.Load(); e != nil {
		if d := time.Since(*e); d >= 0 && d < clockRenewal {
			return e.Add(d)
		}
	}
	t := time.Now()
	c.epoch.Store(&t)
	return t
}
