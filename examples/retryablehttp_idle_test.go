package examples

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// hostRouter is a base RoundTripper shared by several hosts, as
// go-retryablehttp's pooled transport is: it sends each request to its
// host's server and closes the idle connections of all of them.
type hostRouter map[string]http.RoundTripper

func (r hostRouter) RoundTrip(req *http.Request) (*http.Response, error) {
	return r[req.URL.Host].RoundTrip(req)
}

func (r hostRouter) CloseIdleConnections() {
	for _, rt := range r {
		if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}

// TestRetryableHTTPRefusalKeepsOtherHostsConnections: while one host is
// down and its breaker refuses calls at once, the calls of a healthy host
// made through the same client keep their keep-alive connection.
// go-retryablehttp closes its client's idle connections after every call
// that ends in an error; through the recipe each call refused by
// resilient's breaker (in microseconds, without reaching the host) did
// so, and the healthy host's next call dialed a new connection: one per
// refused call, where a plain client (whose calls to the down host return
// its 500s) keeps one.
func TestRetryableHTTPRefusalKeepsOtherHostsConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := newAltyaa(t, resilienttest.RouteListPosts, resilienttest.Respond(http.StatusInternalServerError))
		healthy := resilienttest.NewPipeServer(resilienttest.Postato, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, `{"data":[]}`)
		})))
		t.Cleanup(healthy.Close)
		base := hostRouter{
			strings.TrimPrefix(down.URL, "http://"):    down.Base(),
			strings.TrimPrefix(healthy.URL, "http://"): healthy.Transport(),
		}
		c := NewRetryableClient(base)
		refused := 0
		for range 40 {
			resp, err := c.Get(down.URL + "/v1/posts")
			switch {
			case errors.Is(err, resilient.ErrCircuitOpen):
				refused++
			case err != nil:
				t.Fatalf("down host: %v", err)
			default:
				resp.Body.Close()
			}
			resp, err = c.Get(healthy.URL + "/v1/posts")
			if err != nil {
				t.Fatalf("healthy host: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if refused == 0 {
			t.Fatal("the down host's breaker refused no call; the test needs it open")
		}
		if got := healthy.Stats().Connections; got != 1 {
			t.Errorf("the healthy host accepted %d connections for 40 calls while %d calls to the down host were refused, want 1", got, refused)
		}
	})
}
