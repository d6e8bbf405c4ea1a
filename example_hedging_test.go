package resilient_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilient"
)

// Cut a slow tail: the first request to this host hangs, and a copy sent
// after 20ms answers at once. The first answer wins; the hanging request
// is canceled.
func ExampleWithHedging() {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			<-r.Context().Done() // a slow answer, until the client gives up on it
			return
		}
		io.WriteString(w, "fast")
	}))
	defer srv.Close()

	client := resilient.NewClient(resilient.WithHedging(resilient.Hedging{Delay: 20 * time.Millisecond}))
	var r resilient.Report
	req, _ := http.NewRequestWithContext(resilient.WithReport(context.Background(), &r), http.MethodGet, srv.URL+"/v1/posts", nil)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%d %s: %d requests, %d hedge\n", resp.StatusCode, body, r.Attempts, r.Hedges)
	// Output:
	// 200 fast: 2 requests, 1 hedge
}
