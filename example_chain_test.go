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

// userAgent is a caller's own middleware: it sets a User-Agent on a copy of
// each request (a RoundTripper must not modify the caller's) and counts the
// requests it sees.
type userAgent struct {
	next  http.RoundTripper
	calls atomic.Int32
}

func (u *userAgent) RoundTrip(req *http.Request) (*http.Response, error) {
	u.calls.Add(1)
	req = req.Clone(req.Context())
	req.Header.Set("User-Agent", "example/1.0")
	return u.next.RoundTrip(req)
}

// Chain composes a caller's middlewares around a Transport, the first the
// outermost: outside the Transport, a middleware sees each call once,
// whatever the retries inside it.
func ExampleChain() {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, r.UserAgent())
	}))
	defer srv.Close()

	ua := &userAgent{}
	tr := resilient.New(nil, resilient.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	client := &http.Client{Transport: resilient.Chain(tr, func(next http.RoundTripper) http.RoundTripper {
		ua.next = next
		return ua
	})}
	resp, err := client.Get(srv.URL + "/v1/posts")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s: %d call through the middleware, %d attempts\n", resp.StatusCode, body, ua.calls.Load(), attempts.Load())
	// Output: 200 example/1.0: 1 call through the middleware, 2 attempts
}
