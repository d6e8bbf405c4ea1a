package resilient

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitCallersMistakeSpendsNoTurn: a request that net/http refuses
// to send (a header value with a newline: the caller's mistake, which
// never reaches the host) spends no token of the pace the host announced,
// as a refusal of the breaker or of WithMaxInFlight spends none: the next
// call is sent at once, where a plain client's is. (Spent, the token held
// the next valid call to the pace's next turn, 6.3s ahead, which
// WithMaxRetryAfter refused: a caller's bug in one goroutine refused
// another's calls.)
func TestRateLimitCallersMistakeSpendsNoTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 10 a minute, two left: a burst of 2, a turn every 6.3s.
		quota := http.Header{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"2"}, "X-Ratelimit-Reset": {"60"}}
		s := &rtScript{steps: []rtStep{
			{status: 200, header: quota}, // learns the pace: a full bucket
			{status: 200, header: quota}, // takes a token of it
			{err: errors.New(`net/http: invalid header field value for "X-Note"`)},
			{status: 200, header: quota},
		}}
		tr := New(s, WithMaxRetries(0), WithMaxRetryAfter(time.Second))
		for i := range 2 {
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "http://api.test/x", nil))
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			resp.Body.Close()
		}
		bad := newRequest(t, context.Background(), http.MethodGet, "http://api.test/x", nil)
		bad.Header.Set("X-Note", "a\nb")
		if _, err := roundTrip(t, tr, bad); !errors.As(err, new(*RequestError)) {
			t.Fatalf("a header with a newline: %v, want a RequestError", err)
		}
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "http://api.test/x", nil))
		if err == nil {
			resp.Body.Close()
		}
		if err != nil || s.numCalls() != 4 {
			t.Errorf("the call after the caller's mistake: %v, %d attempts in all; want sent, 4", err, s.numCalls())
		}
	})
}
