package resilient_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/resilienthttp/resilient"
)

// A caller that skips optional work while its quota at a host runs low:
// the server announces the quota of the request's credential on every
// response, and HostState reads what the Transport learned from it.
func ExampleTransport_HostState() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Limit", "60")
		w.Header().Set("X-RateLimit-Remaining", "3")
		w.Header().Set("X-RateLimit-Reset", "30")
		io.WriteString(w, `{"data":[]}`)
	}))
	defer srv.Close()

	tr := resilient.New(nil)
	client := &http.Client{Transport: tr}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/posts", nil)
	req.Header.Set("Authorization", "Bearer tenant-42") // the quota is this credential's
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	s, err := tr.HostState(req) // any request with the same host and credential

	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Printf("breaker %v, reads %d of %d left, %.0f retries in the budget\n",
		s.Breaker, s.Reads.Remaining, s.Reads.Limit, s.RetryBudget)
	if s.Reads.Remaining >= 0 && s.Reads.Remaining < 10 {
		fmt.Println("skipping the prefetch: the quota is for the calls that matter")
	}
	// Output:
	// breaker closed, reads 3 of 60 left, 10 retries in the budget
	// skipping the prefetch: the quota is for the calls that matter
}
