package resilient_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilient"
)

// A server that fails twice with 503 and then answers: the client retries
// and the caller sees only the success.
func Example() {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"service_unavailable","message":"try later"}}`)
			return
		}
		io.WriteString(w, `{"data":"ok"}`)
	}))
	defer srv.Close()

	client := resilient.NewClient(resilient.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	resp, err := client.Get(srv.URL + "/v1/posts")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", calls.Load(), "attempts")
	// Output: 200 {"data":"ok"} after 3 attempts
}
