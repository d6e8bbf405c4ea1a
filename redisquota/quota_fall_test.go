package redisquota_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestQuotaFallDropsLeases: a fleet of two paces by a quota of 400 a
// second, each member holding leases of its share (38 tokens each, the
// next one ahead). The server lowers the quota to 40 a second, 40 left
// until its window resets in a second; member A learns it and seeds the
// fleet's bucket anew (37 tokens until the reset), and the fleet's channel
// tells B. The leases both members held were granted at the old pace, ten
// times the new one: kept, their tokens went on top of the new bucket's,
// and the fleet sent more than twice the quota in the server's window. A
// member whose quota falls drops the leases it holds, as for a pause.
func TestQuotaFallDropsLeases(t *testing.T) {
	f := twoMembers(t)
	const name = "https://api.example.com reads"
	qs := []resilient.QuotaPartition{f.a.Partition(name), f.b.Partition(name)}
	for _, q := range qs {
		q.Learn(quota(400), time.Second)
	}
	// A quota that differs again within WithLeaseTime of the last is not
	// written (a flapping server's): the fall comes later.
	time.Sleep(redisquota.DefaultLeaseTime)
	// Both members take tokens as attempts do, each waiting for its own,
	// until their leases have grown to full size (1, 2, ... 32, 38).
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, q := range qs {
		for range 2 {
			wg.Go(func() {
				for !stop.Load() {
					takeToken(t, q)
				}
			})
		}
	}
	waitFor(t, "full leases", func() bool {
		return f.a.Stats().Tokens >= 150 && f.b.Stats().Tokens >= 150 &&
			redisquota.Held(qs[0]) >= 20 && redisquota.Held(qs[1]) >= 20
	})
	stop.Store(true)
	wg.Wait() // every token taken so far has been sent
	held := redisquota.Held(qs[0]) + redisquota.Held(qs[1])

	start := time.Now()
	end := start.Add(time.Second)
	const limit = 40
	qs[0].Learn(resilient.RateLimitInfo{Limit: limit, Remaining: limit, Reset: end}, time.Second)
	waitFor(t, "member B hears the new quota", func() bool {
		l, _ := redisquota.Known(qs[1])
		return l == limit
	})
	// Every token the members can have for the server's window, taken as
	// soon as it is granted.
	var sent atomic.Int64
	for _, q := range qs {
		wg.Go(func() {
			for time.Now().Before(end) {
				now := time.Now()
				d, ok, retry := q.Take(now)
				if ok {
					if now.Add(d).Before(end) {
						sent.Add(1)
					}
					continue
				}
				timer := time.NewTimer(min(d, time.Until(end)))
				select {
				case <-timer.C:
				case <-retry:
				}
				timer.Stop()
			}
		})
	}
	wg.Wait()
	if n := sent.Load(); n > limit {
		t.Errorf("%d tokens for the window after the quota fell to %d a second (%d left), the members holding %d of the old pace's when it fell",
			n, limit, limit, held)
	}
}
