package resilient

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingNoCopyAfterACopyFailed checks that once a hedged copy is
// answered with a failure (a 429 that asks for a minute's wait, a 503),
// no further copy of the attempt is sent, as none is once the attempt
// itself failed: the next copy would be a retry without its backoff, and
// of a 429, one inside the wait the server asked for (with
// WithoutRateLimit, no pause of the rate limiter holds it). The copies
// sent may still answer, and the attempt too. (With MaxHedges 3, the
// copies went on one delay apart whatever the earlier ones were
// answered: four requests where the server had asked for a minute's
// rest after the second.) That holds while the Transport still reads the
// answer's body for its envelope (stalled: a body that trickles or stalls,
// up to 2 s), as it does for the attempt itself
// (TestHedgingNoCopyOfAnAttemptAnswered); before, the copies went on
// meanwhile. A keyed write's 409 to a copy is no failure
// (TestHedgingKeyedWriteConflictSendsTheNextCopy).
func TestHedgingNoCopyAfterACopyFailed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		opts   []Option
		// stalled: the copy's answer sends its envelope's first bytes,
		// then nothing more.
		stalled bool
	}{
		{name: "429, WithoutRateLimit", status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"60"}}, opts: []Option{WithoutRateLimit()}},
		{name: "503", status: http.StatusServiceUnavailable},
		{name: "429, WithoutRateLimit, stalled", status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"60"}}, opts: []Option{WithoutRateLimit()}, stalled: true},
		{name: "429, stalled", status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"60"}}, stalled: true},
		{name: "503, stalled", status: http.StatusServiceUnavailable, stalled: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var sent []time.Duration
				t0 := time.Now()
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					i := len(sent)
					sent = append(sent, time.Since(t0))
					mu.Unlock()
					if i == 0 { // the attempt itself: slow, then answered
						time.Sleep(200 * time.Millisecond)
						return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
					}
					if !tc.stalled {
						return &http.Response{StatusCode: tc.status, Header: tc.header.Clone(), Body: http.NoBody, Request: req}, nil
					}
					h := tc.header.Clone()
					if h == nil {
						h = http.Header{}
					}
					h.Set("Content-Type", "application/json")
					return &http.Response{StatusCode: tc.status, Header: h,
						Body: newStallBody(req.Context(), `{"error":{"code":"x",`), ContentLength: -1, Request: req}, nil
				})
				opts := append([]Option{WithHedging(Hedging{Delay: 20 * time.Millisecond, MaxHedges: 3})}, tc.opts...)
				tr := New(rt, opts...)
				resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				synctest.Wait()
				mu.Lock()
				defer mu.Unlock()
				if resp.StatusCode != http.StatusOK || len(sent) != 2 {
					t.Errorf("%d after requests sent at %v; want the attempt's 200 after 2 (the attempt, one copy answered %s)",
						resp.StatusCode, sent, strconv.Itoa(tc.status))
				}
			})
		})
	}
}
