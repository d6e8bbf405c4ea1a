package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
)

// TestResetHostByZonedBreakerKey checks that the key a breaker of a host
// with an IPv6 zone has, as BreakerChange.Key and the errors of its
// refusals show it ("https://[fe80::1%eth0]:443", the zone as in URL.Host,
// not escaped as a URL's "%25eth0"), names that breaker to ResetHost and
// BreakerState, as the key of any other host does: a caller that resets
// the breaker its observer reported open must not find it still open, its
// host refused for OpenTimeout, nor be told it is closed while it refuses.
func TestResetHostByZonedBreakerKey(t *testing.T) {
	for _, rawURL := range []string{"https://[fe80::1%25eth0]/x", "http://[fe80::1%25eth0]:8080/x"} {
		t.Run(rawURL, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				host := bkDead()
				req, err := http.NewRequest(http.MethodGet, rawURL, nil)
				if err != nil {
					t.Fatal(err)
				}
				var mu sync.Mutex
				var keys []string
				tr := New(bkNet{req.URL.Host: host}, WithMaxRetries(0),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
					WithBreakerObserver(func(c BreakerChange) {
						mu.Lock()
						keys = append(keys, c.Key)
						mu.Unlock()
					}))
				bkCall(t, tr, rawURL)
				mu.Lock()
				if len(keys) != 1 {
					mu.Unlock()
					t.Fatalf("breaker changes %q, want one (closed to open)", keys)
				}
				key := keys[0]
				mu.Unlock()
				if got := tr.BreakerState(key); got != BreakerOpen {
					t.Errorf("BreakerState(%q) = %v, want open: the breaker's own key names it", key, got)
				}
				tr.ResetHost(key)
				if got := tr.BreakerState(rawURL); got != BreakerClosed {
					t.Errorf("after ResetHost(%q): BreakerState(%q) = %v, want closed", key, rawURL, got)
				}
				host.status.Store(http.StatusOK)
				if code, _, err := bkCall(t, tr, rawURL); err != nil || code != http.StatusOK {
					t.Errorf("call after ResetHost(%q): %d, %v; want 200", key, code, err)
				}
				if got := host.hits.Load(); got != 2 {
					t.Errorf("host hit %d times, want 2: the call after ResetHost(%q) was refused", got, key)
				}
			})
		})
	}
}
