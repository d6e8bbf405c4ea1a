package redisquota_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestFallbackStalledWrite proves the fallback bound when the Redis call
// that does not answer is one of the writes the refiller makes before a
// lease (here the pause a 429 set): the member paces locally after
// WithFallbackAfter, not after WithTimeout (a minute here), as it does when
// a lease call hangs.
func TestFallbackStalledWrite(t *testing.T) {
	rs := startRedisServer(t)
	prefix := testPrefix(t, rs.addr())
	s := redisquota.New(newRedis(t, rs.addr()), redisquota.WithPrefix(prefix),
		redisquota.WithTimeout(time.Minute), redisquota.WithFallbackAfter(100*time.Millisecond))
	defer s.Close()
	q := s.Partition("stalled")
	q.Learn(quota(100), time.Second)
	takeToken(t, q)
	waitFor(t, "a lease", func() bool { return s.Stats().Leases > 0 })

	admin := newRedis(t, rs.addr())
	// WRITE pauses every script until the test lifts it; the admin's
	// CLIENT UNPAUSE goes through.
	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", 600000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	defer admin.Do(context.Background(), "CLIENT", "UNPAUSE")
	// A 429's short pause: the member drops its leases, and its refiller
	// writes the pause, which Redis holds.
	q.Pause(time.Now().Add(50 * time.Millisecond))
	for i := range 3 {
		if !tokenWithin(q, waitBound) {
			t.Fatalf("token %d: none within waitBound while Redis hangs (WithFallbackAfter 100ms); stats %+v", i, s.Stats())
		}
	}
	if s.Stats().Fallbacks == 0 {
		t.Errorf("stats %+v: no token from the local limiter", s.Stats())
	}
}

// TestNewStalledRedis proves that New does not wait for Redis, as it
// promises: with Redis paused (CLIENT PAUSE ALL, for 8s), it returns at
// once, and the Store's partitions answer.
func TestNewStalledRedis(t *testing.T) {
	rs := startRedisServer(t)
	admin := newRedis(t, rs.addr())
	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", 8000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s := redisquota.New(newRedis(t, rs.addr()), redisquota.WithPrefix("rqtest:stalled-new"))
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("New waited %v for a Redis paused 8s", d)
	}
	defer s.Close()
	q := s.Partition("p")
	q.Learn(quota(100), time.Second)
	takeToken(t, q)
}

// TestRefillersStopWhileRedisDown proves that a partition used once while
// Redis is unreachable does not keep a goroutine calling Redis until it
// answers: its refiller stops once nobody used the partition for a while
// (idleExit, 2s), as it does when Redis answers. 200 partitions used once
// made 200 goroutines calling Redis every second, for ever.
func TestRefillersStopWhileRedisDown(t *testing.T) {
	rdb := newRedis(t, "127.0.0.1:"+strconv.Itoa(freePort(t)))
	s := redisquota.New(rdb, redisquota.WithPrefix("rqtest:refillers-down"))
	defer s.Close()
	useOnce200(t, s, "")
	calls := s.Stats().Calls
	time.Sleep(1500 * time.Millisecond) // longer than the longest backoff
	if n := s.Stats().Calls - calls; n > 2 {
		t.Errorf("%d Redis calls while no partition was used", n)
	}
	// The next demand starts a refiller again, which paces locally.
	q := s.Partition("p0")
	takeToken(t, q)
}

// TestBudgetsBoundedWhileRedisDown proves that the retry budgets a Store
// holds stay bounded while Redis is unreachable, as they do when it
// answers: a budget that waits for its first sync, which never comes, is
// dropped to make room like an idle one. None could be dropped: a
// Transport calling many hosts (each new host a budget, the Transport's
// own table cleared when full) grew the Store's map, and the pipeline
// each failed sync sends again, without bound for as long as Redis was
// down.
func TestBudgetsBoundedWhileRedisDown(t *testing.T) {
	rdb := newRedis(t, "127.0.0.1:"+strconv.Itoa(freePort(t)))
	s := redisquota.New(rdb, redisquota.WithPrefix("rqtest:budgets-down"))
	defer s.Close()
	settings := resilient.RetryBudget{Ratio: 0.1, Burst: 10, ThrottledCost: 0.1}
	for i := range 3 * redisquota.MaxPartitions {
		b := s.Budget("https://h"+strconv.Itoa(i)+".example.com:443", settings)
		b.Deposit(0.1)
		if i%7 == 0 {
			b.Withdraw(1) // a change of the member's own, that no sync took
		}
	}
	if n := s.BudgetsHeld(); n > redisquota.MaxPartitions {
		t.Errorf("the Store holds %d retry budgets after %d hosts, Redis down; want at most %d",
			n, 3*redisquota.MaxPartitions, redisquota.MaxPartitions)
	}
}

// TestFallbackWaitsNotHoarded proves that the local limiter a partition
// paces with while Redis is down holds no token far ahead for an attempt:
// the Transport refuses an attempt whose wait passes its deadline, and
// cannot give back the token a store held for it. The limiter reserved a
// token for every Take, however far ahead: 100 attempts of 5s deadlines
// at once, at a pace of about one a second, held tokens 100s ahead, which
// none of them sent, and the next attempts waited behind them, refused in
// turn while demand lasted: no request went out while Redis was down.
func TestFallbackWaitsNotHoarded(t *testing.T) {
	rdb := newRedis(t, "127.0.0.1:"+strconv.Itoa(freePort(t)))
	s := redisquota.New(rdb, redisquota.WithPrefix("rqtest:fallback-hoard"))
	defer s.Close()
	q := s.Partition("p")
	q.Learn(quota(60), time.Minute)
	waitFor(t, "pacing locally", func() bool {
		q.Take(time.Now())
		return s.Stats().Fallbacks > 0
	})
	t0 := time.Now()
	for range 100 {
		q.Take(t0) // an attempt that gives up when the wait passes its deadline
	}
	later := t0.Add(10 * time.Second)
	if d, _, _ := q.Take(later); d > 5*time.Second {
		t.Errorf("10s after 100 attempts, at about one a second, an attempt is told to wait %v", d)
	}
}

// useOnce200 uses 200 partitions of s once each, then waits up to waitBound for
// their refillers to stop (the goroutines back to what they were, give or
// take 10, and no partition refilling), failing with what why adds to the
// message if they do not.
func useOnce200(t *testing.T, s *redisquota.Store, why string) {
	t.Helper()
	base := runtime.NumGoroutine()
	parts := make([]resilient.QuotaPartition, 200)
	for i := range parts {
		q := s.Partition("p" + strconv.Itoa(i))
		q.Learn(quota(100), time.Second)
		q.Take(time.Now())
		parts[i] = q
	}
	// The goroutines are counted give or take 10 (the client's own come
	// and go): the refillers are then waited for one by one, the last
	// ones exiting late on a busy machine.
	deadline := time.Now().Add(waitBound)
	refilling := func() int {
		n := 0
		for _, q := range parts {
			if redisquota.Refilling(q) {
				n++
			}
		}
		return n
	}
	for runtime.NumGoroutine() > base+10 || refilling() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines (%d before), %d of 200 partitions refilling, waitBound after they were used once%s; stats %+v",
				runtime.NumGoroutine(), base, refilling(), why, s.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
