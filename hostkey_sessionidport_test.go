package resilient

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
)

// TestHostSessionIDKeepsPort: url.Parse reads the port of
// "https://api.example.com;jsessionid=…:8443/v1" after the session id, and
// net/http dials it. Hiding the session id must keep the port: the
// breaker's name (BreakerChange.Key) named the default port 443 instead,
// and the QuotaStore's partition names of two ports of the host were one,
// so that the fleet shared one quota and one pause between two addresses.
func TestHostSessionIDKeepsPort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const sess = "SECRET-session-1"
		var us []*url.URL
		net := bkNet{}
		for _, port := range []string{"8443", "9443"} {
			u := bkParse(t, "https://api.example.com;jsessionid="+sess+":"+port+"/v1")
			us = append(us, u)
			net[u.Host] = bkDead()
		}
		store := new(memQuota)
		var keys []string // written by the delivering goroutine only
		tr := New(net, WithMaxRetries(0), WithoutHedging(), WithQuotaStore(store),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
			WithBreakerObserver(func(c BreakerChange) { keys = append(keys, c.Key) }))
		call := func(u *url.URL) error {
			_, _, err := bkDoURL(t, tr, u)
			return err
		}
		call(us[0])                // the 500 trips the breaker
		bkWantOpen(t, call(us[0])) // refused: delivers the change
		want := "https://api.example.com;jsessionid=REDACTED:8443"
		if len(keys) == 0 {
			t.Fatal("the observer was told of no change")
		}
		for _, k := range keys {
			if k != want {
				t.Errorf("BreakerChange.Key = %q, want %q", k, want)
			}
		}
		call(us[1])
		store.mu.Lock()
		defer store.mu.Unlock()
		var names []string
		for _, name := range store.names {
			if strings.Contains(strings.ToLower(name), strings.ToLower(sess)) {
				t.Errorf("QuotaStore partition name = %q; want the session id hidden", name)
			}
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
		if len(names) != 2 {
			t.Errorf("QuotaStore partition names = %q; want one for each port", names)
		}
	})
}
