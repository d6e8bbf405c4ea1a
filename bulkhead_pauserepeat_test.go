package resilient

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxInFlightPausesAfterPassedSlotBoundedInAll pins that the waits
// for the host's pauses of an attempt queued for a slot (WithMaxInFlight)
// are bounded by WithMaxRetryAfter in all, its spread included, across
// the passes it makes through the rate limiter after it passed its slot
// on for a pause learned meanwhile (README, Bounds: "the limit bounds an
// attempt's waits for pauses and turns of the pace that follow one
// another (another call's 429 answered while it waits) in all, not each
// one"); the time it waited for the slot in between is not counted.
// Distilled from TestBoundsProperty's seed 66873.
//
// One slot, WithMaxRetryAfter(1s), answers after 1s. The first call's
// 429 (Retry-After: 1) pauses the host from 1s to about 2s; the two calls
// queued behind it pass the slot on and wait for that pause; one of them
// is sent and gets a second 429, which pauses the host again while the
// other waits for its slot: that one, which waited about 1s for the first
// pause already, is refused rather than wait about 1s more.
func TestMaxInFlightPausesAfterPassedSlotBoundedInAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxRetryAfter = time.Second
		base := numbered(func(i int, r *http.Request) (*http.Response, error) {
			time.Sleep(time.Second)
			resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}
			if i < 2 {
				resp.StatusCode = http.StatusTooManyRequests
				resp.Header.Set("Retry-After", "1")
			}
			return resp, nil
		})
		var obs observed
		tr := New(base, WithMaxInFlight(1), WithMaxRetries(0), WithMaxRetryAfter(maxRetryAfter), WithObserver(obs.add))
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * time.Millisecond) // in this order
				getIn(t, tr, context.Background(), "http://api.test/x")
			})
		}
		wg.Wait()
		for _, a := range obs.all() {
			if limit := maxRetryAfter + maxRetryAfter/10; a.LocalWait > limit {
				t.Errorf("an attempt waited %v for the rate limiter (%v for a slot), past WithMaxRetryAfter %v and its spread: %v in all; attempt %+v",
					a.LocalWait, a.SlotWait, maxRetryAfter, limit, a)
			}
		}
	})
}
