package resilient

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestBreakerSchemelessHostBounded: a request whose URL has no scheme
// ("//host/path", a scheme-relative URL a caller built, which a custom
// base may serve) is keyed by its host with an empty scheme, as a custom
// key is. Such a key was taken for one bounded already where it was
// made, and kept whole: a caller that sends scheme-less URLs with long
// hosts made the set keep up to 4096 copies of hosts of any length after
// their calls returned, where a plain client keeps none. Its host is held
// bounded as a long custom key is (its first bytes and a digest), two
// long hosts still have breakers of their own, and ResetHost names one
// by the host it was called with.
func TestBreakerSchemelessHostBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var status atomic.Int32
		status.Store(http.StatusOK)
		var hits atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			hits.Add(1)
			return &http.Response{StatusCode: int(status.Load()), Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithMaxRetries(0), WithoutHedging(), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		long := strings.Repeat("a", 100_000)
		hostA, hostB := long+"a.test", long+"b.test"
		if _, _, err := bkCall(t, tr, "//"+hostA+"/"); err != nil {
			t.Fatal(err)
		}
		status.Store(http.StatusInternalServerError)
		bkCall(t, tr, "//"+hostB+"/") // trips hostB's breaker, not hostA's

		s := tr.breakers
		s.mu.Lock()
		s.table.each(func(k breakerKey, _ *breakerEntry) {
			if n := len(k.scheme) + len(k.host); n > 2*maxCustomKey {
				t.Errorf("the set keeps a key of %d bytes for a scheme-less URL, want at most %d", n, 2*maxCustomKey)
			}
		})
		s.mu.Unlock()

		before := hits.Load()
		_, _, err := bkCall(t, tr, "//"+hostB+"/")
		bkWantOpen(t, err)
		status.Store(http.StatusOK)
		if code, _, err := bkCall(t, tr, "//"+hostA+"/"); err != nil || code != http.StatusOK {
			t.Errorf("hostA: %d, %v; want 200 (its own breaker, closed)", code, err)
		}
		if got := hits.Load() - before; got != 1 {
			t.Errorf("%d requests reached the hosts, want 1 (hostA's)", got)
		}
		tr.ResetHost(hostB)
		if code, _, err := bkCall(t, tr, "//"+hostB+"/"); err != nil || code != http.StatusOK {
			t.Errorf("hostB after ResetHost: %d, %v; want 200", code, err)
		}
	})
}
