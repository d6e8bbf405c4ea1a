package resilient_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// Change the options of one call, and read what each call did from its
// Report, successes included.
func ExampleWithCallOptions() {
	srv := resilienttest.NewServer(resilienttest.Altyaa,
		resilienttest.WithScript(resilienttest.RouteListPosts, resilienttest.Respond(503), resilienttest.Respond(503)))
	defer srv.Close()
	client := &http.Client{Transport: resilient.New(srv.Transport(), resilient.WithBackoff(time.Millisecond, time.Millisecond))}

	list := func(ctx context.Context) {
		var r resilient.Report
		req, _ := http.NewRequestWithContext(resilient.WithReport(ctx, &r), http.MethodGet, srv.URL+"/v1/posts", nil)
		resp, err := client.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Printf("%d after %d attempt(s), outcome %s", resp.StatusCode, r.Attempts, r.Outcome)
		if r.StopReason != "" {
			fmt.Printf(", not retried: %s", r.StopReason)
		}
		fmt.Println()
	}
	// Exactly one attempt for this call: its 503 is returned.
	list(resilient.WithCallOptions(context.Background(), resilient.WithMaxRetries(0)))
	// The Transport's own options for the next one: its 503 is retried.
	list(context.Background())
	// Output:
	// 503 after 1 attempt(s), outcome transient, not retried: max_attempts
	// 200 after 2 attempt(s), outcome success
}

// A Report tells what one call did, successes included: here a call that
// http.Client redirects, whose second hop is retried once, is reported
// whole, its hops added up.
func ExampleWithReport() {
	var fails atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/old":
			http.Redirect(w, r, "/v1/posts", http.StatusFound)
		case fails.Add(1) == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	client := resilient.NewClient(resilient.WithBackoff(time.Millisecond, time.Millisecond))

	var r resilient.Report
	req, _ := http.NewRequestWithContext(resilient.WithReport(context.Background(), &r), http.MethodGet, srv.URL+"/v1/old", nil)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Printf("status %d, outcome %s: %d attempts, %d redirect, waited: %v\n",
		r.StatusCode, r.Outcome, r.Attempts, r.Redirects, r.Waited > 0)
	// Output: status 200, outcome success: 3 attempts, 1 redirect, waited: true
}
