package resilient

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
)

// TestBreakerHostSessionIDHidden: a servlet container's redirect to a URL
// without a path, "https://api.example.com;jsessionid=…", which url.Parse
// reads as the host, keys the breaker by that host, session id included.
// The key is the breaker's name: the observers' BreakerChange.Key, the
// logger's "breaker" attribute and the refusal's text showed the session
// id, which Attempt.Host, Error.URL and the errors hide (see
// redact.HostParams). The host is shown, the session id is not.
func TestBreakerHostSessionIDHidden(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const sess = "SECRET-session-1"
		u := bkParse(t, "https://api.example.com;jsessionid="+sess+"/v1")
		var logs bytes.Buffer
		var keys []string // written by the delivering goroutine only
		tr := New(bkNet{u.Host: bkDead()}, WithMaxRetries(0), WithoutHedging(),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
			WithMaxInFlight(1),
			WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
			WithBreakerObserver(func(c BreakerChange) { keys = append(keys, c.Key) }))
		call := func() error {
			_, _, err := bkDoURL(t, tr, u)
			return err
		}
		call()        // the 500 trips the breaker
		err := call() // refused: delivers the change
		bkWantOpen(t, err)
		if len(keys) == 0 {
			t.Fatal("the observer was told of no change")
		}
		want := "https://api.example.com;jsessionid=REDACTED:443"
		for _, k := range keys {
			if k != want {
				t.Errorf("BreakerChange.Key = %q, want %q", k, want)
			}
		}
		// The key is the host's canonical form: lower-cased.
		hidden := func(s string) bool { return !strings.Contains(strings.ToLower(s), strings.ToLower(sess)) }
		if !hidden(logs.String()) {
			t.Errorf("log = %s; want the session id hidden", logs.String())
		}
		for e := err; e != nil; e = errors.Unwrap(e) {
			if !hidden(e.Error()) {
				t.Errorf("error %T = %q; want the session id hidden", e, e.Error())
			}
		}
	})
}

// TestQuotaPartitionHostSessionIDHidden: the name of a rate-limit
// partition, which a QuotaStore keeps (redisquota: a Redis key the fleet
// shares) and the rate limiter's refusals quote, showed the session id of
// a host "api.example.com;jsessionid=…" (see TestBreakerHostSessionIDHidden).
func TestQuotaPartitionHostSessionIDHidden(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const sess = "SECRET-session-1"
		u := bkParse(t, "https://api.example.com;jsessionid="+sess+"/v1")
		store := new(memQuota)
		tr := New(bkNet{u.Host: new(bkHost)}, WithQuotaStore(store))
		if code, _, err := bkDoURL(t, tr, u); code != http.StatusOK || err != nil {
			t.Fatalf("GET = %d, %v; want 200", code, err)
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		if len(store.names) == 0 {
			t.Fatal("the QuotaStore was asked for no partition")
		}
		for _, name := range store.names {
			if strings.Contains(strings.ToLower(name), strings.ToLower(sess)) {
				t.Errorf("QuotaStore partition name = %q; want the session id hidden", name)
			}
		}
	})
}
