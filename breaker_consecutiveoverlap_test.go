package resilient

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerConsecutiveSlowSuccesses: a host that answers 200 after 25s
// to two calls in three, and 500 at once to the third, called twice a
// second, keeps its breaker closed with ConsecutiveFailures 5 or 10 (and a
// MinRequests the ratio never reaches). Before, no success landed for
// 25s, the quick failures came "in a row" meanwhile, and each closed
// spell tripped at its fifth (tenth) failure. A host that hangs 60% of
// its attempts and fails the others at once still trips, once its first
// Window's attempts no longer stand between its failures.
func TestBreakerConsecutiveSlowSuccesses(t *testing.T) {
	for _, consecutive := range []int{5, 10} {
		for _, tc := range []struct {
			name      string
			quickFail func(n int32) bool // whether the nth attempt fails at once; the others are slow
			slow      time.Duration      // how long a slow attempt takes to answer 200 (0: it hangs)
			wantTrip  bool
		}{
			{"33% quick failures, slow successes", func(n int32) bool { return n%3 == 0 }, 25 * time.Second, false},
			{"40% quick failures, 60% hang", func(n int32) bool { return n%10 < 4 }, 0, true},
		} {
			t.Run(fmt.Sprintf("%d/%s", consecutive, tc.name), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var n, hits atomic.Int32
					base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
						hits.Add(1)
						code := http.StatusInternalServerError
						if !tc.quickFail(n.Add(1)) {
							code = http.StatusOK
							var answer <-chan time.Time // nil: hangs
							if tc.slow > 0 {
								answer = time.After(tc.slow)
							}
							select {
							case <-answer:
							case <-req.Context().Done():
								return nil, req.Context().Err()
							}
						}
						return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
					})
					tr := New(base, WithMaxRetries(0), WithAttemptTimeout(time.Hour), WithMaxElapsed(time.Hour),
						WithBreaker(BreakerSettings{ConsecutiveFailures: consecutive, MinRequests: 1000}))
					const calls = 300 // one every 500ms, for 2.5 minutes
					var wg sync.WaitGroup
					var refused atomic.Int32
					for range calls {
						wg.Go(func() {
							if _, _, err := bkCall(t, tr, "http://slow.test/"); errors.Is(err, ErrCircuitOpen) {
								refused.Add(1)
							}
						})
						time.Sleep(500 * time.Millisecond)
					}
					wg.Wait()
					switch {
					case tc.wantTrip && (refused.Load() == 0 || hits.Load() >= calls):
						t.Errorf("%s: the host got %d of %d calls, %d refused: its breaker never opened", tc.name, hits.Load(), calls, refused.Load())
					case !tc.wantTrip && refused.Load() > 5:
						t.Errorf("ConsecutiveFailures %d: %d of %d calls refused (%d reached the host), want at most 5: the quick failures of a host failing 1 call in 3 came in a row before its slow successes landed", consecutive, refused.Load(), calls, hits.Load())
					}
				})
			})
		}
	}
}

// TestBreakerConsecutiveAfterHang: a host that fails every call at once
// trips its breaker after exactly ConsecutiveFailures failures, as
// before, whether or not an attempt it hangs, begun before them, is still
// in flight: an attempt in flight stands between the failures that began
// before it and those that began after it, never in front of the latter.
func TestBreakerConsecutiveAfterHang(t *testing.T) {
	for _, consecutive := range []int{1, 5, 10} {
		for _, hang := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/hang=%v", consecutive, hang), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					h := bkDead()
					hung := new(bkHost)
					hung.wait = make(chan struct{})
					tr := New(bkNet{"api.test": h, "api.test:80": hung}, WithMaxRetries(0), WithAttemptTimeout(time.Hour), WithMaxElapsed(time.Hour),
						WithBreaker(BreakerSettings{ConsecutiveFailures: consecutive, MinRequests: 1000}))
					var wg sync.WaitGroup
					if hang {
						wg.Go(func() { bkCall(t, tr, "http://api.test:80/") }) // the same breaker, held until the end
						time.Sleep(5 * time.Second)                            // a tenth of Window and more
					}
					for i := range consecutive + 3 {
						_, _, err := bkCall(t, tr, "http://api.test/")
						if got := int(h.hits.Load()); i >= consecutive && !errors.Is(err, ErrCircuitOpen) {
							t.Errorf("call %d after %d failures in a row (%d hits): err %v, want ErrCircuitOpen", i+1, consecutive, got, err)
						}
						time.Sleep(500 * time.Millisecond)
					}
					if got := int(h.hits.Load()); got != consecutive {
						t.Errorf("the host got %d calls, want %d: the breaker trips after ConsecutiveFailures failures in a row", got, consecutive)
					}
					close(hung.wait)
					wg.Wait()
				})
			})
		}
	}
}

// TestClosedWindowRunBefore: the failures of a run that began no later
// than the newest earlier bucket an attempt in flight began in (of the
// spell's first Window) do not count in a row while it is in flight; those
// that began after it do, and all do once it has ended. A success begins a new run, which the old run's
// failures do not count in.
func TestClosedWindowRunBefore(t *testing.T) {
	s := newBreakerSet(BreakerSettings{ConsecutiveFailures: 3, MinRequests: 1000}, nil, nil)
	w := new(closedWindow)
	w.reset(0, s.period)
	run := func(now uint64) uint64 {
		_, _, c := w.counts(now)
		return c
	}
	p := w.inFlightWord(nil, 1)
	p.Add(1)        // began in bucket 1, still in flight
	w.failure(0, 1) // quick failures: one that took two buckets or more
	w.failure(1, 2) // in flight would make those in flight weigh nothing
	w.failure(2, 2) // (TestBreakerDeadHostTripsAtItsFirstTimeouts)
	if got := run(2); got != 1 || s.tripped(w, 2) {
		t.Errorf("failures begun in buckets 0, 1 and 2, an attempt in flight since 1: run %d (tripped %v), want 1, not tripped", got, s.tripped(w, 2))
	}
	w.failure(2, 3)
	w.failure(3, 3)
	if got := run(3); got != 3 || !s.tripped(w, 3) {
		t.Errorf("and two begun after it: run %d (tripped %v), want 3, tripped", got, s.tripped(w, 3))
	}
	p.Add(-1)
	if got := run(3); got != 5 {
		t.Errorf("once the attempt in flight has ended: run %d, want 5", got)
	}
	p.Add(1)
	w.success(nil, 3, 3)
	q := w.inFlightWord(nil, 3)
	q.Add(1) // began in bucket 3, still in flight
	w.failure(3, 4)
	if got := run(4); got != 0 {
		t.Errorf("after a success, a failure begun in bucket 3: run %d, want 0 (the attempt since 3 stands in front of it)", got)
	}
	w.failure(4, 4)
	if got := run(4); got != 1 {
		t.Errorf("and one begun in bucket 4: run %d, want 1 (the old run's failures count in the new one)", got)
	}
	w.failure(2, 4) // two buckets in flight: those in flight weigh nothing
	if got := run(4); got != 3 {
		t.Errorf("and one that failed after two buckets in flight: run %d, want 3", got)
	}
}
