package resilient

import (
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestWriteRetryNeedKeepsTheSpreadOut: a Retry-After's spread is dropped
// when it, not the server's wait, would leave a write's retry less than it
// needs (what the host took to answer the attempt, as
// TestWriteRetryNeedsTimeToBeAnswered says), as it is dropped when it
// would pass the deadline: the spread is the client's own, and never turns
// a retry that has time into a refusal. A host answering in 20ms with a
// 429 and Retry-After: 2, and 2.23s left to the call: with the widest
// spread (200ms) the retry would start at 2.22s with 10ms left; without
// it, at 2.02s, and it is answered.
func TestWriteRetryNeedKeepsTheSpreadOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		answer := func(*http.Request) { time.Sleep(20 * time.Millisecond) }
		s := &rtScript{steps: []rtStep{
			{status: 429, header: http.Header{"Retry-After": {"2"}}, before: answer},
			{status: 201, before: answer},
		}}
		tr := New(s, WithoutRateLimit(), WithoutBreaker(), withRand(func(n int64) int64 { return n - 1 }))
		ctx := timeoutCtx(t, 2230*time.Millisecond)
		resp, err := roundTrip(t, tr, newRequest(t, ctx, "POST", "http://api.test/v1/posts", strings.NewReader(`{"content":"hello"}`)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 || s.numCalls() != 2 {
			t.Fatalf("%d after %d attempts, want 201 after 2", resp.StatusCode, s.numCalls())
		}
		if d := s.call(1).at.Sub(s.call(0).at); d != 2020*time.Millisecond {
			t.Errorf("retried %v after the first attempt, want 2.02s (20ms to answer, Retry-After's 2s, no spread)", d)
		}
	})
}
