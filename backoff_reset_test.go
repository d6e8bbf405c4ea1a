package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// TestBackOffIsResetBeforeUse: a BackOff of the caller's is reset before
// the call takes its first delay, as cenkalti/backoff's own Retry does
// ("Reset must be called before using b"). WithBackOff's documented
// example, which sets InitialInterval after NewExponentialBackOff (whose
// Reset read the default 500ms), waits the 200ms it asks for, and an
// ExponentialBackOff written as a literal neither stops at once (its
// elapsed time counted from the zero time) nor waits nothing (its interval
// zero) before every retry.
func TestBackOffIsResetBeforeUse(t *testing.T) {
	for name, newBO := range map[string]func() backoff.BackOff{
		"NewExponentialBackOff then InitialInterval": func() backoff.BackOff {
			b := backoff.NewExponentialBackOff()
			b.InitialInterval = 200 * time.Millisecond
			b.RandomizationFactor, b.Multiplier = 0, 2
			return b
		},
		"literal": func() backoff.BackOff {
			return &backoff.ExponentialBackOff{
				InitialInterval: 200 * time.Millisecond,
				Multiplier:      2,
				MaxInterval:     time.Second,
				MaxElapsedTime:  time.Minute,
				Stop:            backoff.Stop,
				Clock:           backoff.SystemClock,
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: 503}, {status: 503}, {status: 200}}}
				tr := New(s, WithBackOff(newBO), WithoutRateLimit(), WithoutBreaker())
				resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "http://api.test/", nil))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || s.numCalls() != 3 {
					t.Fatalf("status %d after %d attempts, want 200 after 3", resp.StatusCode, s.numCalls())
				}
				if d := s.call(1).at.Sub(s.call(0).at); d != 200*time.Millisecond {
					t.Errorf("first delay %v, want the BackOff's InitialInterval 200ms", d)
				}
				if d := s.call(2).at.Sub(s.call(1).at); d != 400*time.Millisecond {
					t.Errorf("second delay %v, want 400ms", d)
				}
			})
		})
	}
}
