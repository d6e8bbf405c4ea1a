package resilient

import (
	"net/http"
	"net/url"
	"testing"
	"testing/synctest"
)

// A name spelled with the full stops that UTS #46 maps to '.' (U+3002,
// U+FF0E, U+FF61) is the name net/http dials ("bücher。example" is
// xn--bcher-kva.example): one host to the breakers, not a host of its
// own, which a failing server's other spelling would not hold back.
func TestCanonicalHostFullStops(t *testing.T) {
	const want = "xn--bcher-kva.example"
	for _, h := range []string{"bücher\u3002example", "BÜCHER\uFF0Eexample", "bücher\uFF61example.:443", "bücher\u3002example:0443"} {
		if got := canonicalHost("https", h); got != want {
			t.Errorf("canonicalHost(https, %q) = %q, want %q", h, got, want)
		}
	}
	// A stop that ends the name leaves an empty label: a host of its own,
	// as internal/idna converts no such name.
	if got := canonicalHost("https", "bücher.example\u3002"); got == want {
		t.Errorf("canonicalHost(https, %q) = %q, another host's", "bücher.example\u3002", got)
	}
	synctest.Test(t, func(t *testing.T) {
		rt := &rtScript{steps: []rtStep{{status: http.StatusServiceUnavailable}, {status: http.StatusServiceUnavailable}}}
		tr := New(rt, WithMaxRetries(1), fastRetries, WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
		req := func(host string) *http.Request {
			return &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: host, Path: "/v1"}, Header: http.Header{}}
		}
		if resp, err := tr.RoundTrip(req("bücher\u3002example")); err == nil {
			resp.Body.Close()
		}
		for _, h := range []string{"bücher.example", want} {
			if s, err := tr.HostState(req(h)); err != nil || s.Breaker != BreakerOpen {
				t.Errorf("HostState(%q) = %v, %v after two 503s of bücher\u3002example, want the breaker open", h, s.Breaker, err)
			}
		}
	})
}
