package resilient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// TestRateLimitPauseWakesTurnWaiters checks what an attempt waiting for
// its turn of the server's pace (100 an hour: its turn at 37.9s; 1000 an
// hour: at 3.79s) does when a call in flight gets a 429 whose Retry-After
// pauses the host meanwhile. A pause that will still hold it at its turn,
// and then ends past the bound of the server's waits in all
// (WithMaxRetryAfter, 60s, or the call's own through WithCallOptions) or
// at or past the call's deadline, refuses it at once, with nothing sent:
// it slept its whole turn, and was refused at the gate then. A pause over
// by its turn changes nothing, and one that ends past its turn but within
// the bound holds it to the pause's end.
func TestRateLimitPauseWakesTurnWaiters(t *testing.T) {
	const slow = time.Hour / 95 // the turn of a pace of 100 an hour, with its margin: 37.9s
	const fast = slow / 10      // of 1000 an hour: 3.79s
	for _, tc := range []struct {
		name       string
		limit      int           // an hour
		pauseAt    time.Duration // when the 429 comes
		retryAfter string        // its Retry-After
		maxWait    time.Duration // the call's WithMaxRetryAfter; 0 for the Transport's 60s
		deadline   time.Duration // of the call's context; 0 for none
		refused    bool
		from, to   time.Duration // when the waiter is sent, when not refused
	}{
		{name: "past the bound", limit: 100, pauseAt: 10 * time.Second, retryAfter: "55", refused: true},
		{name: "past the call's bound", limit: 100, pauseAt: 10 * time.Second, retryAfter: "40", maxWait: 45 * time.Second, refused: true},
		{name: "past the deadline", limit: 100, pauseAt: 10 * time.Second, retryAfter: "40", deadline: 45 * time.Second, refused: true},
		{name: "over by the turn", limit: 100, pauseAt: 10 * time.Second, retryAfter: "5", from: slow, to: slow},
		{name: "fast past the bound", limit: 1000, pauseAt: time.Second, retryAfter: "60", refused: true},
		{name: "fast over by the turn", limit: 1000, pauseAt: time.Second, retryAfter: "2", from: fast, to: fast},
		// The gate holds it from its turn to the pause's end, and its
		// spread (a tenth of that wait); the pause's end is past the
		// next turn, which it takes then.
		{name: "fast within the bound", limit: 1000, pauseAt: time.Second, retryAfter: "10", from: 11 * time.Second, to: 11*time.Second + (11*time.Second-fast)/10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var log sendLog
				var mu sync.Mutex
				var sent []string
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					log.add(time.Now())
					mu.Lock()
					sent = append(sent, r.URL.Path)
					mu.Unlock()
					if r.URL.Path == "/held" {
						time.Sleep(tc.pauseAt)
						h := http.Header{"Retry-After": {tc.retryAfter}}
						return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h, Body: http.NoBody, Request: r}, nil
					}
					h := quotaHeader(tc.limit)
					h.Set("X-Ratelimit-Remaining", "2") // not spent by the call in flight
					return &http.Response{StatusCode: http.StatusOK, Header: h, Body: http.NoBody, Request: r}, nil
				})
				tr := New(base, WithMaxRetries(0))
				const host = "https://api.test"
				for _, path := range []string{"/a", "/b"} { // the first learns the pace, a burst of 2
					if err := getClosed(t, tr, host+path); err != nil {
						t.Fatal(err)
					}
				}
				start := time.Now()
				var wg sync.WaitGroup
				wg.Go(func() { getClosed(t, tr, host+"/held") }) // takes the last token, answered at pauseAt
				synctest.Wait()
				ctx := context.Background()
				if tc.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				if tc.maxWait > 0 {
					ctx = WithCallOptions(ctx, WithMaxRetryAfter(tc.maxWait))
				}
				resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, host+"/w", nil))
				took := time.Since(start)
				if err == nil {
					resp.Body.Close()
				}
				wg.Wait()
				var at time.Duration
				mu.Lock()
				for i, path := range sent {
					if path == "/w" {
						at = log.times()[i].Sub(start)
					}
				}
				mu.Unlock()
				if tc.refused {
					if !errors.Is(err, ErrRateLimited) {
						t.Errorf("the waiting call: %v; want ErrRateLimited", err)
					}
					if took != tc.pauseAt {
						t.Errorf("the waiting call was refused after %v, want %v (when the pause was announced)", took, tc.pauseAt)
					}
					if at != 0 {
						t.Errorf("the waiting call was sent at %v, in the pause", at)
					}
					return
				}
				if err != nil {
					t.Fatalf("the waiting call: %v", err)
				}
				if at < tc.from || at > tc.to {
					t.Errorf("the waiting call was sent at %v, want from %v to %v", at, tc.from, tc.to)
				}
			})
		})
	}
}

// TestRateLimitFleetPauseWakesTurnWaiters checks the same of a pause
// another member of the fleet heard (a 429 whose Retry-After pauses the
// host for 115s, at 10s), told through the QuotaStore's QuotaWatcher, while
// an attempt waits for its turn of the caller's own pace (WithRateLimit,
// one a minute: its turn at 60s): the pause then ends 65s after its turn,
// more than the bound of the server's waits (60s), and it is refused at
// once, with nothing sent. It slept to its turn, and was refused there.
func TestRateLimitFleetPauseWakesTurnWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := new(memQuota)
		var log sendLog
		a := New(roundTripFunc(func(r *http.Request) (*http.Response, error) {
			log.add(time.Now())
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
		}), WithMaxRetries(0), WithQuotaStore(mem), WithRateLimit(rate.Limit(1.0/60), 1))
		b := New(roundTripFunc(func(r *http.Request) (*http.Response, error) {
			h := http.Header{"Retry-After": {"115"}}
			return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h, Body: http.NoBody, Request: r}, nil
		}), WithMaxRetries(0), WithQuotaStore(mem))
		const host = "https://api.test"
		if err := getClosed(t, a, host+"/a"); err != nil { // takes the pace's token
			t.Fatal(err)
		}
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() {
			time.Sleep(10 * time.Second)
			getClosed(t, b, host+"/b")
		})
		err := getClosed(t, a, host+"/w")
		took := time.Since(start)
		wg.Wait()
		if !errors.Is(err, ErrRateLimited) {
			t.Errorf("the waiting call: %v; want ErrRateLimited", err)
		}
		if took != 10*time.Second {
			t.Errorf("the waiting call was refused after %v, want 10s (when the fleet's pause was announced)", took)
		}
		if n := len(log.times()); n != 1 {
			t.Errorf("member a sent %d requests, want 1 (none in the pause)", n)
		}
	})
}
