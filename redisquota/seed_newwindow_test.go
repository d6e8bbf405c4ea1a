package redisquota_test

import (
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestNewWindowReseedsAHeldBucket: the first response, to member A, says
// that none of 100 an hour remain for 30 minutes: the fleet's bucket
// holds its next token until that reset, and member B's lease finds it
// dry. The server then raises the quota to 1000 an hour (a response
// announcing it without its remaining count), and says from its next
// response on that 900 remain in a window that resets in an hour: a new
// window. A Transport without a store believes it (a later reset starts a
// new window) and sends; the fleet, its bucket of the same limit and
// window not seeded again, waited out the old reset, every member's
// calls refused for half an hour while the server said 900 remain.
func TestNewWindowReseedsAHeldBucket(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	var qs [2]resilient.QuotaPartition
	var ss [2]*redisquota.Store
	for i := range ss {
		ss[i] = redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
		defer ss[i].Close()
		qs[i] = ss[i].Partition("newwindow")
	}
	a, b := qs[0], qs[1]
	now := time.Now()
	a.Learn(resilient.RateLimitInfo{Limit: 100, Remaining: 0, Reset: now.Add(30 * time.Minute)}, time.Hour)
	waitFor(t, "the seed written", func() bool { return ss[0].Stats().Calls >= 2 && redisquota.StateRead(a) })
	// Past the member's guard against a flapping limit (WithLeaseTime).
	time.Sleep(250 * time.Millisecond)
	calls := ss[0].Stats().Calls
	a.Learn(resilient.RateLimitInfo{Limit: 1000, Remaining: -1}, time.Hour)
	waitFor(t, "the new limit written", func() bool { return ss[0].Stats().Calls > calls })
	waitFor(t, "B's lease finding the bucket of the new limit dry", func() bool {
		b.Take(time.Now())
		limit, _ := redisquota.Known(b)
		return limit == 1000 && redisquota.DryUntil(b) > time.Minute
	})
	a.Learn(resilient.RateLimitInfo{Limit: 1000, Remaining: 900, Reset: time.Now().Add(time.Hour)}, time.Hour)
	for i, q := range qs {
		var d time.Duration
		var ok bool
		end := time.Now().Add(2 * time.Second)
		for time.Now().Before(end) {
			if d, ok, _ = q.Take(time.Now()); ok && d < time.Second {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !ok || d >= time.Second {
			t.Errorf("member %c: Take after the server said 900 of 1000 remain in a new window = %v, %v, the fleet's next token %v away; want a token within a second",
				'A'+i, d, ok, redisquota.DryUntil(q).Round(time.Second))
		}
	}
}

// TestSameWindowDoesNotReseed: the bucket is held until the reset of a
// window of which the first response said 10 of 1000 remain (fewer than
// the seed's margin). A response whose reset is that one, a second later
// (whole seconds, a response's delay), is of the same window: what it
// says remains, the fleet may have spent meanwhile, and the bucket stays
// held.
func TestSameWindowDoesNotReseed(t *testing.T) {
	s, _, _ := scriptStore(t)
	q := s.Partition("samewindow")
	reset := time.Now().Add(30 * time.Minute)
	q.Learn(resilient.RateLimitInfo{Limit: 1000, Remaining: 10, Reset: reset}, time.Hour)
	waitFor(t, "the bucket found dry", func() bool {
		q.Take(time.Now())
		return redisquota.DryUntil(q) > time.Minute
	})
	q.Learn(resilient.RateLimitInfo{Limit: 1000, Remaining: 60, Reset: reset.Add(time.Second)}, time.Hour)
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if d, ok, _ := q.Take(time.Now()); ok {
			t.Fatalf("Take after a response of the held window = %v, %v; want no token before its reset", d, ok)
		}
	}
}
