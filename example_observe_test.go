package resilient_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilient"
)

// Count retries per host with an observer, for a metrics system, without
// parsing logs.
func ExampleWithObserver() {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusBadGateway) // every other attempt fails
		}
	}))
	defer srv.Close()

	var mu sync.Mutex
	retries := map[string]int{} // host → retries
	client := resilient.NewClient(
		resilient.WithBackoff(time.Millisecond, 10*time.Millisecond),
		resilient.WithObserver(func(a resilient.Attempt) {
			if a.Number > 1 {
				mu.Lock()
				retries[a.Host]++
				mu.Unlock()
			}
		}),
	)
	for i := 0; i < 3; i++ {
		resp, err := client.Get(srv.URL + "/v1/usage")
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Println("retries:", retries[srv.Listener.Addr().String()])
	// Output: retries: 3
}

// Log every attempt with log/slog. Records carry the method, host, path
// (never the query), status, envelope code, request id, idempotency key,
// rate-limit values, outcome, wait and duration; never a credential or a
// body. (This example drops the attributes that change from run to run.)
func ExampleWithLogger() {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":"service_unavailable","message":"down"}}`)
		}
	}))
	defer srv.Close()

	drop := map[string]bool{"time": true, "host": true, "duration": true, "delay": true, "ratelimit_reset": true, "local_wait": true}
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if drop[a.Key] {
				return slog.Attr{}
			}
			return a
		},
	}))
	client := resilient.NewClient(resilient.WithLogger(logger), resilient.WithBackoff(time.Millisecond, time.Millisecond))
	resp, err := client.Get(srv.URL + "/v1/posts?api_key=never-logged")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	// Output:
	// level=WARN msg="resilient: attempt failed, retrying" method=GET path=/v1/posts attempt=1 max_attempts=6 status=503 code=service_unavailable outcome=transient
	// level=INFO msg="resilient: call succeeded after retries" method=GET path=/v1/posts attempt=2 max_attempts=6 status=200 outcome=success
}
