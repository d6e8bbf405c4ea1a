package resilient

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestRetryBudgetRefusalRetriedPays: as RetryBudget says, a retry that the
// breaker refuses and a Classifier retries all the same is paid for as any
// retry, unless the Transport sent it at once because it foresaw the
// refusal; the last, refused as the call ends, gives back what it paid.
// The first call's retry, decided while the breaker was closed, finds it
// opened by the second call during its wait: a refusal not foreseen, then
// two more, the last ending the call (2 paid); the second call's first
// retry is foreseen (given back), its next two as the first call's (1
// paid). The doc said only that a refused retry gives back what it spent.
func TestRetryBudgetRefusalRetriedPays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int64
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			hits.Add(1)
			return &http.Response{StatusCode: 500, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base,
			WithBreaker(BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: time.Hour}),
			WithClassifier(func(_ *http.Response, _ *APIError, err error, def Class) Class {
				if errors.Is(err, ErrCircuitOpen) {
					return Transient
				}
				return def
			}),
			WithBackoff(time.Second, time.Second), WithMaxRetries(3),
			WithoutRateLimit(), WithoutHedging(),
			WithRetryBudget(RetryBudget{Burst: 100, Ratio: 1e-6}))
		const url = "http://api.test/"
		get := func() {
			if resp, err := tr.RoundTrip(newRequest(t, t.Context(), "GET", url, nil)); err == nil {
				resp.Body.Close()
			}
		}
		done := make(chan struct{})
		go func() { defer close(done); get() }()
		time.Sleep(100 * time.Millisecond) // the first call waits for its retry
		get()
		<-done
		st, err := tr.HostState(newRequest(t, t.Context(), "GET", url, nil))
		if err != nil {
			t.Fatal(err)
		}
		if spent := 100 - st.RetryBudget; hits.Load() != 2 || spent != 3 {
			t.Errorf("%d requests sent, the budget spent %v; want 2 sent and 3 paid (the refusals retried, but the one foreseen)", hits.Load(), spent)
		}
	})
}
