package resilient

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRetryBudgetCanceledRetryGivesBackOnce: a retry canceled during its
// wait gives back what it paid once, not once more as its call returns: a
// budget given back twice holds a retry the host's answers never paid for,
// which the next failing call spends. With Burst 2 and one retry per call,
// four calls to a host that fails every attempt: the first spends a retry,
// the second's is canceled (given back: one left), the third spends the
// last one, and the fourth is not retried: 6 attempts in all.
func TestRetryBudgetCanceledRetryGivesBackOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{status: 503}}}
		tr := New(s, WithBackoff(time.Second, time.Second), WithMaxRetries(1), WithoutBreaker(), WithoutRateLimit(), WithRetryBudget(RetryBudget{Burst: 2}))
		get := func(ctx context.Context) { getIn(t, tr, ctx, "http://api.test/") }
		get(context.Background()) // 2 attempts: one retry spent
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(500*time.Millisecond, cancel) // during the retry's 1s wait
		if _, err := tr.RoundTrip(newRequest(t, ctx, "GET", "http://api.test/", nil)); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want the cancellation during the wait", err)
		}
		get(context.Background()) // 2 attempts: the retry given back, spent
		get(context.Background()) // 1 attempt: the budget is spent
		if n := s.numCalls(); n != 6 {
			t.Errorf("%d attempts reached the host, want 6 (2, 1, 2, 1): the canceled retry's cost given back once", n)
		}
	})
}

// TestRetryBudgetThrottledRetryGivesBackItsCost: a retry the server asked
// for (a 429) costs ThrottledCost, and gives back that much when it is not
// sent after all (its call canceled during the wait), not a whole retry: a
// budget given back more than it paid holds retries no answer paid for.
// With Burst 2: a call to a host that fails spends one retry; two calls
// answered 429 whose retries are canceled pay 0.1 each and get 0.1 back;
// the budget holds one retry, which the next failing call spends, and the
// call after it is not retried: 7 attempts in all.
func TestRetryBudgetThrottledRetryGivesBackItsCost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{
			{status: 503}, {status: 503}, // spends a retry
			{status: 429, header: http.Header{"Retry-After": {"1"}}}, // canceled
			{status: 429, header: http.Header{"Retry-After": {"1"}}}, // canceled
			{status: 503},
		}}
		tr := New(s, WithBackoff(time.Second, time.Second), WithMaxRetries(1), WithoutBreaker(), WithoutRateLimit(), WithRetryBudget(RetryBudget{Burst: 2}))
		get := func(ctx context.Context) { getIn(t, tr, ctx, "http://api.test/") }
		get(context.Background())
		for range 2 {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(500*time.Millisecond, cancel) // during the retry's wait
			if _, err := tr.RoundTrip(newRequest(t, ctx, "GET", "http://api.test/", nil)); !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want the cancellation during the wait", err)
			}
		}
		get(context.Background()) // 2 attempts: the last retry the budget holds
		get(context.Background()) // 1 attempt
		if n := s.numCalls(); n != 7 {
			t.Errorf("%d attempts reached the host, want 7 (2, 1, 1, 2, 1): a canceled throttled retry gives back what it paid", n)
		}
	})
}
