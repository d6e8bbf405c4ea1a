package resilient

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitPauseEndingAtTheDeadlineFailsFast: a call whose deadline
// is the very end of its host's pause (a 429's Retry-After: 30, the call's
// timeout or WithMaxElapsed budget 30s) could start no earlier than its
// deadline, when it has no time left: it is refused at once, as one whose
// deadline comes before the end is (TestRateLimitDeadlineFailsFast), not
// held the 30s to fail then.
func TestRateLimitPauseEndingAtTheDeadlineFailsFast(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		opts    []Option
	}{
		{"context", 30 * time.Second, nil},
		{"call budget", 0, []Option{WithMaxElapsed(30 * time.Second)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				client := &http.Client{Transport: New(handlerRT{throttledOnce("30")}, append([]Option{WithMaxRetries(0)}, tc.opts...)...)}
				if code, _ := do(t, client, "GET", "http://api.test/v1/posts"); code != 429 {
					t.Fatalf("first read: %d, want 429", code)
				}
				ctx := context.Background()
				if tc.timeout > 0 {
					ctx = timeoutCtx(t, tc.timeout)
				}
				start := time.Now()
				resp, err := client.Do(newRequest(t, ctx, "GET", "http://api.test/v1/posts", nil))
				if resp != nil {
					resp.Body.Close()
				}
				if !errors.Is(err, ErrRateLimited) {
					t.Errorf("err = %v, want ErrRateLimited", err)
				}
				if d := time.Since(start); d != 0 {
					t.Errorf("failed after %v, want at once", d)
				}
			})
		})
	}
}
