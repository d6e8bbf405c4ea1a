package resilient_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/resilienthttp/resilient"
)

// A client that sends at most 2 requests at once to each host: 10
// goroutines call a slow host at the same time, the server never sees
// more than 2 of them at once, and every call succeeds, the others
// waiting for a slot in turn.
func ExampleWithMaxInFlight() {
	var mu sync.Mutex
	now, most := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		now++
		most = max(most, now)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		now--
		mu.Unlock()
		io.WriteString(w, `{"data":"ok"}`)
	}))
	defer srv.Close()

	client := resilient.NewClient(resilient.WithMaxInFlight(2))
	var wg sync.WaitGroup
	var okMu sync.Mutex
	ok := 0
	for range 10 {
		wg.Go(func() {
			resp, err := client.Get(srv.URL + "/v1/posts")
			if err != nil {
				fmt.Println("error:", err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			okMu.Lock()
			ok++
			okMu.Unlock()
		})
	}
	wg.Wait()
	fmt.Println("calls succeeded:", ok)
	mu.Lock()
	fmt.Println("at most 2 at once at the server:", most <= 2)
	mu.Unlock()
	// Output:
	// calls succeeded: 10
	// at most 2 at once at the server: true
}
