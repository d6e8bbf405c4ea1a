package resilient

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgeCopyNeedsTimeLeft: a hedged copy is not sent with less left of
// the call's budget than a retry would need after an attempt as long as
// the hedging delay (see call.leastLeft: 1ms at least): it would be cut
// before the host could answer it, which still does the work, and the
// copy costs the host's hedge allowance and retry budget for nothing.
// Until 2026-12-07 a copy went whenever the deadline had not passed, with
// 1ms left here. With time left, the copy goes and overtakes the slow
// attempt.
func TestHedgeCopyNeedsTimeLeft(t *testing.T) {
	for _, tc := range []struct {
		name       string
		delay      time.Duration
		wantStatus int
		wantSent   int
	}{
		{"1ms left", 999 * time.Millisecond, 0, 1},
		{"ample time", 500 * time.Millisecond, http.StatusOK, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := slowFirst() // the attempt hangs, a copy answers in 10ms
				tr := New(rt, WithHedging(Hedging{Delay: tc.delay}))
				ctx := WithCallOptions(context.Background(), WithMaxElapsed(time.Second))
				resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, "http://api.test/", nil))
				status := 0
				if err == nil {
					status = resp.StatusCode
					resp.Body.Close()
				} else if !errors.Is(err, ErrAttemptTimeout) {
					t.Errorf("RoundTrip: %v, want the budget's timeout", err)
				}
				synctest.Wait()
				if status != tc.wantStatus || rt.count() != tc.wantSent {
					t.Errorf("a copy due %v into a 1s budget: status %d (%v) after %d requests; want %d after %d",
						tc.delay, status, err, rt.count(), tc.wantStatus, tc.wantSent)
				}
			})
		})
	}
}
