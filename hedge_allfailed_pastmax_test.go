package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingAllFailedSiblingsWaitPastTheBound: when every copy of a hedged
// attempt failed, a copy's 503 whose Retry-After is past WithMaxRetryAfter
// does not decide the attempt over the attempt's own 503: the call would
// not wait for it (a 503's wait that long is not believed: the rate
// limiter pauses nothing for it), so it ended the call at once
// (StopRetryAfterTooLong) where the attempt's own answer, as without
// hedging, is retried after its backoff and succeeds.
func TestHedgingAllFailedSiblingsWaitPastTheBound(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"rate limiter on", nil},
		{"rate limiter off", []Option{WithoutRateLimit()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc := &rtScript{steps: []rtStep{
					// The attempt itself, answered after its copy.
					{status: 503, body: "busy", before: func(*http.Request) { time.Sleep(100 * time.Millisecond) }},
					// Its copy, sent at 10ms: a wait past the bound.
					{status: 503, header: http.Header{"Retry-After": {"3600"}}, body: "down for maintenance"},
					{status: 200, body: "ok"},
				}}
				opts := append([]Option{WithBackoff(time.Millisecond, time.Millisecond),
					WithHedging(Hedging{Delay: 10 * time.Millisecond, MaxHedges: 1})}, tc.opts...)
				var r Report
				resp, err := New(sc, opts...).RoundTrip(newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/", nil))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 || sc.numCalls() != 3 {
					t.Errorf("%d after %d requests (stop reason %q), want 200 after 3: a copy's wait past WithMaxRetryAfter ended the call that its attempt's own 503 retries", resp.StatusCode, sc.numCalls(), r.StopReason)
				}
			})
		})
	}
}
