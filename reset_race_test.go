package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// resetOnBackOff is a BackOff that, on its first delay, runs reset: a
// ResetHost that another goroutine makes at the moment the retry loop
// decides on its retry, after the attempt's 429 was answered and its pause
// learned, before the wait for its Retry-After begins.
type resetOnBackOff struct{ reset func() }

func (b *resetOnBackOff) NextBackOff() time.Duration {
	if b.reset != nil {
		b.reset()
		b.reset = nil
	}
	return time.Second
}

func (b *resetOnBackOff) Reset() {}

// TestResetHostBetweenAnswerAndRetryAfterWait: a ResetHost made after a
// 429's Retry-After was answered, while its call decides on its retry, ends
// the wait for that Retry-After as it ends the pause the rate limiter
// learned from it: the call retries at once. (It waited the whole 50 s: the
// call took the reset signal that follows the reset, once it was made.)
func TestResetHostBetweenAnswerAndRetryAfterWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{status: 429, header: http.Header{"Retry-After": {"50"}}}, {status: 200}}}
		var tr *Transport
		tr = New(s, withRand(func(int64) int64 { return 0 }), WithBackOff(func() backoff.BackOff {
			return &resetOnBackOff{reset: func() {
				done := make(chan struct{})
				go func() { // another goroutine's ResetHost, as an operator's
					defer close(done)
					tr.ResetHost("api.test")
				}()
				<-done
			}}
		}))
		start := time.Now()
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "https://api.test/x", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || time.Since(start) != 0 {
			t.Errorf("call: %d after %v; want 200 at once: the host was reset after its 429", resp.StatusCode, time.Since(start))
		}
		if s.numCalls() != 2 {
			t.Errorf("attempts: %d, want 2", s.numCalls())
		}
	})
}
