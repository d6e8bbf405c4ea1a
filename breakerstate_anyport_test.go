package resilient

import "testing"

// TestBreakerStateHostAloneNamesEveryPort: BreakerState takes a host alone
// "as ResetHost takes it", and ResetHost's host without a port names the
// host on every port. A health check that read BreakerState("api.test")
// of a host served on :8443 was told closed while its breaker refused
// every call, the breaker that ResetHost("api.test") resets.
func TestBreakerStateHostAloneNamesEveryPort(t *testing.T) {
	tr := New(bkNet{"api.test:8443": bkDead(), "other.test:8443": bkDead()}, WithMaxRetries(0),
		WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
	for range 2 {
		bkCall(t, tr, "https://api.test:8443/v1/posts")
	}
	for _, host := range []string{"api.test", "API.test.", "api.test:8443", "https://api.test:8443/"} {
		if got := tr.BreakerState(host); got != BreakerOpen {
			t.Errorf("BreakerState(%q) = %v, want open", host, got)
		}
	}
	for _, host := range []string{"api.test:443", "api.test:80", "https://api.test/", "other.test", "test"} {
		if got := tr.BreakerState(host); got != BreakerClosed {
			t.Errorf("BreakerState(%q) = %v, want closed (another breaker)", host, got)
		}
	}
	tr.ResetHost("api.test")
	if got := tr.BreakerState("api.test:8443"); got != BreakerClosed {
		t.Errorf("after ResetHost(%q): BreakerState = %v, want closed", "api.test", got)
	}
}
