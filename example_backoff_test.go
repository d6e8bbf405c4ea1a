package resilient_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/resilienthttp/resilient"
)

// Take the delays between attempts from a backoff.BackOff of your own:
// here a constant 1ms, two retries at most; its backoff.Stop ends the
// call's retries.
func ExampleWithBackOff() {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()

	client := resilient.NewClient(resilient.WithBackOff(func() backoff.BackOff {
		return backoff.WithMaxRetries(backoff.NewConstantBackOff(time.Millisecond), 2) // a new one per call
	}))
	var r resilient.Report
	req, _ := http.NewRequestWithContext(resilient.WithReport(context.Background(), &r), http.MethodGet, srv.URL+"/v1/posts", nil)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Printf("%d after %d requests, stopped: %s\n", resp.StatusCode, hits.Load(), r.StopReason)
	// Output:
	// 502 after 3 requests, stopped: backoff_stop
}
