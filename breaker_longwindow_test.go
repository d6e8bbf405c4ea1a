package resilient

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerLongWindowSlowSuccessesKeepHealthyHostClosed: a host that
// answers 200 after 25s to two calls in three and 500 at once to the third
// (33% failures, under the default 0.5) keeps its breaker closed with a
// long Window too, as a plain client would never refuse it. Before, the
// attempts in flight weighed against a trip only once the bucket they
// began in was past: a 5-minute Window's first bucket lasts 30s, longer
// than the successes take, and the quick failures of that bucket tripped
// the host at 27s (2 calls/s) or 6s (10 calls/s), in every closed spell.
// Controls: a host failing 70% at once still trips, and so does one that
// fails every call at once, by its MinRequests-th failure and a
// hundredth of the Window.
func TestBreakerLongWindowSlowSuccessesKeepHealthyHostClosed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		quickFail func(n int32) bool // whether the nth attempt fails at once; the others answer 200 after 25s
		wantTrip  bool
	}{
		{"33% quick failures", func(n int32) bool { return n%3 == 0 }, false},
		{"70% quick failures", func(n int32) bool { return n%10 < 7 }, true},
		{"all quick failures", func(int32) bool { return true }, true},
	} {
		for _, rate := range []int{2, 10} {
			t.Run(fmt.Sprintf("%s/%d per s", tc.name, rate), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var n, hits atomic.Int32
					base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
						hits.Add(1)
						code := http.StatusInternalServerError
						if !tc.quickFail(n.Add(1)) {
							code = http.StatusOK
							select {
							case <-time.After(25 * time.Second):
							case <-req.Context().Done():
								return nil, req.Context().Err()
							}
						}
						return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
					})
					const window = 5 * time.Minute
					tr := New(base, WithMaxRetries(0), WithAttemptTimeout(time.Hour), WithMaxElapsed(time.Hour),
						WithBreaker(BreakerSettings{Window: window}))
					every := time.Second / time.Duration(rate)
					calls := 150 * rate // 2.5 minutes of calls
					refused, at := pacedCalls(t, tr, "http://slowlong.test/", calls, every)
					switch {
					case !tc.wantTrip && refused > 5:
						t.Errorf("%d of %d calls refused from %v (%d reached the host), want at most 5: the quick failures of a host failing 1 call in 3 tripped its breaker before its slow successes landed", refused, calls, at, hits.Load())
					case tc.wantTrip && refused == 0:
						t.Errorf("%s: the host got %d of %d calls, none refused: its breaker never opened", tc.name, hits.Load(), calls)
					}
					if tc.name == "all quick failures" {
						want := time.Duration(defaultBreakerMinRequests)*every + window/100
						if at > want {
							t.Errorf("a host failing every call at once: the breaker opened at %v, want by %v", at, want)
						}
					}
				})
			})
		}
	}
}
