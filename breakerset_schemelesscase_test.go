package resilient

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestBreakerSchemelessLongHostSpellings: the host of a URL without a
// scheme longer than maxCustomKey, held bounded (its first bytes and a
// digest), is held by its canonical spelling, as a URL host's spellings
// share one breaker: the breaker that one spelling of the host tripped
// refuses the others, and ResetHost names it by any spelling, its own
// included. The digest was of the host as the request spelled it: a host
// with an upper-case letter had a breaker of its own for each spelling,
// and its breaker, held under its lower-cased digest form, was named by
// no ResetHost, not even one given the very host of its requests.
func TestBreakerSchemelessLongHostSpellings(t *testing.T) {
	host := strings.Repeat("Ab", 150) + ".test"
	lower, upper := strings.ToLower(host), strings.ToUpper(host)
	for i, tc := range []struct{ sent, other, reset string }{
		{host, host, host},
		{host, lower, host},
		{host, upper, lower},
		{lower, host, upper},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int32
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					hits.Add(1)
					return &http.Response{StatusCode: http.StatusInternalServerError, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				})
				tr := New(base, WithMaxRetries(0), WithoutHedging(), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
				bkCall(t, tr, "//"+tc.sent+"/") // trips the host's breaker
				if _, _, err := bkCall(t, tr, "//"+tc.other+"/"); err == nil {
					t.Errorf("%.8s…: the breaker %.8s… tripped let a request through, want its refusal", tc.other, tc.sent)
				}
				tr.ResetHost(tc.reset)
				before := hits.Load()
				bkCall(t, tr, "//"+tc.sent+"/")
				if hits.Load() == before {
					t.Errorf("ResetHost(%.8s…) left the breaker of %.8s… open", tc.reset, tc.sent)
				}
			})
		})
	}
}
