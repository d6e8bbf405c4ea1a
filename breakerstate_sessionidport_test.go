package resilient

import (
	"testing"
	"testing/synctest"
)

// TestBreakerStateHostAloneSessionIDPort: BreakerState takes a host alone
// with its port ("host:port"), and a host with a session id after it by
// any value of it, REDACTED included, as ResetHost names it. The name
// "api.example.com;jsessionid=REDACTED:8443", which ResetHost resets, read
// closed while the breaker it names refused every attempt: a host alone
// with a port was looked up under its exact spelling only, and a breaker
// holds the real session id.
func TestBreakerStateHostAloneSessionIDPort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		raw := "https://api.example.com;jsessionid=SECRET-session-1:8443/v1"
		u := bkParse(t, raw)
		tr := New(bkNet{u.Host: bkDead()}, WithMaxRetries(0), WithoutHedging(),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		call := func() error {
			_, _, err := bkDoURL(t, tr, u)
			return err
		}
		call() // the 500 trips the breaker
		bkWantOpen(t, call())
		for _, tc := range []struct {
			name string
			want BreakerState
		}{
			{"api.example.com;jsessionid=REDACTED:8443", BreakerOpen},
			{"api.example.com;jsessionid=OTHER:8443", BreakerOpen},
			{"API.example.com;JSESSIONID=REDACTED:08443", BreakerOpen},
			{"api.example.com;jsessionid=REDACTED", BreakerOpen}, // every port
			{"api.example.com;jsessionid=REDACTED:9443", BreakerClosed},
			{"api.example.com:8443", BreakerClosed}, // another host's name
			{"api.example.com;v=1:8443", BreakerClosed},
		} {
			if got := tr.BreakerState(tc.name); got != tc.want {
				t.Errorf("BreakerState(%q) = %v, want %v", tc.name, got, tc.want)
			}
		}
		tr.ResetHost("api.example.com;jsessionid=REDACTED:8443")
		if got := tr.BreakerState(raw); got != BreakerClosed {
			t.Errorf("after ResetHost: BreakerState(%q) = %v, want %v", raw, got, BreakerClosed)
		}
	})
}
