package resilient_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilient"
)

// Bound the retries of a host as a share of its traffic: against a host
// that fails every attempt, a budget of 2 retries pays for the first
// call's retries, and the next call makes one attempt, whatever its own
// WithMaxRetries allows, and returns its 503 with the reason.
func ExampleWithRetryBudget() {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	client := resilient.NewClient(
		resilient.WithRetryBudget(resilient.RetryBudget{Burst: 2}),
		resilient.WithBackoff(time.Millisecond, time.Millisecond),
		resilient.WithoutBreaker(), // the budget alone, for the example
	)
	for range 2 {
		var r resilient.Report
		req, _ := http.NewRequestWithContext(resilient.WithReport(context.Background(), &r), http.MethodGet, srv.URL+"/v1/posts", nil)
		before := hits.Load()
		resp, err := client.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Printf("%d after %d request(s), stopped: %s\n", resp.StatusCode, hits.Load()-before, r.StopReason)
	}
	// Output:
	// 503 after 3 request(s), stopped: retry_budget
	// 503 after 1 request(s), stopped: retry_budget
}
