package resilient_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/resilienthttp/resilient"
)

// A host that died: after three failures in a row its breaker opens, and
// the calls that follow fail at once, without reaching the host, until the
// breaker lets a probe through.
func ExampleWithBreaker() {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "database unreachable", http.StatusInternalServerError)
	}))
	defer srv.Close()

	client := resilient.NewClient(
		resilient.WithMaxRetries(0),
		resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 3}),
		resilient.WithBreakerObserver(func(c resilient.BreakerChange) {
			fmt.Println("breaker", c.From, "->", c.To)
		}),
	)
	for i := 1; i <= 5; i++ {
		resp, err := client.Get(srv.URL + "/v1/posts")
		if errors.Is(err, resilient.ErrCircuitOpen) {
			fmt.Printf("call %d: failed fast, the circuit is open\n", i)
			continue
		}
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		resp.Body.Close()
		fmt.Printf("call %d: %d\n", i, resp.StatusCode)
	}
	fmt.Println("the server saw", hits.Load(), "calls")
	// Output:
	// call 1: 500
	// call 2: 500
	// breaker closed -> open
	// call 3: 500
	// call 4: failed fast, the circuit is open
	// call 5: failed fast, the circuit is open
	// the server saw 3 calls
}

// A host whose answers are 200s while it is degraded, as a header says:
// IsFailure counts them as failures, so that the breaker opens on them as
// it does on 5xx.
func ExampleBreakerSettings_isFailure() {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("X-Degraded", "true") // served from a stale replica
		fmt.Fprint(w, `{"data":[]}`)
	}))
	defer srv.Close()

	client := resilient.NewClient(
		resilient.WithBreaker(resilient.BreakerSettings{
			ConsecutiveFailures: 2,
			IsFailure: func(resp *http.Response, apiErr *resilient.APIError, err error, def bool) bool {
				return def || resp != nil && resp.Header.Get("X-Degraded") == "true"
			},
		}),
	)
	for i := 1; i <= 3; i++ {
		resp, err := client.Get(srv.URL + "/v1/posts")
		if errors.Is(err, resilient.ErrCircuitOpen) {
			fmt.Printf("call %d: failed fast, the circuit is open\n", i)
			continue
		}
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		resp.Body.Close()
		fmt.Printf("call %d: %d\n", i, resp.StatusCode)
	}
	fmt.Println("the server saw", hits.Load(), "calls")
	// Output:
	// call 1: 200
	// call 2: 200
	// call 3: failed fast, the circuit is open
	// the server saw 2 calls
}
