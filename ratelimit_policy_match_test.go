package resilient

import (
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitPolicyOfTheAnnouncedLimit: a server that keeps a burst
// limit of 10 a second under a quota of 1000 an hour lists both in
// RateLimit-Policy, the hour first, and announces in RateLimit-Limit (or
// the draft 7 dictionary's limit) the one nearest to running out, 10, as
// Bazaarvoice documents it. The window of that limit is the policy with its
// quota, a second; the first policy's hour paced the 10 at one call in 379 s,
// and a client calling once every 10 s, far within both limits, had its
// calls refused from the tenth on (49 of 60). When the hour is the one
// announced, its window is the hour's, not the first policy's second.
func TestRateLimitPolicyOfTheAnnouncedLimit(t *testing.T) {
	const policy = "1000;w=3600, 10;w=1"
	for _, tc := range []struct {
		name   string
		header func(sent int) []string
		window time.Duration
	}{
		{"older drafts", func(sent int) []string {
			return []string{"RateLimit-Limit", "10", "RateLimit-Remaining", "9", "RateLimit-Reset", "1", "RateLimit-Policy", policy}
		}, time.Second},
		{"draft 7 dictionary", func(sent int) []string {
			return []string{"RateLimit", "limit=10, remaining=9, reset=1", "RateLimit-Policy", policy}
		}, time.Second},
		{"older drafts, the hour binding", func(sent int) []string {
			// The hour nearer to running out: its window is the hour's.
			left := strconv.Itoa(1000 - sent)
			return []string{"RateLimit-Limit", "1000", "RateLimit-Remaining", left, "RateLimit-Reset", "1800", "RateLimit-Policy", "10;w=1, 1000;w=3600"}
		}, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					h := tc.header(n + 1)
					for i := 0; i < len(h); i += 2 {
						w.Header().Set(h[i], h[i+1])
					}
				}}
				tr := New(handlerRT{srv}, WithMaxRetries(0))
				client := &http.Client{Transport: tr}
				refused, held := refusedAndHeld(t, client, 60, 10*time.Second)
				if refused+held > 0 {
					t.Errorf("%d of 60 calls refused and %d held, one every 10 s within a limit of 10 a second and 1000 an hour; want none", refused, held)
				}
				p := rlOf(t, tr).lookup(partKey{scheme: "http", host: "api.test"}, false, &lazyNow{})
				p.mu.Lock()
				window := p.window
				p.mu.Unlock()
				if window != tc.window {
					t.Errorf("window learned %v, want %v", window, tc.window)
				}
			})
		})
	}
}
