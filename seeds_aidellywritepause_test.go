package resilient

import (
	"context"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestSeedsAidellyWritePauseSparesReads: Aidelly counts its rate limits per
// API key, reads (GET) apart from writes (POST, PATCH), and answers a write
// past its quota with a 429 whose Retry-After is in seconds (NOTES.md,
// aidelly-error-catalog.txt). That 429 pauses the key's writes, its PATCH
// included, until the Retry-After, and neither the key's reads nor another
// key's writes; the PATCH, a write, carries an Idempotency-Key, which
// Aidelly requires on every write.
func TestSeedsAidellyWritePauseSparesReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := &rtScript{steps: []rtStep{
			{status: 429, header: aidellyQuota("20", "0", 30*time.Second, "Retry-After", "30")(start), body: aidellyBody("PUBLIC_API_RATE_LIMITED")},
			{status: 200, header: aidellyQuota("60", "50", time.Minute)(start), body: `{"success":true,"data":{},"request_id":"r2"}`},
		}}
		tr := New(s)
		send := func(method, path, key string) {
			t.Helper()
			var body io.Reader
			if method != "GET" {
				body = strings.NewReader(`{"content":"hello"}`)
			}
			req := newRequest(t, context.Background(), method, "https://api.aidelly.test"+path, body)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := roundTrip(t, tr, req)
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("%s %s with %s: %v, %v; want a 200", method, path, key, resp, err)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			send("POST", "/v1/posts", "key1") // 429, then its retry after the Retry-After
		}()
		synctest.Wait() // the POST waits out its pause
		send("GET", "/v1/posts", "key1")
		send("POST", "/v1/posts", "key2")
		send("PATCH", "/v1/posts/p1", "key1")
		<-done

		if n := s.numCalls(); n != 5 {
			t.Fatalf("%d attempts, want 5: the POST twice, the GET, key2's POST, the PATCH", n)
		}
		var postKeys []string
		for i := range s.numCalls() {
			c := s.call(i)
			at, auth := c.at.Sub(start), c.header.Get("Authorization")
			switch {
			case c.method == "GET" || auth == "Bearer key2":
				if at != 0 {
					t.Errorf("%s with %s sent at +%v, want at once: the pause is key1's writes'", c.method, auth, at)
				}
			case c.method == "PATCH":
				if at < 30*time.Second || at > 34*time.Second {
					t.Errorf("PATCH with key1 sent at +%v, want after the write's Retry-After, +30s", at)
				}
				if wireHeader(c.header, "Idempotency-Key") == "" {
					t.Errorf("PATCH sent without an Idempotency-Key")
				}
			default:
				postKeys = append(postKeys, wireHeader(c.header, "Idempotency-Key"))
				if i > 0 && (at < 30*time.Second || at > 34*time.Second) {
					t.Errorf("key1's POST resent at +%v, want after its Retry-After, +30s", at)
				}
			}
		}
		if len(postKeys) != 2 || postKeys[0] == "" || postKeys[0] != postKeys[1] {
			t.Errorf("key1's POST carried the keys %q, want one key on both attempts", postKeys)
		}
	})
}
