package resilient

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestKeyRequiredRetryNeedsTimeLeft: the retry of a write refused for want
// of an idempotency key goes at once, but not with less left of the call's
// budget than any retry needs (see call.leastLeft: a tenth of the 9.5s the
// host took here): the call returns the refusal, which says the write was
// not processed, with StopDeadline, and sends nothing more. Until
// 2026-12-07 it went with 0.5s left, the budget cut it after the host had
// it (which may have processed it), and the call still returned the
// refusal.
func TestKeyRequiredRetryNeedsTimeLeft(t *testing.T) {
	const required = `{"success":false,"error":{"code":"PUBLIC_API_IDEMPOTENCY_REQUIRED","message":"Idempotency-Key required"},"request_id":"r"}`
	slow := func(*http.Request) { time.Sleep(9500 * time.Millisecond) }
	for _, tc := range []struct {
		name       string
		budget     time.Duration
		wantStatus int
		wantCalls  int
		wantStop   StopReason
	}{
		{"0.5s left", 10 * time.Second, http.StatusBadRequest, 1, StopDeadline},
		{"ample time", 30 * time.Second, http.StatusOK, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &rtScript{steps: []rtStep{{status: 400, body: required, before: slow}, {status: 200, before: slow}}}
				var rep Report
				ctx := WithCallOptions(WithReport(context.Background(), &rep), WithMaxElapsed(tc.budget))
				resp, err := New(rt).RoundTrip(newRequest(t, ctx, http.MethodPut, "https://api.example.com/v1/posts/1", strings.NewReader("payload")))
				status := 0
				if err == nil {
					status = resp.StatusCode
					resp.Body.Close()
				}
				if status != tc.wantStatus || rt.numCalls() != tc.wantCalls || rep.StopReason != tc.wantStop {
					t.Errorf("PUT refused for want of a key after 9.5s: %d (%v) after %d attempts, stop reason %q; want %d after %d, %q",
						status, err, rt.numCalls(), rep.StopReason, tc.wantStatus, tc.wantCalls, tc.wantStop)
				}
			})
		})
	}
}
