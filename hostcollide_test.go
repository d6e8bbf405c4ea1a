package resilient

import (
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
)

// undialableSpellings pairs a host net/http dials with a spelling that
// url.Parse takes (a server's redirect may name it) or a caller may put
// in URL.Host by hand, which net/http never dials there: an empty final
// label ("api.test.."), a port after a port ("api.test:443:443", whose
// name "api.test:443" no resolver finds), a dot after an IPv6 address's
// bracket.
var undialableSpellings = []struct{ host, other string }{
	{"api.test.", "api.test.."},
	{"api.test.:8443", "api.test..:8443"},
	{"api.test:443", "api.test:443:443"},
	{"api.test:", "api.test::443"},
	{"api.test:0443", "api.test:0443:443"},
	{"[::1]", "[::1]."},
	{"[::1]:8443", "[::1].:8443"},
	{"[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]."},
}

// canonicalHost is idempotent: the canonical form of a host is its own
// canonical form. The tables of breakers, budgets and slots hold a host's
// canonical key and, as aliases, the spellings met, in one table: a
// canonical form that is another host's spelling would be found by that
// spelling, and the two hosts would share their state.
func TestCanonicalHostIdempotent(t *testing.T) {
	for _, sp := range undialableSpellings {
		for _, h := range []string{sp.host, sp.other} {
			c := canonicalHost("https", h)
			if again := canonicalHost("https", c); again != c {
				t.Errorf("canonicalHost(%q) = %q, and of that %q", h, c, again)
			}
		}
		if canonicalHost("https", sp.host) == canonicalHost("https", sp.other) {
			t.Errorf("%q and %q: one canonical form %q", sp.host, sp.other, canonicalHost("https", sp.host))
		}
	}
}

// A spelling net/http never dials where a host is (a proxy, HTTP_PROXY,
// answers 502 for it; a resolver finds no such name) shares nothing with
// that host, whichever of the two was called first: its failures open no
// breaker of the host's, and ResetHost of the host leaves its breaker
// alone. A hostile server that redirects its client to
// "https://api.test../" must not lock the client out of
// "https://api.test./".
func TestUndialableSpellingSharesNoState(t *testing.T) {
	for _, sp := range undialableSpellings {
		for _, otherFirst := range []bool{false, true} {
			name := sp.host + " then " + sp.other
			if otherFirst {
				name = sp.other + " then " + sp.host
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var good, bad int
					base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
						status := http.StatusOK
						if req.URL.Host == sp.other {
							bad++
							status = http.StatusBadGateway // a proxy that found no such host
						} else {
							good++
						}
						return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
					})
					tr := New(base, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
					call := func(host string) error {
						t.Helper()
						resp, err := tr.RoundTrip(mustURL(t, "https://x/v1", host))
						if err == nil {
							resp.Body.Close()
						}
						return err
					}
					if !otherFirst {
						call(sp.host)
					}
					for range 3 {
						call(sp.other)
					}
					if err := call(sp.host); err != nil {
						t.Errorf("a call to %q after %q failed: %v, want it sent", sp.host, sp.other, err)
					}
					if s, err := tr.HostState(mustURL(t, "https://x/v1", sp.host)); err != nil || s.Breaker != BreakerClosed {
						t.Errorf("HostState(%q).Breaker = %v (%v) after the failures of %q, want closed", sp.host, s.Breaker, err, sp.other)
					}
					// ResetHost of the host is not the other's.
					tr.ResetHost(sp.host)
					if err := call(sp.other); !errors.Is(err, ErrCircuitOpen) {
						t.Errorf("%q after its failures and ResetHost(%q): %v, want its own breaker open", sp.other, sp.host, err)
					}
					if want := 1 + btoi(!otherFirst); good != want || bad != 2 {
						t.Errorf("%q reached %d times, %q %d times; want %d and 2", sp.host, good, sp.other, bad, want)
					}
				})
			})
		}
	}
}

// mustURL returns rawURL parsed, its host set to host as a caller may set
// it by hand.
func mustURL(t *testing.T, rawURL, host string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Host, req.Host = host, ""
	return req
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
