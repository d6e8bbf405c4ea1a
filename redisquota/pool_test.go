package redisquota_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
	"github.com/resilienthttp/resilient/resilienttest"
)

// sharedPool is a go-redis client shared by the application and a Store,
// with a pool of one connection, which the application holds with a
// blocking command (BLPOP) until release: every Redis call of the Store
// waits for a turn of the pool meanwhile.
type sharedPool struct {
	rdb  *redis.Client
	key  string
	held chan error // the application's BLPOP, once it returns
}

// newSharedPool returns a client of addr with a pool of one connection,
// whose PoolTimeout (a minute) is longer than any bound of the Store's:
// only the Store's own bounds end its waits. ctxTimeout is its
// ContextTimeoutEnabled.
func newSharedPool(t *testing.T, addr, prefix string, ctxTimeout bool) *sharedPool {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, PoolTimeout: time.Minute,
		ContextTimeoutEnabled: ctxTimeout, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	return &sharedPool{rdb: rdb, key: prefix + ":app-list"}
}

// hold makes the application take the pool's only connection, with a
// BLPOP that blocks until release, and waits until it holds it.
func (sp *sharedPool) hold(t *testing.T) {
	t.Helper()
	sp.held = make(chan error, 1)
	go func() { sp.held <- sp.rdb.BLPop(context.Background(), 0, sp.key).Err() }()
	waitFor(t, "the application holds the pool's connection", func() bool {
		st := sp.rdb.PoolStats()
		return st.TotalConns == 1 && st.IdleConns == 0
	})
}

// release ends the application's BLPOP, through a client of its own, and
// waits for it.
func (sp *sharedPool) release(t *testing.T, addr string) {
	t.Helper()
	if err := newRedis(t, addr).LPush(context.Background(), sp.key, "go").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sp.held:
		if err != nil {
			t.Errorf("the application's BLPOP: %v", err)
		}
	case <-time.After(waitBound):
		t.Fatal("the application's BLPOP did not return")
	}
}

// quotaServer returns a fault server that announces a quota of limit
// requests a minute, and a client of it through a Transport with s whose
// partition is named "key".
func quotaServer(t *testing.T, s *redisquota.Store, limit int) (*resilienttest.Server, *http.Client) {
	t.Helper()
	srv := resilienttest.NewServer(resilienttest.Altyaa,
		resilienttest.WithQuota(resilienttest.Quota{Limit: limit, TimeScale: 60, ResetFormat: resilienttest.IETF}))
	t.Cleanup(srv.Close)
	tr := resilient.New(srv.Transport(), resilient.WithQuotaStore(s),
		resilient.WithRateLimitKey(func(*http.Request) string { return "key" }))
	return srv, &http.Client{Transport: tr}
}

// get sends one GET under a context of timeout, and returns its error or
// its status's.
func get(client *http.Client, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// TestSaturatedPoolFailsNoCall answers how long a call waits when the
// go-redis client the Store shares with the application has no free
// connection (the application holds every one, here with BLPOP): no call
// waits for the pool, whose PoolTimeout is a minute here; the member paces
// locally once its refiller's call has not answered for WithFallbackAfter,
// every call reaches the server exactly once, none fails, and the member
// leases again once the application lets the connection go.
func TestSaturatedPoolFailsNoCall(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	sp := newSharedPool(t, addr, prefix, true)
	s := redisquota.New(sp.rdb, redisquota.WithPrefix(prefix))
	defer s.Close()
	srv, client := quotaServer(t, s, 600)
	url := srv.URL + "/v1/usage"
	waitFor(t, "leases", func() bool {
		if err := get(client, url, waitBound); err != nil {
			t.Fatal(err)
		}
		return s.Stats().Leases >= 3
	})
	sp.hold(t)
	before, st := srv.Stats().Requests, s.Stats()
	const calls = 60
	var slowest time.Duration
	for i := range calls {
		start := time.Now()
		if err := get(client, url, waitBound); err != nil {
			t.Fatalf("call %d while the pool is saturated: %v", i, err)
		}
		slowest = max(slowest, time.Since(start))
	}
	after := s.Stats()
	t.Logf("%d calls, the slowest %v; stats during: %d Redis calls, %d errors, %d fallback tokens",
		calls, slowest, after.Calls-st.Calls, after.Errors-st.Errors, after.Fallbacks-st.Fallbacks)
	if n := srv.Stats().Requests - before; n != calls {
		t.Errorf("the server saw %d requests for %d calls", n, calls)
	}
	if after.Fallbacks == st.Fallbacks {
		t.Errorf("no token from the local limiter while the pool was saturated")
	}
	if slowest > 10*time.Second {
		t.Errorf("a call took %v while the pool was saturated (WithFallbackAfter 100ms)", slowest)
	}
	sp.release(t, addr)
	leases := s.Stats().Leases
	waitFor(t, "leases again", func() bool {
		if err := get(client, url, waitBound); err != nil {
			t.Fatal(err)
		}
		return s.Stats().Leases > leases
	})
}

// TestSaturatedPoolShortDeadline proves that a call whose deadline comes
// before the member would fall back (WithFallbackAfter) is not refused
// because the Store's Redis has not answered: with the pool saturated, and
// no token held, the member paces it locally at once. It was refused with
// ErrRateLimited ("would wait …, past the call's deadline"), never sent,
// where a plain client would have sent it.
func TestSaturatedPoolShortDeadline(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	sp := newSharedPool(t, addr, prefix, true)
	// The refiller's call waits for the pool for a minute, and the member
	// waits 5s for it before it paces locally: long, to make the test
	// deterministic; the default 100ms leaves the same gap to a caller
	// whose deadline is shorter.
	s := redisquota.New(sp.rdb, redisquota.WithPrefix(prefix),
		redisquota.WithTimeout(time.Minute), redisquota.WithFallbackAfter(5*time.Second))
	defer s.Close()
	srv, client := quotaServer(t, s, 600)
	url := srv.URL + "/v1/usage"
	if err := get(client, url, waitBound); err != nil { // the quota learned
		t.Fatal(err)
	}
	sp.hold(t)
	defer sp.release(t, addr)
	before := srv.Stats().Requests
	for i := range 3 {
		if err := get(client, url, time.Second); err != nil {
			t.Fatalf("call %d with a deadline of 1s, the pool saturated: %v (stats %+v)", i, err, s.Stats())
		}
	}
	if n := srv.Stats().Requests - before; n != 3 {
		t.Errorf("the server saw %d requests for 3 calls", n)
	}
}

// TestSaturatedPoolBackgroundBounded answers what a saturated pool does to
// the Store's background work: its goroutines do not pile up (one per
// partition in use, the heartbeat, the listener, the budgets' syncer), and
// its calls, each waiting for a turn of the pool at most WithTimeout, are
// retried with backoff, not in a tight loop, so that they take few turns
// from the application's own commands. The wait for a turn is bounded by
// WithTimeout whether or not the client sets ContextTimeoutEnabled (not
// set here): go-redis bounds it by the call's context, not only by its
// PoolTimeout (a minute here).
func TestSaturatedPoolBackgroundBounded(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	sp := newSharedPool(t, addr, prefix, false)
	s := redisquota.New(sp.rdb, redisquota.WithPrefix(prefix))
	defer s.Close()
	const parts = 8
	var qs []resilient.QuotaPartition
	for i := range parts {
		q := s.Partition("p" + string(rune('a'+i)))
		q.Learn(quota(600), time.Minute)
		qs = append(qs, q)
	}
	b := s.Budget("https://h.example.com:443", resilient.RetryBudget{Ratio: 0.2, Burst: 10, ThrottledCost: 0.1})
	for _, q := range qs {
		takeToken(t, q)
	}
	waitFor(t, "leases", func() bool { return s.Stats().Leases >= parts })
	sp.hold(t)
	defer sp.release(t, addr)
	base := runtime.NumGoroutine()
	st := s.Stats()
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	untilStopped(&wg, stop, 4, func() { // demand on every partition, retries spent
		for _, q := range qs {
			d, ok, _ := q.Take(time.Now())
			if !ok {
				d = min(d, 5*time.Millisecond)
			}
			time.Sleep(min(d, 5*time.Millisecond))
		}
		if b.Withdraw(1) {
			b.Deposit(1)
		}
	})
	time.Sleep(3 * time.Second)
	n := runtime.NumGoroutine()
	close(stop)
	wg.Wait()
	el := time.Since(start)
	after := s.Stats()
	calls := after.Calls - st.Calls
	t.Logf("in %v of a saturated pool: %d Redis calls (%d failed), %d goroutines (%d at the start)",
		el.Round(time.Millisecond), calls, after.Errors-st.Errors, n, base)
	if after.Errors == st.Errors {
		t.Errorf("no Redis call of the Store ended in %v of a saturated pool: its waits are not bounded by WithTimeout", el)
	}
	if n > base+parts+8 {
		t.Errorf("%d goroutines after %v of a saturated pool, %d at its start", n, el, base)
	}
	// Each of the parts refillers, the heartbeat and the budgets' syncer
	// makes one call per WithTimeout (500ms) at most while every call waits
	// for the pool; a tight loop would make thousands.
	if limit := int64(float64(parts+2) * (el.Seconds()/0.5 + 2)); calls > limit {
		t.Errorf("%d Redis calls in %v of a saturated pool, want at most %d", calls, el, limit)
	}
}

// TestShortDeadlineSpentBucket proves that TakeBefore paces locally only
// an attempt that waits for Redis, not one that waits for the fleet's
// next tokens: once a lease call found the bucket spent (a quota of 60 a
// minute, its one token taken), an attempt whose deadline comes before the
// next token gets none, as with Take, and the Transport refuses it, as it
// refuses a spent quota's attempt without a store.
func TestShortDeadlineSpentBucket(t *testing.T) {
	s, _, _ := scriptStore(t)
	q := s.Partition("spent")
	q.Learn(quota(60), time.Minute)
	takeToken(t, q)
	q.Take(time.Now()) // no token: the refiller asks for a lease
	waitFor(t, "the bucket found spent", func() bool { return redisquota.DryUntil(q) > 100*time.Millisecond })
	now := time.Now()
	d, ok, _ := q.(resilient.QuotaDeadlineTaker).TakeBefore(now, now.Add(10*time.Millisecond))
	if ok {
		t.Errorf("TakeBefore gave a token (after %v) from a spent bucket", d)
	}
	if st := s.Stats(); st.Fallbacks != 0 {
		t.Errorf("stats %+v: a token from the local limiter while Redis answers", st)
	}
}

// TestStalledRedisShortDeadline is TestSaturatedPoolShortDeadline for a
// Redis that does not answer (CLIENT PAUSE WRITE, on a redis-server of the
// test's own, holds every script until the test lifts it): a call whose
// deadline comes before the member would fall back is paced locally at
// once, and reaches the server once.
func TestStalledRedisShortDeadline(t *testing.T) {
	rs := startRedisServer(t)
	prefix := testPrefix(t, rs.addr())
	s := redisquota.New(newRedis(t, rs.addr()), redisquota.WithPrefix(prefix),
		redisquota.WithTimeout(time.Minute), redisquota.WithFallbackAfter(5*time.Second))
	defer s.Close()
	srv, client := quotaServer(t, s, 600)
	url := srv.URL + "/v1/usage"
	if err := get(client, url, waitBound); err != nil { // the quota learned
		t.Fatal(err)
	}
	waitFor(t, "a lease", func() bool { return s.Stats().Leases > 0 })
	admin := newRedis(t, rs.addr())
	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", 600000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	defer admin.Do(context.Background(), "CLIENT", "UNPAUSE")
	before := srv.Stats().Requests
	const calls = 10
	for i := range calls {
		if err := get(client, url, time.Second); err != nil {
			t.Fatalf("call %d with a deadline of 1s, Redis paused: %v (stats %+v)", i, err, s.Stats())
		}
	}
	if n := srv.Stats().Requests - before; n != calls {
		t.Errorf("the server saw %d requests for %d calls", n, calls)
	}
}
