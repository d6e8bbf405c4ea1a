package redisquota_test

import (
	"context"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestSeedAfterLostStateIsTheLatest: a quota of 100 per 3s, of which the
// first response says 50 remain until the reset: the bucket is seeded
// with a cap of 45. The fleet spends it, the member's latest response
// saying that 3 remain, and then Redis loses the state (a restart without
// persistence). The member writes the quota again, seeded from what
// remains: from its first response, the fleet got the 45 tokens again
// before the same reset, 40 requests the server refuses; from its latest,
// it gets none (0.95·3 less the tolerance of 2 is less than a token).
func TestSeedAfterLostStateIsTheLatest(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	const name = "lost"
	q := s.Partition(name)
	const window = 3 * time.Second
	reset := time.Now().Add(window)
	q.Learn(resilient.RateLimitInfo{Limit: 100, Remaining: 50, Reset: reset}, window)
	waitFor(t, "the seed written", func() bool { return s.Stats().Calls >= 2 && redisquota.StateRead(q) })
	// The fleet spent what remained: the server's latest word.
	q.Learn(resilient.RateLimitInfo{Limit: 100, Remaining: 3, Reset: reset}, window)
	if err := rdb.Del(context.Background(), s.StateKey(name)).Err(); err != nil {
		t.Fatal(err)
	}
	// The tokens the member gets before the reset (the one it holds
	// included), following the waits the quota asks for.
	var before int
	for time.Now().Before(reset) && before <= 45 {
		now := time.Now()
		d, ok, retry := q.Take(now)
		if !ok {
			timer := time.NewTimer(min(d, time.Until(reset)))
			select {
			case <-timer.C:
			case <-retry:
			}
			timer.Stop()
			continue
		}
		if !now.Add(d).Before(reset) {
			break
		}
		before++
		time.Sleep(d)
	}
	if before > 2 {
		t.Errorf("%d tokens before the reset of a window the server said has 3 left, Redis having lost the state; want at most 2", before)
	}
}
