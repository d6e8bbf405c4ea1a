package redisquota_test

import (
	"sync"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
)

// sender takes tokens of q on its own goroutine until stop is closed,
// waiting as Take says, and records when each token's request would be
// sent.
type sender struct {
	mu    sync.Mutex
	sends []time.Time
}

func (s *sender) run(wg *sync.WaitGroup, stop <-chan struct{}, q resilient.QuotaPartition) {
	untilStopped(wg, stop, 1, func() {
		d, ok, retry := q.Take(time.Now())
		timer := time.NewTimer(d)
		select {
		case <-stop:
		case <-timer.C:
		case <-retry:
		}
		timer.Stop()
		if ok {
			s.mu.Lock()
			s.sends = append(s.sends, time.Now())
			s.mu.Unlock()
		}
	})
}

// between counts the sends in [from, to).
func (s *sender) between(from, to time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, at := range s.sends {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// TestClosedStoreKeepsFleetWithinQuota: a Transport that goes on using a
// Store after Close (a shutdown race, or a Store closed too early) must
// not make the fleet exceed the quota: the open members take the fleet's
// whole bucket, which no longer hears of the closed member's requests.
// Before, the closed member went on at its share of the quota, uncharged:
// with two members, the fleet sent about 1.5 times the quota.
func TestClosedStoreKeepsFleetWithinQuota(t *testing.T) {
	f := twoMembers(t)
	const limit = 200 // per second
	qa, qb := f.a.Partition("p"), f.b.Partition("p")
	qa.Learn(quota(limit), time.Second)
	qb.Learn(quota(limit), time.Second)
	waitFor(t, "the fleet counts two members", func() bool { return f.a.Members() == 2 && f.b.Members() == 2 })
	var sa, sb sender
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		sa.run(&wg, stop, qa)
		sb.run(&wg, stop, qb)
	}
	waitFor(t, "both members lease", func() bool { return f.a.Stats().Leases > 2 && f.b.Stats().Leases > 2 })
	f.a.Close()
	time.Sleep(500 * time.Millisecond) // A's leases held at Close are spent
	const span = 3 * time.Second
	from := time.Now()
	time.Sleep(span)
	to := time.Now()
	close(stop)
	wg.Wait()
	a, b := sa.between(from, to), sb.between(from, to)
	t.Logf("in %v after A closed: A sent %d, B %d; the quota allows %d", to.Sub(from).Round(time.Millisecond), a, b, limit*3)
	if a == 0 {
		t.Errorf("the closed member sent nothing: it must not be refused")
	}
	if a+b > limit*3 {
		t.Errorf("the fleet sent %d in %v, over the quota of %d", a+b, span, limit*3)
	}
}
