package resilient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestAltProtocolSkipParity: a Transport registered with
// http.Transport.RegisterProtocol over a base that declines requests with
// http.ErrSkipAltProtocol (as golang.org/x/net/http2's
// noDialH2RoundTripper does while it has no connection to the host) lets
// the http.Transport send each request itself, as the base alone does:
// net/http compares the sentinel with ==, so it is returned as it is, at
// once, never retried, and the host's breaker does not count it.
func TestAltProtocolSkipParity(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+string(b))
	}))
	defer srv.Close()
	for _, name := range []string{"plain", "resilient"} {
		t.Run(name, func(t *testing.T) {
			var asked atomic.Int32
			alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				asked.Add(1)
				return nil, http.ErrSkipAltProtocol // its body untouched, as http2's
			})
			outer := &http.Transport{}
			defer outer.CloseIdleConnections()
			var rt http.RoundTripper = alt
			var tr *Transport
			if name == "resilient" {
				tr = New(alt, WithBackoff(0, 0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
				rt = tr
			}
			outer.RegisterProtocol("http", rt)
			client := &http.Client{Transport: outer}
			for _, c := range []struct {
				method, body string
				getBody      bool
			}{
				{"GET", "", false},
				{"GET", "", false},
				{"POST", "with GetBody", true},
				{"POST", "without GetBody", false},
			} {
				asked.Store(0)
				var body io.Reader
				switch {
				case c.getBody:
					body = strings.NewReader(c.body)
				case c.body != "":
					body = io.MultiReader(strings.NewReader(c.body))
				}
				req, _ := http.NewRequest(c.method, srv.URL, body)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s = %v; want the answer of the outer transport, as a plain client gets", c.method, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := c.method + " " + c.body; resp.StatusCode != 200 || string(b) != want {
					t.Errorf("%s answer = %d %q, want 200 %q (the whole body sent)", c.method, resp.StatusCode, b, want)
				}
				if n := asked.Load(); n != 1 {
					t.Errorf("%s: the alternate base was asked %d times, want 1", c.method, n)
				}
			}
			if tr != nil {
				if s := tr.BreakerState(srv.URL); s != BreakerClosed {
					t.Errorf("breaker %v after the base declined, want closed", s)
				}
			}
		})
	}
}
