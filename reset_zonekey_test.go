package resilient

import (
	"net/http"
	"strings"
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

// TestResetHostByZonedBreakerKeyPercentInZone checks that a zone with a
// "%" of its own (a Linux interface may be named "en%30"), which
// BreakerChange.Key shows as in URL.Host ("https://[fe80::1%en%30]:443"),
// names its own breaker to ResetHost and BreakerState, never that of
// another zone that the "%30" would spell once unescaped ("en0"): the
// caller that resets the breaker its observer reported must neither find
// it still open nor close another host's, which its failures opened.
func TestResetHostByZonedBreakerKeyPercentInZone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const odd, other = "https://[fe80::1%25en%2530]/x", "https://[fe80::1%25en0]/x"
		oddReq, err := http.NewRequest(http.MethodGet, odd, nil)
		if err != nil {
			t.Fatal(err)
		}
		otherReq, err := http.NewRequest(http.MethodGet, other, nil)
		if err != nil {
			t.Fatal(err)
		}
		oddHost, otherHost := bkDead(), bkDead()
		var mu sync.Mutex
		keys := map[string]string{} // URL.Host: the key its breaker's change showed
		tr := New(bkNet{oddReq.URL.Host: oddHost, otherReq.URL.Host: otherHost}, WithMaxRetries(0),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
			WithBreakerObserver(func(c BreakerChange) {
				mu.Lock()
				defer mu.Unlock()
				if c.To == BreakerOpen {
					if strings.Contains(c.Key, "%en%30]") {
						keys[oddReq.URL.Host] = c.Key
					} else {
						keys[otherReq.URL.Host] = c.Key
					}
				}
			}))
		bkCall(t, tr, odd)
		mu.Lock()
		key := keys[oddReq.URL.Host]
		mu.Unlock()
		if key != "https://[fe80::1%en%30]:443" {
			t.Fatalf("the breaker of %q opened under the key %q, want https://[fe80::1%%en%%30]:443", odd, key)
		}
		if got := tr.BreakerState(key); got != BreakerOpen {
			t.Errorf("BreakerState(%q) = %v, want open: the breaker's own key names it", key, got)
		}
		bkCall(t, tr, other) // en0's breaker opens too
		tr.ResetHost(key)
		if got := tr.BreakerState(other); got != BreakerOpen {
			t.Errorf("after ResetHost(%q): BreakerState(%q) = %v, want open: another zone's breaker was reset", key, other, got)
		}
		if got := tr.BreakerState(odd); got != BreakerClosed {
			t.Errorf("after ResetHost(%q): BreakerState(%q) = %v, want closed", key, odd, got)
		}
	})
}

// TestBreakerStateByZonedHost checks that the zones a request's URL may
// carry escaped, a "%", a space or a "[" in them ("%2530", "%20", "%5B"),
// name their breaker in each of the spellings ResetHost and BreakerState
// take: the breaker's key as BreakerChange.Key shows it, the zone as in
// URL.Host, and the host alone, as ResetHost takes it, bracketed or not.
func TestBreakerStateByZonedHost(t *testing.T) {
	for _, zone := range []string{"en%2530", "a%20b", "a%5Bb"} {
		rawURL := "https://[fe80::1%25" + zone + "]/x"
		t.Run(zone, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				req, err := http.NewRequest(http.MethodGet, rawURL, nil)
				if err != nil {
					t.Fatal(err)
				}
				host := req.URL.Host // "[fe80::1%en%30]"
				tr := New(bkNet{host: bkDead()}, WithMaxRetries(0),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
				bkCall(t, tr, rawURL)
				for _, name := range []string{
					"https://" + host + ":443", // BreakerChange.Key
					host, host + ":443", host[1 : len(host)-1],
				} {
					if got := tr.BreakerState(name); got != BreakerOpen {
						t.Errorf("BreakerState(%q) = %v, want open", name, got)
					}
				}
				tr.ResetHost(host[1 : len(host)-1])
				if got := tr.BreakerState(rawURL); got != BreakerClosed {
					t.Errorf("after ResetHost(%q): BreakerState(%q) = %v, want closed", host[1:len(host)-1], rawURL, got)
				}
			})
		})
	}
}
