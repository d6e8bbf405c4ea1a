package resilient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestQuotaStoreSpentQuotaWaitersAllGoAtTheReset is
// TestSpentQuotaWaitersAllGoAtTheReset with a QuotaStore, which paces the
// quota instead of the Transport: a fixed window of 100 (600) requests a
// minute, spent at t=0 (an answer says Remaining 0, the reset 60 s ahead),
// holds 8 (32) calls until its reset, which they wait for within the
// default WithMaxRetryAfter (60 s). At the reset one goes first, and its
// answer announces the new window, 99 (599) left: the others go on the
// server's word, at the store's pace (0.63 s, 0.1 s apart), all within a
// tenth of WithMaxRetryAfter past the reset; none is refused, and the
// server answers none a 429.
func TestQuotaStoreSpentQuotaWaitersAllGoAtTheReset(t *testing.T) {
	for _, c := range []struct{ limit, waiters int }{{100, 8}, {600, 32}} {
		t.Run(fmt.Sprintf("%d a minute, %d waiters", c.limit, c.waiters), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &quotaServer{limit: c.limit, spent: c.limit - 1, window: time.Minute, answer: 50 * time.Millisecond, start: time.Now()}
				tr := New(srv, WithQuotaStore(new(memQuota)), WithoutBreaker(), WithoutRetryBudget())
				get := func() (int, error) {
					resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "http://api.test/v1/items", nil))
					if err != nil {
						return 0, err
					}
					resp.Body.Close()
					return resp.StatusCode, nil
				}
				if status, err := get(); status != http.StatusOK { // the last of the first window
					t.Fatalf("first call: %d, %v", status, err)
				}
				// The reset is at 60 s; the waiters wake within its spread
				// (1 s), and go at the store's pace a tenth of 60 s past
				// the reset at most, with their answers (50 ms).
				const within = time.Minute + 6*time.Second + 100*time.Millisecond
				var wg sync.WaitGroup
				var mu sync.Mutex
				failed := 0
				for i := range c.waiters {
					wg.Go(func() {
						status, err := get()
						done := time.Since(srv.start)
						if status != http.StatusOK || err != nil || done > within {
							mu.Lock()
							defer mu.Unlock()
							if failed++; failed <= 3 {
								t.Errorf("waiter %d: %d, %v at %v; want 200 by %v", i, status, err, done, within)
							}
						}
					})
				}
				wg.Wait()
				srv.mu.Lock()
				hits, throttled := srv.hits, srv.throttled
				srv.mu.Unlock()
				if want := 1 + c.waiters; failed != 0 || hits != want || throttled != 0 {
					t.Errorf("%d calls failed; the server got %d requests, %d answered 429; want none failed, %d requests, none 429", failed, hits, throttled, want)
				}
			})
		})
	}
}

// TestQuotaStoreSpentQuotaScoutThatHangsHoldsNoOneLong: with a QuotaStore,
// the waiters whose store token comes past the bound after a spent
// quota's reset are sent only on the word of an answer heard since the
// reset: when the first request of the new window hangs, they wait for
// its answer a tenth of WithMaxRetryAfter (6 s) past the reset at most,
// then are refused, having sent nothing.
func TestQuotaStoreSpentQuotaScoutThatHangsHoldsNoOneLong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const waiters = 8
		srv := &quotaServer{limit: 100, spent: 99, window: time.Minute, answer: 50 * time.Millisecond, start: time.Now(), hang: time.Hour}
		tr := New(srv, WithQuotaStore(new(memQuota)), WithoutBreaker(), WithoutRetryBudget(), WithMaxRetries(0))
		get := func() error {
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "http://api.test/v1/items", nil))
			if err == nil {
				resp.Body.Close()
			}
			return err
		}
		if err := get(); err != nil {
			t.Fatalf("first call: %v", err)
		}
		// The reset is at 60 s, its spread 1 s at most, the wait for the
		// scout's answer 6 s past the reset at most.
		const within = time.Minute + 7*time.Second
		var wg sync.WaitGroup
		var mu sync.Mutex
		refused, hung := 0, 0
		for i := range waiters {
			wg.Go(func() {
				err := get()
				done := time.Since(srv.start)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil && !errors.Is(err, ErrRateLimited):
					hung++ // the scout, cut by the call's budget
				case done > within || !errors.Is(err, ErrRateLimited):
					t.Errorf("waiter %d: %v at %v; want ErrRateLimited by %v", i, err, done, within)
				default:
					refused++
				}
			})
		}
		wg.Wait()
		srv.mu.Lock()
		late := srv.late
		srv.mu.Unlock()
		if hung != 1 || refused != waiters-1 || late != 1 {
			t.Errorf("%d calls hung, %d refused, the server got %d requests after the reset; want 1 hung, %d refused, 1 request", hung, refused, late, waiters-1)
		}
	})
}

// TestQuotaStoreSpentQuotaResetHostFreesGracedWaiters: with a QuotaStore,
// the waiters whose store token came past the bound after a spent quota's
// reset wait for it, and then for the scout's answer (see
// TestQuotaStoreSpentQuotaScoutThatHangsHoldsNoOneLong). Transport.ResetHost
// during those waits clears what the Transport and the fleet learned, and
// its waiters wake and try again at once, as ResetHost promises: each is
// sent then and answered, none held until the end of its wait for the
// scout's answer and refused: at 62.5 s, some still wait for their
// tokens, the others for the scout's answer; at 65.5 s, all of them wait
// for the scout's answer. With evict, the host's partition is evicted
// just before ResetHost by a table full of paused ones (see
// TestResetHostWakesWaiterOfEvictedPartition): its waiters, which no
// ResetHost reached, slept on, and were refused at the end of their
// wait for the scout's answer.
func TestQuotaStoreSpentQuotaResetHostFreesGracedWaiters(t *testing.T) {
	for _, evict := range []bool{false, true} {
		for _, resetAt := range []time.Duration{time.Minute + 2500*time.Millisecond, time.Minute + 5500*time.Millisecond} {
			name := resetAt.String()
			if evict {
				name += " evicted"
			}
			t.Run(name, func(t *testing.T) { testResetHostFreesGracedWaiters(t, resetAt, evict) })
		}
	}
}

func testResetHostFreesGracedWaiters(t *testing.T, resetAt time.Duration, evict bool) {
	synctest.Test(t, func(t *testing.T) {
		const waiters = 8
		srv := &quotaServer{limit: 100, spent: 99, window: time.Minute, answer: 50 * time.Millisecond, start: time.Now(), hang: time.Hour}
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Host == "api.test" {
				return srv.RoundTrip(req)
			}
			h := http.Header{"Retry-After": {"60"}} // every other host is paused
			return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithQuotaStore(new(memQuota)), WithoutBreaker(), WithoutRetryBudget(), WithMaxRetries(0))
		rl := rlOf(t, tr)
		if evict {
			rl.maxParts = 2
		}
		get := func() (int, error) {
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "http://api.test/v1/items", nil))
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		if _, err := get(); err != nil {
			t.Fatalf("first call: %v", err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		hung, ok := 0, 0
		// The reset is at 60 s; the scout goes then and hangs, and the
		// others hold store tokens 0.63 s apart past the bound, or wait
		// for the scout's answer, until 6 s past the reset at most.
		for i := range waiters {
			wg.Go(func() {
				status, err := get()
				done := time.Since(srv.start)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil && !errors.Is(err, ErrRateLimited):
					hung++ // the scout, cut by the call's budget
				case err != nil || status != http.StatusOK || done > resetAt+time.Second:
					t.Errorf("waiter %d: %d, %v at %v; want 200 soon after ResetHost at %v", i, status, err, done, resetAt)
				default:
					ok++
				}
			})
		}
		time.Sleep(time.Until(srv.start.Add(resetAt)))
		if evict {
			p := rl.part(partKey{scheme: "http", host: "api.test"})
			getClosed(t, tr, "http://b.test/")
			getClosed(t, tr, "http://c.test/") // api.test's partition evicted
			if p == nil || !p.removed.Load() {
				t.Fatal("api.test's partition was not evicted")
			}
		}
		tr.ResetHost("api.test")
		wg.Wait()
		if hung != 1 || ok != waiters-1 {
			t.Errorf("%d calls hung, %d answered 200; want 1 hung, %d answered", hung, ok, waiters-1)
		}
	})
}
