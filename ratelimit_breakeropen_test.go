package resilient

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// TestTurnWaitEndsWhenTheBreakerOpens checks that an attempt waiting for
// its turn of the pace (one each 8s, burst 1) whose host's breaker opens
// meanwhile (a 500 at 500ms, open for 30s) goes on to the breaker then,
// and is refused at once, as one that finds the breaker open before it
// waits is (skipWait), instead of waiting until its turn at 8s to be
// refused. Its turn is given back: a call to another host, paced as one
// by WithRateLimitKey, that comes at 1s is sent at 8s, the turn after the
// 500's, not at 16s behind a turn nobody sends on.
func TestTurnWaitEndsWhenTheBreakerOpens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log sendLog
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			code := http.StatusOK
			if r.URL.Path == "/fail" {
				time.Sleep(500 * time.Millisecond)
				code = http.StatusInternalServerError
			} else {
				log.add(time.Now())
			}
			return &http.Response{StatusCode: code, Body: http.NoBody, Request: r}, nil
		})
		tr := New(base, WithMaxRetries(0), WithRateLimit(rate.Every(8*time.Second), 1),
			WithRateLimitKey(func(*http.Request) string { return "api" }),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 30 * time.Second}))
		start := time.Now()
		var wg sync.WaitGroup
		callAt(t, &wg, tr, "https://x.test/fail", 0, 0, nil)
		var refusedAt time.Duration
		wg.Go(func() {
			time.Sleep(100 * time.Millisecond)
			_, err := getIn(t, tr, context.Background(), "https://x.test/b")
			refusedAt = time.Since(start)
			bkWantOpen(t, err)
		})
		time.Sleep(time.Second)
		if _, err := getIn(t, tr, context.Background(), "https://y.test/c"); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if refusedAt != 500*time.Millisecond {
			t.Errorf("the call waiting for its turn was refused at %v, want 500ms: when its breaker opened", refusedAt)
		}
		if got := offsets(log.times(), start); len(got) != 1 || got[0] != 8*time.Second {
			t.Errorf("the other host's call was sent at %v, want 8s: the turn given back", got)
		}
	})
}
