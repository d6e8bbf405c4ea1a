package redisquota_test

import (
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestLateResponseOfTheSameWindowDoesNotReseed: the first response says
// that 400 of 6000 a minute remain for 30s; the fleet's bucket is seeded
// from it and spends its cap (share·400 less its tolerance) in a second
// and a half, then holds its next token until the reset. A call sent with
// that first response's was counted by the server when it arrived (399
// left, a reset in 30s, in seconds from then, as a rate-limit middleware
// in front of the handler writes it) and answered 3s later: read when it
// arrives, its reset is 3s later than the held one, past the margin (2s
// for a minute's window), though its window is the same, and its 399 are
// the ones the fleet has spent since. Seeded anew from it, the fleet got
// another cap of the same window: 519 calls where the server takes 400,
// a fifth of them answered 429. A Transport without a store does not take
// it for a new window either (a later reset with more left, whose
// attempt was sent before the count it holds).
func TestLateResponseOfTheSameWindowDoesNotReseed(t *testing.T) {
	s, _, _ := scriptStore(t)
	q := s.Partition("latesame")
	start := time.Now()
	reset := start.Add(30 * time.Second)
	q.Learn(resilient.RateLimitInfo{Limit: 6000, Remaining: 400, Reset: reset}, time.Minute)
	granted := 0
	take := func(until time.Time) {
		for time.Now().Before(until) {
			if _, ok, _ := q.Take(time.Now()); ok {
				granted++
				continue
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	waitFor(t, "the bucket found dry", func() bool {
		take(time.Now().Add(10 * time.Millisecond))
		return redisquota.DryUntil(q) > 10*time.Second
	})
	// The late answer, 3s after the call was sent.
	take(start.Add(3 * time.Second))
	q.Learn(resilient.RateLimitInfo{Limit: 6000, Remaining: 399, Reset: reset.Add(3 * time.Second)}, time.Minute)
	take(time.Now().Add(time.Second))
	if granted > 400 {
		t.Errorf("the fleet was granted %d tokens of a window in which the server takes 400: a late response of the same window (its reset 3s later by its delay) seeded the bucket anew", granted)
	}
}
