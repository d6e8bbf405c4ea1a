package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitThrottledResponseKeepsTheWindow: a host whose hourly quota
// of 60 rolls (its resets are those of its oldest request: close at hand
// under a steady load, and never confirming the hour) answers a 429 or a
// 503 that carries a Retry-After and no quota's count, or the limit alone.
// Such an answer confirms no window, but says no more that the quota is
// not in use than that it is: a 429 says it is spent. The hour learned
// stays, as it does for the answers before it that say more than half of
// the quota is used, and so does its pace; the next answer's reset, two
// minutes ahead, is no window. (Dropped as though at least half of the
// quota were left, the window was estimated anew from that reset: a pace
// of 60 every two minutes, thirty times the host's quota.)
func TestRateLimitThrottledResponseKeepsTheWindow(t *testing.T) {
	quota := func(remaining, reset string) http.Header {
		return http.Header{"X-Ratelimit-Limit": {"60"}, "X-Ratelimit-Remaining": {remaining}, "X-Ratelimit-Reset": {reset}}
	}
	for _, tc := range []struct {
		name string
		step rtStep
	}{
		{"a 429 with a Retry-After alone", rtStep{status: 429, header: http.Header{"Retry-After": {"1"}}}},
		{"a 429 with the limit alone", rtStep{status: 429, header: http.Header{"Retry-After": {"1"}, "X-Ratelimit-Limit": {"60"}}}},
		{"a 503 with a Retry-After alone", rtStep{status: 503, header: http.Header{"Retry-After": {"1"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The hour, from its first request; then, every ten
				// minutes for 70, a quota in use whose oldest request
				// is back in two minutes; then tc's answer, and one
				// more like those before it.
				steps := []rtStep{{status: 200, header: quota("59", "3600")}}
				waits := []time.Duration{0}
				for range 7 {
					steps = append(steps, rtStep{status: 200, header: quota("5", "120")})
					waits = append(waits, 10*time.Minute)
				}
				steps = append(steps, tc.step, rtStep{status: 200, header: quota("4", "120")})
				waits = append(waits, time.Minute, 2*time.Second)
				s := &rtScript{steps: steps}
				tr := New(s, WithMaxRetries(0), WithoutBreaker())
				hourly := paceShare * 60 / time.Hour.Seconds()
				for i, wait := range waits {
					time.Sleep(wait)
					req := newRequest(t, context.Background(), http.MethodGet, "http://api.test/x", nil)
					if resp, err := roundTrip(t, tr, req); err == nil {
						resp.Body.Close()
					}
					hs, err := tr.HostState(req)
					if err != nil {
						t.Fatal(err)
					}
					if hs.Reads.Rate != hourly {
						t.Errorf("after answer %d (%d in all): a pace of %v a second (%v an hour); want the hour's, %v", i, s.numCalls(), hs.Reads.Rate, hs.Reads.Rate*3600, hourly)
					}
				}
			})
		})
	}
}
