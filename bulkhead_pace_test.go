package resilient

import (
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// This file checks that an attempt that waited for a slot of
// WithMaxInFlight is sent on a token of the rate limiter's pace taken when
// it got the slot, not on the one it took before it waited.

// TestSlotWaitTakesAFreshTurn checks that callers that took their tokens
// of the pace (one a second, burst 1) and then waited for the host's only
// slot are not sent together when it frees: the token each took went
// stale while it waited, as the bucket refilled to its cap, and sent on it
// the host got requests at 0s, 5s and 5s.
func TestSlotWaitTakesAFreshTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &holdServer{release: make(chan struct{})}
		tr := New(h, WithMaxRetries(0), WithMaxInFlight(1), WithRateLimit(1, 1))
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		callAt(t, &wg, tr, "https://api.test/hold", 0, 0, errs) // holds the slot until 5s
		callAt(t, &wg, tr, "https://api.test/b", time.Second, 0, errs)
		callAt(t, &wg, tr, "https://api.test/c", 2*time.Second, 0, errs)
		time.Sleep(5 * time.Second)
		close(h.release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("a call failed: %v", err)
			}
		}
		sends := h.log.times()
		if len(sends) != 3 {
			t.Fatalf("the host got %d requests (at %v), want 3", len(sends), offsets(sends, start))
		}
		if v := passedPace(sends, 1, 1, start); v != "" {
			t.Errorf("%s (sent at %v)", v, offsets(sends, start))
		}
		// The second caller takes the token refilled by 5s; the third,
		// its slot passed on, the turn after it.
		if got, want := offsets(sends, start), []time.Duration{0, 5 * time.Second, 6 * time.Second}; !slices.Equal(got, want) {
			t.Errorf("sent at %v, want %v", got, want)
		}
	})
}

// TestSlotWaitRefusedGivesBackNoStaleToken checks that the token of the
// pace (one a second, burst 2) of an attempt refused at the end of its
// wait for a slot is not given back once the bucket needed its room: it
// took it at 1ms from a full bucket, which refilled to nearly full while
// it waited, and given back at 1.5s after two other calls took the
// bucket's tokens at 1s, it let a third go at 1.501s: 3 requests in 0.5s
// where 2.5 are allowed. (A token whose room the bucket never needed is
// given back: TestRefusedBelowSpendsNoPace.) The calls go to hosts of
// their own (their slots apart), paced as one by WithRateLimitKey.
func TestSlotWaitRefusedGivesBackNoStaleToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log sendLog
		release := make(chan struct{})
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/hold" {
				<-release
			} else {
				log.add(time.Now())
			}
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
		})
		tr := New(base, WithMaxRetries(0), WithMaxInFlight(1), WithRateLimit(1, 2), WithRateLimitKey(func(r *http.Request) string {
			if r.URL.Path == "/hold" {
				return "" // not paced
			}
			return "api"
		}))
		start := time.Now()
		var wg sync.WaitGroup
		callAt(t, &wg, tr, "https://a.test/hold", 0, 0, nil) // holds a.test's slot
		errs := make(chan error, 1)
		callAt(t, &wg, tr, "https://a.test/c", time.Millisecond, 1500*time.Millisecond, errs)
		callAt(t, &wg, tr, "https://b.test/d", time.Second, 0, nil)
		callAt(t, &wg, tr, "https://c.test/e", time.Second, 0, nil)
		callAt(t, &wg, tr, "https://d.test/f", 1501*time.Millisecond, 0, nil)
		if err := <-errs; !errors.Is(err, ErrTooManyInFlight) {
			t.Errorf("the call that waited for a.test's slot: err = %v, want ErrTooManyInFlight", err)
		}
		time.Sleep(3 * time.Second)
		close(release)
		wg.Wait()
		sends := log.times()
		if len(sends) != 3 {
			t.Fatalf("the calls were sent at %v, want 3 of them", offsets(sends, start))
		}
		if v := passedPace(sends, 1, 2, start); v != "" {
			t.Errorf("%s (sent at %v)", v, offsets(sends, start))
		}
	})
}
