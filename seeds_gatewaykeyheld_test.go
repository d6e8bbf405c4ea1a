package resilient

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestSeedsKeyHeldAfterGatewayFailure: Postato honors Idempotency-Key on
// POST /posts and says to retry its 502 and 504 ("transient server /
// upstream error") with backoff, the caller's stable key per post keeping
// the retries from duplicating the post. A 502 or a 504 (a CDN's 520 or
// 524) is a gateway's word that the server behind it did not answer, in
// time or at all: the server may still be processing the write, and holds
// its key, as after a connection lost. The resend's 409, the key still
// held, is then retried with backoff until the key's first answer comes,
// as it is after a connection lost (TestKeyHeldByLostAttemptIsRetried);
// it was returned, telling the caller that its post failed while it was
// being created, and that a new key was needed (a second post). A 409
// after the server's own answer (a 500, a 503) is its word, returned
// (TestKeyHeldByLostAttemptIsRetried), and so is one after a 429, which
// refused the write unprocessed.
func TestSeedsKeyHeldAfterGatewayFailure(t *testing.T) {
	const held = `{"error":"CONFLICT","message":"A request with this key is still being processed"}`
	for _, tc := range []struct {
		name, body string
		status     int
		want, code int // attempts, final status
	}{
		{"504", `{"error":"GATEWAY_TIMEOUT","message":"Upstream timed out"}`, 504, 3, 201},
		{"502", `{"error":"BAD_GATEWAY","message":"Upstream error"}`, 502, 3, 201},
		{"524", `<html>A timeout occurred</html>`, 524, 3, 201},
		{"520", `<html>Web server is returning an unknown error</html>`, 520, 3, 201},
		{"500, the server's own", `{"error":"INTERNAL_ERROR","message":"Transient server error"}`, 500, 2, 409},
		{"503, the server's own", `{"error":"SERVICE_UNAVAILABLE","message":"Service temporarily unavailable"}`, 503, 2, 409},
		{"429, refused", `{"error":"RATE_LIMITED","message":"Rate limit hit"}`, 429, 2, 409},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &rtScript{steps: []rtStep{{status: tc.status, body: tc.body}, {status: 409, body: held}, {status: 201}}}
				resp := postKeyed(t, New(rt, fastRetries), "https://api.postato.test/v1/posts", "post-1")
				if resp.StatusCode != tc.code || rt.numCalls() != tc.want {
					t.Errorf("status %d after %d attempts, want %d after %d", resp.StatusCode, rt.numCalls(), tc.code, tc.want)
				}
			})
		})
	}
}

// TestSeedsKeyHeldAfterGatewayFailureHedged: as
// TestSeedsKeyHeldAfterGatewayFailure, for a hedged keyed write one of
// whose copies got a gateway's 504, whichever copy decides the attempt:
// the retry's 409 is the key held, retried until the stored answer comes.
func TestSeedsKeyHeldAfterGatewayFailureHedged(t *testing.T) {
	answer := func(status int, after time.Duration) func(*http.Request) (*http.Response, error) {
		return func(req *http.Request) (*http.Response, error) {
			time.Sleep(after)
			return &http.Response{StatusCode: status, Body: http.NoBody, Request: req}, nil
		}
	}
	for _, tc := range []struct {
		name        string
		first, copy func(*http.Request) (*http.Response, error)
	}{
		{"copy's 504", answer(500, 100*time.Millisecond), answer(504, 20*time.Millisecond)},
		{"attempt's 504", answer(504, 100*time.Millisecond), answer(500, 20*time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				n := 0
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					i := n
					n++
					mu.Unlock()
					req.Body.Close()
					switch i {
					case 0:
						return tc.first(req)
					case 1:
						return tc.copy(req)
					case 2: // the key held by the request behind the 504
						return &http.Response{StatusCode: http.StatusConflict, Body: http.NoBody, Request: req}, nil
					}
					return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
				})
				tr := New(rt, WithHedging(Hedging{Delay: 50 * time.Millisecond}), WithKeyHonoringHosts("api.test"))
				resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "POST", "http://api.test/", strings.NewReader("x")))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				if resp.StatusCode != http.StatusCreated || n != 4 {
					t.Errorf("status %d after %d requests; want 201 (the stored answer) after 4", resp.StatusCode, n)
				}
			})
		})
	}
}
