package resilient

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingNoCopyOfACopyAnswered: once a hedged copy is answered with
// an error status, the next copy would be a retry without its backoff (of
// a 429, one inside the wait the server asked for), as after a copy that
// failed (TestHedgingNoCopyAfterACopyFailed); that holds while the
// Transport still reads the answer's body for its envelope (a body that
// trickles or stalls, up to 2 s), as it does for the attempt itself
// (TestHedgingNoCopyOfAnAttemptAnswered). A keyed write's 409 to a copy is
// no failure (TestHedgingKeyedWriteConflictSendsTheNextCopy).
func TestHedgingNoCopyOfACopyAnswered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		opts   []Option
	}{
		{name: "429, WithoutRateLimit", status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"60"}}, opts: []Option{WithoutRateLimit()}},
		{name: "429", status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"60"}}},
		{name: "503", status: http.StatusServiceUnavailable},
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
					// The copy: answered at once, its envelope's first
					// bytes, then nothing more.
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
					t.Errorf("%d after requests sent at %v; want the attempt's 200 after 2 (the attempt, one copy answered %d while its body is read)",
						resp.StatusCode, sent, tc.status)
				}
			})
		})
	}
}
