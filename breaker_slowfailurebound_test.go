package resilient

import (
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerFailuresUnderTwoTenthsKeepInFlightWeight: a failure that
// took less than two tenths of Window does not stop the attempts in
// flight from weighing against a trip. A host that answers 200 after 25s
// to two calls in three and 503 after 4s to the third (33% failures; the
// default Window's tenth is 3s) keeps its breaker closed, as one whose
// failures come at once does. Before, a failure counted as slow when its
// attempt's start and end were two buckets apart: a 4s failure that began
// late in its bucket (one in three) did, the attempts in flight then
// weighed nothing, and the host's early failures tripped it.
func TestBreakerFailuresUnderTwoTenthsKeepInFlightWeight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n, hits atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			hits.Add(1)
			code, after := http.StatusOK, 25*time.Second
			if n.Add(1)%3 == 0 {
				code, after = http.StatusServiceUnavailable, 4*time.Second
			}
			select {
			case <-time.After(after):
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
			return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithMaxRetries(0), WithAttemptTimeout(time.Hour), WithMaxElapsed(time.Hour))
		const calls = 300 // one every 500ms, for 2.5 minutes
		refused, _ := pacedCalls(t, tr, "http://slow.test/", calls, 500*time.Millisecond)
		if refused > 5 {
			t.Errorf("%d of %d calls refused (%d reached the host), want at most 5: failures after 4s (under two tenths of the 30s window) took the weight off the slow successes in flight", refused, calls, hits.Load())
		}
	})
}
