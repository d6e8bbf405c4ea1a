package redisquota_test

import (
	"context"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/redisquota"
)

// TestLeaseToleranceIsTheBuckets: a member leasing at full size (1000
// tokens) by a quota of 50000 a second learns nothing of the fleet's
// quota falling to 100 a second (another member's write, whose message it
// missed) until the reply of its next lease. The bucket's tolerance was
// the member's to say, 2% of the limit it believed (1000 tokens), taken
// at the pace of the limit Redis holds: 1000 intervals of 10.5ms, ten
// seconds of the new quota, and the lease's 1000 tokens all conformed at
// once. The tolerance is the bucket's own, 2% of the limit Redis holds
// (2 tokens): the new quota's pace from the first lease after the fall.
func TestLeaseToleranceIsTheBuckets(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	// No fallback to local pacing (by the old quota) while Redis is slow.
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix), redisquota.WithFallbackAfter(time.Minute))
	defer s.Close()
	const name = "https://api.example.com reads"
	q := s.Partition(name)
	q.Learn(quota(50000), time.Second)
	// Leases double from one token up to the member's share of 200ms
	// (9500, at most 1000): 1+2+...+512, then 1000.
	for s.Stats().Tokens < 1023+1000 {
		takeToken(t, q)
	}
	// The tokens held expire a quarter of the lease time after their time,
	// unused: the next lease is asked for at full size.
	time.Sleep(300 * time.Millisecond)
	rdb := newRedis(t, addr)
	if err := rdb.HSet(context.Background(), s.StateKey(name), "limit", 100, "window", time.Second.Microseconds()).Err(); err != nil {
		t.Fatal(err)
	}
	const span = 300 * time.Millisecond
	end := time.Now().Add(span)
	n := 0
	for time.Now().Before(end) {
		d, ok, retry := q.Take(time.Now())
		if ok {
			if time.Now().Add(d).After(end) {
				break
			}
			n++
			time.Sleep(d)
			continue
		}
		timer := time.NewTimer(min(d, time.Until(end)))
		select {
		case <-timer.C:
		case <-retry:
		}
		timer.Stop()
	}
	// 95 a second, and a tolerance of 2: about 30 tokens in 300ms.
	if n > 100 {
		t.Errorf("%d tokens in %v after the fleet's quota fell to 100/s; want at most 100", n, span)
	}
	t.Logf("%d tokens in %v after the fall", n, span)
}
