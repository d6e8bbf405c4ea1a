package resilient

import (
	"log/slog"
	"net/http"
	"testing"
	"testing/synctest"
)

// TestResetHostByRedactedBreakerKey: a host with a session id after it
// ("api.example.com;jsessionid=…", which url.Parse reads as the host) is
// named by BreakerChange.Key and the refusals' text with the session id
// REDACTED (see breakerName). ResetHost and BreakerState take the name
// those show, as they take "REDACTED@host" for a host whose URL held user
// information: an observer that passes BreakerChange.Key on must reach the
// host's breaker, not read it closed and leave it open.
func TestResetHostByRedactedBreakerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		raw := "https://api.example.com;jsessionid=SECRET-session-1/v1"
		u := bkParse(t, raw)
		host := bkDead()
		var keys []string // written by the delivering goroutine only
		tr := New(bkNet{u.Host: host}, WithMaxRetries(0), WithoutHedging(),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
			WithLogger(slog.New(slog.DiscardHandler)),
			WithBreakerObserver(func(c BreakerChange) { keys = append(keys, c.Key) }))
		call := func() error {
			_, _, err := bkDoURL(t, tr, u)
			return err
		}
		call() // the 500 trips the breaker
		bkWantOpen(t, call())
		if len(keys) == 0 {
			t.Fatal("the observer was told of no change")
		}
		key := keys[0]
		if got := tr.BreakerState(raw); got != BreakerOpen {
			t.Fatalf("BreakerState(%q) = %v, want %v", raw, got, BreakerOpen)
		}
		for _, name := range []string{key, "api.example.com;jsessionid=REDACTED"} {
			if got := tr.BreakerState(name); got != BreakerOpen {
				t.Errorf("BreakerState(%q) = %v, want %v", name, got, BreakerOpen)
			}
		}
		tr.ResetHost(key)
		if got := tr.BreakerState(raw); got != BreakerClosed {
			t.Errorf("after ResetHost(%q): BreakerState(%q) = %v, want %v", key, raw, got, BreakerClosed)
		}
		host.status.Store(http.StatusOK)
		if err := call(); err != nil {
			t.Errorf("after ResetHost(%q): GET = %v, want 200", key, err)
		}
	})
}
