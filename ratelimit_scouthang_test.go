package resilient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitNothingSentScoutThatHangs: as in
// TestRateLimitSpentQuotaScoutFailed, a batch of 50 calls is held to the
// reset of a quota spent a second before it, when the pace's bucket holds
// no token: no attempt goes at the reset, and one goes as the scout
// halfway through the wait for its answer (see rateLimiter.nextScout).
// Every request after the reset hangs. The attempts whose turn of the pace
// passes the bound are refused (ErrRateLimited) once that wait is over, a
// tenth of WithMaxRetryAfter past the reset and its spread, and send
// nothing: the host gets the scout and the nine attempts whose turns come
// within the bound (36 s apart), as before the scout rule, no more.
func TestRateLimitNothingSentScoutThatHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now().Truncate(time.Hour)
		srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 300 * time.Millisecond, ok: map[int]int{}, throttled: map[int]int{}}
		var mu sync.Mutex
		late := 0 // requests sent at or after the reset
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if !time.Now().Before(start.Add(time.Hour)) {
				mu.Lock()
				late++
				mu.Unlock()
				<-req.Context().Done() // the scout hangs
				return nil, context.Cause(req.Context())
			}
			return handlerRT{srv}.RoundTrip(req)
		})
		client := &http.Client{Transport: New(base, WithMaxRetries(0))}
		useFirstHour(t, client, start, 99)
		time.Sleep(time.Until(start.Add(time.Hour - time.Second)))
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
			t.Fatalf("last call of the first hour: %d, %v", code, err)
		}
		// The reset's spread is 1 s at most, the wait for the scout's
		// answer 6 s past it at most.
		within := time.Until(start.Add(time.Hour+7*time.Second)) + 100*time.Millisecond
		var refused, hung int
		eachOfBatch(t, client, 50, func(code int, err error, took time.Duration) {
			switch {
			case errors.Is(err, ErrRateLimited) && took <= within:
				refused++
			case err != nil && !errors.Is(err, ErrRateLimited):
				hung++ // the scout, cut by the call's budget
			default:
				t.Errorf("a call: %d, %v after %v; want ErrRateLimited within %v, or the scout's hang", code, err, took, within)
			}
		})
		mu.Lock()
		defer mu.Unlock()
		if hung != late || hung+refused != 50 || late > 10 {
			t.Errorf("%d calls hung, %d refused, the host got %d requests after the reset; want one hung for each request, the others refused, 10 requests at most (the scout and 9 turns)", hung, refused, late)
		}
	})
}
