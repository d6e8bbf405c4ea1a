package resilient_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// TestRetryBudgetBreakerPredictionWrong: a retry that the breaker was
// predicted to refuse (open past the backoff) goes at once, without its
// cost taken from the retry budget; when the rate limiter then holds it
// until the breaker is half-open, it reaches the host as its probe,
// unpaid. Found by TestChaos: a host retried past its budget. Before, a
// host failing every attempt got all six attempts of the call with a budget
// of one retry; now the retry is paid for, and the call stops when the
// budget is spent.
func TestRetryBudgetBreakerPredictionWrong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hits := 0
		base := chaosRoundTripFunc(func(req *http.Request) (*http.Response, error) {
			hits++
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
				Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
		})
		tr := resilient.New(base,
			resilient.WithRetryBudget(resilient.RetryBudget{Burst: 1}),
			resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Second}),
			resilient.WithRateLimit(0.5, 1), // a retry waits 2s for its turn: past the open timeout
			resilient.WithBackoff(100*time.Millisecond, time.Second),
			resilient.WithoutHedging())
		var rep resilient.Report
		ctx := resilient.WithReport(context.Background(), &rep)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.example.com/v1/posts", nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		if want := 2; hits > want {
			t.Errorf("a host failing every attempt, with a retry budget of 1: %d attempts reached it, want at most %d (report %+v)", hits, want, rep)
		}
	})
}
