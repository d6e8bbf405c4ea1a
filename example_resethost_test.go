package resilient_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"

	"github.com/resilienthttp/resilient"
)

// A caller that knows an outage is over (its status page says so) closes
// the host's breaker with ResetHost instead of waiting for its OpenTimeout;
// BreakerState reads the breaker at any time, for a health check.
func ExampleTransport_ResetHost() {
	var down atomic.Bool
	down.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	tr := resilient.New(nil,
		resilient.WithMaxRetries(0),
		resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 1}))
	client := &http.Client{Transport: tr}
	get := func() {
		resp, err := client.Get(srv.URL + "/v1/posts")
		if err != nil {
			fmt.Println("refused:", errors.Is(err, resilient.ErrCircuitOpen))
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println("status:", resp.StatusCode)
	}

	get() // the 500 trips the breaker
	fmt.Println("breaker:", tr.BreakerState(srv.URL))
	get() // refused without reaching the server

	down.Store(false) // the outage is over
	u, _ := url.Parse(srv.URL)
	tr.ResetHost(u.Host)
	fmt.Println("breaker:", tr.BreakerState(srv.URL))
	get()
	// Output:
	// status: 500
	// breaker: open
	// refused: true
	// breaker: closed
	// status: 200
}
