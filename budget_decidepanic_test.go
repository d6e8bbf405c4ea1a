package resilient

import (
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// secondPanicBackOff waits 1s before the first retry and panics when asked
// for the wait before the second.
type secondPanicBackOff struct{ n int }

func (b *secondPanicBackOff) NextBackOff() time.Duration {
	if b.n++; b.n > 1 {
		panic("backoff exploded")
	}
	return time.Second
}

func (b *secondPanicBackOff) Reset() { b.n = 0 }

// TestRetryBudgetDecidePanicGivesBack: a retry paid for and then refused by
// a layer of the chain (the breaker, forecast to be open when the wait
// ends), never sent, gives back what it paid when the decision after its
// refusal panics (a BackOff's, a function that keys a layer), as it does
// when the call ends without one: the budget is as full as before the
// call. Before, the loop had cleared what was paid before the decision,
// and the deferred recovery never saw it: the retry's cost was lost.
func TestRetryBudgetDecidePanicGivesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{status: 500}}}
		tr := New(s,
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Minute}),
			WithBackOff(func() backoff.BackOff { return new(secondPanicBackOff) }),
			WithClassifier(func(_ *http.Response, _ *APIError, err error, def Class) Class {
				if errors.Is(err, ErrCircuitOpen) {
					return Transient
				}
				return def
			}),
			WithoutRateLimit(),
			WithRetryBudget(RetryBudget{Burst: 10}))
		budget := func() float64 {
			st, err := tr.HostState(newRequest(t, t.Context(), "GET", "http://api.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			return st.RetryBudget
		}
		before := budget()
		mustPanic(t, "the BackOff's panic did not reach the caller", func() {
			if resp, err := tr.RoundTrip(newRequest(t, t.Context(), "GET", "http://api.test/", nil)); err == nil {
				resp.Body.Close()
			}
		})
		if n := s.numCalls(); n != 1 {
			t.Fatalf("%d attempts reached the host, want 1 (the retry refused by the open breaker)", n)
		}
		if after := budget(); after != before {
			t.Errorf("the host's retry budget holds %v after the call, want %v: the refused retry gives back what it paid", after, before)
		}
	})
}
