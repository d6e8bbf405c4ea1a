package redisquota_test

import (
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/internal/wallclock"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestWallClockStep checks that a step of the wall clock (NTP, a resumed
// virtual machine, an operator setting the date) moves none of a member's
// times, which run on the monotonic clock, as the Transport's do. Kept as
// Unix nanoseconds, a pause that ended a second ago came back for an hour
// after the wall clock stepped an hour back (PauseUntil an hour ahead: the
// Transport refused every call to the host as longer than the longest wait
// a server may ask for), the tokens of the lease held were all an hour
// away, and a pause an hour long ended at once after a step forward.
func TestWallClockStep(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	defer s.Close()

	t.Run("pause over, stepped back", func(t *testing.T) {
		q := s.Partition("https://back.example reads")
		start := time.Now()
		q.Pause(start.Add(time.Second))
		waitFor(t, "the state read", func() bool { return redisquota.StateRead(q) })
		later := wallclock.Stepped(t, start.Add(2*time.Second), -time.Hour)
		if pu := q.PauseUntil(); pu.After(later) {
			t.Errorf("a second after its pause ended, the wall clock stepped an hour back: PauseUntil is %v ahead, want none", pu.Sub(later))
		}
		if d, ok, _ := q.Take(later); !ok || d != 0 {
			t.Errorf("Take a second after the pause ended, the wall clock stepped an hour back = %v, %v; want 0, true", d, ok)
		}
	})

	t.Run("pause on, stepped forward", func(t *testing.T) {
		q := s.Partition("https://forward.example reads")
		start := time.Now()
		q.Pause(start.Add(time.Hour))
		later := wallclock.Stepped(t, start.Add(time.Second), 2*time.Hour)
		if pu := q.PauseUntil(); pu.Sub(later) < 59*time.Minute {
			t.Errorf("a second into an hour's pause, the wall clock stepped two hours forward: PauseUntil is %v ahead, want about 59m59s", pu.Sub(later))
		}
		if d, ok, _ := q.Take(later); ok || d < 59*time.Minute {
			t.Errorf("Take a second into an hour's pause, the wall clock stepped two hours forward = %v, %v; want about 59m59s, false", d, ok)
		}
	})

	t.Run("lease, stepped back", func(t *testing.T) {
		q := s.Partition("https://lease.example reads")
		q.Learn(resilient.RateLimitInfo{Limit: 1000, Remaining: -1}, time.Second)
		watch := q.(resilient.QuotaWatcher)
		deadline := time.NewTimer(10 * time.Second)
		defer deadline.Stop()
		for {
			ch := watch.PauseChanged() // closed when a lease is installed
			if s.Stats().Leases > 0 {
				break
			}
			select {
			case <-ch:
			case <-deadline.C:
				t.Fatal("no lease within 10s")
			}
		}
		later := wallclock.Stepped(t, time.Now(), -time.Hour)
		if d, ok, _ := q.Take(later); !ok || d > redisquota.DefaultLeaseTime {
			t.Errorf("Take of a leased token, the wall clock stepped an hour back = %v, %v; want at most %v, true", d, ok, redisquota.DefaultLeaseTime)
		}
	})
}
