package resilient

import "testing"

// TestBreakerStateEmptyPortNamesEveryPort: a host alone with an empty port
// ("api.test:", as a host and port joined from an empty port reads) is a
// host without a port to ResetHost, which resets the host's breakers on
// every port; BreakerState, which takes a host alone "as ResetHost takes
// it", read only those of the default ports, and said closed while the
// breaker of api.test:8443 that ResetHost("api.test:") resets refused
// every call.
func TestBreakerStateEmptyPortNamesEveryPort(t *testing.T) {
	tr := New(bkNet{"api.test:8443": bkDead(), "[fe80::1%eth0]:8443": bkDead()}, WithMaxRetries(0),
		WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
	for range 2 {
		bkCall(t, tr, "https://api.test:8443/v1/posts")
		bkCall(t, tr, "https://[fe80::1%25eth0]:8443/v1/posts")
	}
	for _, host := range []string{"api.test:", "API.test.:", " api.test: ", "[fe80::1%eth0]:"} {
		if got := tr.BreakerState(host); got != BreakerOpen {
			t.Errorf("BreakerState(%q) = %v, want open (the breaker ResetHost(%q) resets)", host, got, host)
		}
	}
	tr.ResetHost("api.test:")
	if got := tr.BreakerState("https://api.test:8443/"); got != BreakerClosed {
		t.Errorf("after ResetHost(%q): BreakerState = %v, want closed", "api.test:", got)
	}
}
