package resilient

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"testing/synctest"
)

// byHostHeader is a RoundTripper that routes requests by their Host field,
// as one does for a URL without a host (an in-process router, a unix
// socket's services): "down.svc" answers 503, "busy.svc" 429 with an
// hour's Retry-After, any other host 200.
type byHostHeader struct{}

func (byHostHeader) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}
	switch req.Host {
	case "down.svc":
		resp.StatusCode = http.StatusServiceUnavailable
	case "busy.svc":
		resp.StatusCode = http.StatusTooManyRequests
		resp.Header.Set("Retry-After", "3600")
	}
	return resp, nil
}

// TestHostlessURLHostsApart: a request whose URL has no host but whose
// Host names one is sent on (see invalidRequest): a custom RoundTripper
// routes it by its Host. Every such request was kept under one key, the
// scheme's with an empty host ("http://:80"): the breaker that one
// service's failures opened refused the calls to every other, and the
// pause one's 429 asked for held them all, where a plain client reached
// them. Each Host is a host of its own now, as its URL's would be.
func TestHostlessURLHostsApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := New(byHostHeader{}, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
		get := func(host string) (*http.Response, error) {
			resp, err := tr.RoundTrip(&http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "http", Path: "/v1"}, Host: host, Header: http.Header{}})
			if err == nil {
				resp.Body.Close()
			}
			return resp, err
		}
		for range 3 {
			get("down.svc")
		}
		if _, err := get("down.svc"); !errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("down.svc after its failures: %v, want its breaker open", err)
		}
		if resp, err := get("up.svc"); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("up.svc after down.svc's failures: %v, want its 200 (another service's breaker)", err)
		}
		get("busy.svc") // a 429: an hour's pause
		if resp, err := get("other.svc"); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("other.svc after busy.svc's 429: %v, want its 200 (another service's pause)", err)
		}
	})
}
