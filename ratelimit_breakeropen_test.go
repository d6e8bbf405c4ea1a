package resilient

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// TestTurnWaitEndsWhenTheBreakerOpens checks that an attempt waiting for
// its turn of the pace (one each 8s, burst 1) whose host's breaker opens
// meanwhile (a 500 at 500ms, open for 30s) goes on to the breaker then,
// and is refused at once, as one that finds the breaker open before it
// waits is (skipWait), instead of waiting until its turn at 8s to be
// refused. Its turn is given back: a call to another host, paced as one
// by WithRateLimitKey, that comes at 1s is sent at 8s, the turn after the
// 500's, not at 16s behind a turn nobody sends on.
func TestTurnWaitEndsWhenTheBreakerOpens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log sendLog
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			code := http.StatusOK
			if r.URL.Path == "/fail" {
				time.Sleep(500 * time.Millisecond)
				code = http.StatusInternalServerError
			} else {
				log.add(time.Now())
			}
			return &http.Response{StatusCode: code, Body: http.NoBody, Request: r}, nil
		})
		tr := New(base, WithMaxRetries(0), WithRateLimit(rate.Every(8*time.Second), 1),
			WithRateLimitKey(func(*http.Request) string { return "api" }),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 30 * time.Second}))
		start := time.Now()
		var wg sync.WaitGroup
		callAt(t, &wg, tr, "https://x.test/fail", 0, 0, nil)
		var refusedAt time.Duration
		wg.Go(func() {
			time.Sleep(100 * time.Millisecond)
			_, err := getIn(t, tr, context.Background(), "https://x.test/b")
			refusedAt = time.Since(start)
			bkWantOpen(t, err)
		})
		time.Sleep(time.Second)
		if _, err := getIn(t, tr, context.Background(), "https://y.test/c"); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if refusedAt != 500*time.Millisecond {
			t.Errorf("the call waiting for its turn was refused at %v, want 500ms: when its breaker opened", refusedAt)
		}
		if got := offsets(log.times(), start); len(got) != 1 || got[0] != 8*time.Second {
			t.Errorf("the other host's call was sent at %v, want 8s: the turn given back", got)
		}
	})
}

// TestBreakerOpenedWakesItsHostAlone checks the channel a turn's wait
// takes from the breaker set (see breakerSet.opened): the breaker of one
// host that opens wakes the waiters of that host, not those of every
// host (each would take the set's lock and a timer again, for every
// breaker of a fleet of dead hosts that opens); a host the set holds no
// breaker of yet is woken by any breaker that opens, and a breaker that
// leaves the set wakes its waiters, which read the one that follows it.
func TestBreakerOpenedWakesItsHostAlone(t *testing.T) {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		code := http.StatusOK
		if r.URL.Path == "/fail" {
			code = http.StatusInternalServerError
		}
		return &http.Response{StatusCode: code, Body: http.NoBody, Request: r}, nil
	})
	tr := New(base, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
	s := tr.breakers
	req := func(host string) *http.Request {
		return newRequest(t, context.Background(), "GET", "https://"+host+"/", nil)
	}
	for _, h := range []string{"a.test", "b.test"} {
		if _, err := getIn(t, tr, context.Background(), "https://"+h+"/"); err != nil {
			t.Fatal(err)
		}
	}
	a, b, c := s.opened(req("a.test")), s.opened(req("b.test")), s.opened(req("c.test"))
	if a == b || a == c {
		t.Fatal("hosts with breakers share a channel with another host")
	}
	if _, err := getIn(t, tr, context.Background(), "https://b.test/fail"); err != nil {
		t.Fatal(err)
	}
	if isClosed(a) || !isClosed(b) || !isClosed(c) {
		t.Errorf("b.test's breaker opened: a woken %v, b %v, c (no breaker) %v; want false, true, true", isClosed(a), isClosed(b), isClosed(c))
	}
	a = s.opened(req("a.test"))
	s.mu.Lock()
	keys, n := hostKeys(s.keyFn, req("a.test"))
	s.remove(findHost(&s.table, keys[:n]))
	s.mu.Unlock()
	if !isClosed(a) {
		t.Error("a.test's breaker left the set: its waiters not woken")
	}
}
