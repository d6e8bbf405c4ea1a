package resilient_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// TestBreakerStateOfAHost: issue 17 asks for Transport.BreakerState "to
// read a host's breaker". Given a host alone (host or host:port, any case,
// as Transport.ResetHost takes it), it reads that host's breakers of
// either scheme, the one that refuses most; given a URL, that URL's
// breaker only. It read every host alone as closed, whatever its breaker.
func TestBreakerStateOfAHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &answers{steps: []answer{{status: 503}}}
		tr := resilient.New(base, resilient.WithMaxRetries(0),
			resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: 10 * time.Second}))
		check := func(when string, want map[string]resilient.BreakerState) {
			t.Helper()
			for name, s := range want {
				if got := tr.BreakerState(name); got != s {
					t.Errorf("%s: BreakerState(%q) = %v, want %v", when, name, got, s)
				}
			}
		}
		closedElsewhere := map[string]resilient.BreakerState{
			"other.test": resilient.BreakerClosed, "api.test:8080": resilient.BreakerClosed,
			"https://api.test": resilient.BreakerClosed, "": resilient.BreakerClosed, "api.test/v1": resilient.BreakerClosed,
		}
		check("before any call", map[string]resilient.BreakerState{"api.test": resilient.BreakerClosed, "api.test:80": resilient.BreakerClosed})
		for range 2 {
			call(t, tr, context.Background(), "GET", "http://api.test/v1/posts", nil)
		}
		open := map[string]resilient.BreakerState{
			"api.test": resilient.BreakerOpen, "API.Test": resilient.BreakerOpen, "api.test:80": resilient.BreakerOpen,
			"http://api.test/": resilient.BreakerOpen,
		}
		check("tripped", open)
		check("tripped", closedElsewhere)
		time.Sleep(10 * time.Second)
		check("after OpenTimeout", map[string]resilient.BreakerState{"api.test": resilient.BreakerHalfOpen, "api.test:80": resilient.BreakerHalfOpen})
		check("after OpenTimeout", closedElsewhere)
		if at, _, _ := base.sent(); len(at) != 2 {
			t.Errorf("%d requests sent, want the 2 that tripped the breaker", len(at))
		}
	})
}

// TestBreakerStateOfABareIPv6Host: BreakerState takes a host alone as
// ResetHost takes it, and ResetHost takes an IPv6 address without its
// brackets ("::1"): BreakerState("::1") read the breaker of the URL host
// "::1", which no request has, and said closed while [::1]'s was open.
func TestBreakerStateOfABareIPv6Host(t *testing.T) {
	base := &answers{steps: []answer{{status: 503}}}
	tr := resilient.New(base, resilient.WithMaxRetries(0),
		resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 2}))
	for range 2 {
		call(t, tr, context.Background(), "GET", "http://[::1]/v1/posts", nil)
	}
	for _, host := range []string{"::1", "[::1]", "[::1]:80", "http://[::1]/"} {
		if got := tr.BreakerState(host); got != resilient.BreakerOpen {
			t.Errorf("BreakerState(%q) = %v, want open", host, got)
		}
	}
	tr.ResetHost("::1")
	if got := tr.BreakerState("::1"); got != resilient.BreakerClosed {
		t.Errorf("after ResetHost(\"::1\"): BreakerState = %v, want closed", got)
	}
}
