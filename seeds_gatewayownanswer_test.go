package resilient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestSeedsOwnBadGatewayIsAnAnswer: a 502 or a 504 whose error envelope
// carries a code of the server's own (Aidelly's PUBLIC_API_POST_CREATE_FAILED
// with its request_id, Altyaa's service_unavailable, an external dependency
// failing) is the server's answer, not a gateway's word that the server
// behind it gave none (see noAnswerBehind): the server ended its work on the
// attempt, whose key it no longer holds, as after its own 500 or 503. The
// resend's 409, a conflict of the server's (a duplicate slug), is returned,
// as the README's 'What is retried' row says ("the server's own 5xx is
// one"); it was retried with backoff up to WithMaxRetries (4 requests more,
// some 25 s of backoff by default). A gateway's code (BAD_GATEWAY,
// GATEWAY_TIMEOUT, an upstream's timeout) or none is still no answer
// (TestSeedsKeyHeldAfterGatewayFailure).
func TestSeedsOwnBadGatewayIsAnAnswer(t *testing.T) {
	const conflict = `{"error":{"code":"conflict","message":"Slug already in use"}}`
	for _, tc := range []struct {
		name, body string
		status     int
		want       int // attempts
	}{
		{"aidelly 502", `{"success":false,"error":{"code":"PUBLIC_API_POST_CREATE_FAILED","message":"Post persistence failed"},"request_id":"r1"}`, 502, 2},
		{"altyaa 502", `{"error":{"code":"service_unavailable","message":"External dependency failure"}}`, 502, 2},
		{"altyaa 504", `{"error":{"code":"service_unavailable","message":"External dependency failure"}}`, 504, 2},
		{"upstream timeout", `{"error":{"code":"upstream_timeout","message":"Upstream timed out"}}`, 504, 3},
		{"no code", `{"message":"Endpoint request timed out"}`, 504, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &rtScript{steps: []rtStep{{status: tc.status, body: tc.body}, {status: 409, body: conflict}, {status: 201}}}
				resp := postKeyed(t, New(rt, fastRetries), "https://api.example.test/v1/posts", "post-1")
				if code := map[int]int{2: 409, 3: 201}[tc.want]; resp.StatusCode != code || rt.numCalls() != tc.want {
					t.Errorf("status %d after %d attempts, want %d after %d", resp.StatusCode, rt.numCalls(), code, tc.want)
				}
			})
		})
	}
}

// TestSeedsOwnBadGatewayIsAnAnswerHedged: as TestSeedsOwnBadGatewayIsAnAnswer,
// for a hedged keyed write a copy of which, losing to the attempt's 500, got
// the server's own 502: the retry's 409 is returned.
func TestSeedsOwnBadGatewayIsAnAnswerHedged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		n := 0
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			i := n
			n++
			mu.Unlock()
			req.Body.Close()
			status, body, after := http.StatusCreated, "", time.Duration(0)
			switch i {
			case 0:
				status, after = 500, 100*time.Millisecond
			case 1:
				status, body, after = 502, `{"error":{"code":"service_unavailable","message":"External dependency failure"}}`, 20*time.Millisecond
			case 2:
				status, body = 409, `{"error":{"code":"conflict","message":"Slug already in use"}}`
			}
			time.Sleep(after)
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
		})
		tr := New(rt, WithHedging(Hedging{Delay: 50 * time.Millisecond}), WithKeyHonoringHosts("api.test"))
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "POST", "http://api.test/", strings.NewReader("x")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		mu.Lock()
		defer mu.Unlock()
		if resp.StatusCode != http.StatusConflict || n != 3 {
			t.Errorf("status %d after %d requests; want 409 after 3", resp.StatusCode, n)
		}
	})
}
