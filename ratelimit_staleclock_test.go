package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestStaticPaceKeptWhenAnAttemptsClockIsOlder: an attempt's time is read
// as its call starts, before it takes its partition's lock; another
// attempt, whose time is read later, may take the lock first (callers
// contending for one partition, or a WithRateLimitKey that takes a while,
// as here). The pace's limiter, given the older time after the later one,
// counted the time between them as refilled a second time: each such
// attempt made up to that much of a token, and the host got more than the
// pace allows (64 callers contending for a pace of 200 a second sent 10%
// more). Two callers, one of whose keys takes half a second, send no more
// than the pace allows in all.
func TestStaticPaceKeptWhenAnAttemptsClockIsOlder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var sent []time.Time
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			sent = append(sent, time.Now())
			mu.Unlock()
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		key := func(req *http.Request) string {
			if req.Header.Get("X-Slow") != "" {
				time.Sleep(500 * time.Millisecond) // a tenant's lookup
			}
			return "tenant"
		}
		tr := New(base, WithRateLimit(1, 1), WithRateLimitKey(key), WithMaxRetries(0), WithMaxElapsed(0))
		const run = 30 * time.Second
		start := time.Now()
		var wg sync.WaitGroup
		for _, slow := range []bool{false, true} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < run {
					req := newRequest(t, t.Context(), "GET", "http://api.test/", nil)
					if slow {
						req.Header.Set("X-Slow", "1")
					}
					resp, err := tr.RoundTrip(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		span := sent[len(sent)-1].Sub(sent[0])
		if allowed := 1 + int(span/time.Second); len(sent) > allowed {
			t.Errorf("%d requests sent in %v at a pace of one a second with a burst of 1, want %d at most", len(sent), span, allowed)
		}
	})
}
