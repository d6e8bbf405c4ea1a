package resilient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestSlowObserverRetryPastDeadlineKeepsTheAnswer: the retry decided after
// a 503 with Retry-After: 1 fitted before the context's deadline, but an
// observer (a synchronous export) then took most of what was left. The
// wait for the retry would pass the deadline: the call gives up at once
// and returns the 503, as a plain client does, rather than wait into the
// deadline and fail with it, the server's answer thrown away.
func TestSlowObserverRetryPastDeadlineKeepsTheAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			hits.Add(1)
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {"1"}},
				Body: io.NopCloser(strings.NewReader("busy")), Request: r}, nil
		})
		var observed atomic.Int32
		tr := New(base, WithMaxRetries(3), WithoutRateLimit(),
			WithObserver(func(Attempt) {
				if observed.Add(1) == 1 {
					time.Sleep(9500 * time.Millisecond)
				}
			}))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var rep Report
		t0 := time.Now()
		resp, err := tr.RoundTrip(newRequest(t, WithReport(ctx, &rep), "GET", "http://api.test/v1/items", nil))
		took := time.Since(t0)
		if err != nil {
			t.Fatalf("RoundTrip after %v: err = %v (server hit %d times); want the 503, as a plain client returns it", took, err, hits.Load())
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || hits.Load() != 1 || took != 9500*time.Millisecond || rep.StopReason != StopDeadline {
			t.Errorf("status %d after %v, %d hits, stop reason %q; want the 503 at once after the observer (9.5s), 1 hit, %q",
				resp.StatusCode, took, hits.Load(), rep.StopReason, StopDeadline)
		}
	})
}
