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

// TestBreakerRefusalAfterAnsweredProbe checks that a probe that has
// answered no longer holds its slot in the time a half-open refusal names:
// the next probe is due when the oldest probe still unanswered goes stale.
func TestBreakerRefusalAfterAnsweredProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bkDead()
		tr := New(bkNet{"api.test": h}, WithMaxRetries(0),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 10 * time.Second, HalfOpenRequests: 2}))
		const url = "https://api.test/"
		bkCall(t, tr, url) // a 500: open
		time.Sleep(10 * time.Second)
		h.status.Store(http.StatusOK)
		if code, _, err := bkCall(t, tr, url); code != http.StatusOK {
			t.Fatalf("first probe = %d, %v; want 200", code, err) // half-open still: 1 of 2
		}
		time.Sleep(3 * time.Second)
		h.wait = make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			bkCall(t, tr, url) // the second probe hangs
		}()
		synctest.Wait()
		time.Sleep(time.Second)
		_, _, err := bkCall(t, tr, url)
		bkWantOpen(t, err)
		// The second probe went 1s ago: ProbeTimeout (OpenTimeout, 10s)
		// lets the next one go in 9s; the first, answered 4s ago, holds
		// nothing.
		if want := "next probe in 9s at the latest"; !strings.HasSuffix(err.Error(), want) {
			t.Errorf("err = %q, want it to end in %q", err, want)
		}
		close(h.wait)
		<-done
	})
}

// TestBreakerRefusalAfterReopen checks that a probe of an earlier
// half-open spell, still unanswered when another probe's failure reopened
// the breaker, holds no slot in the time a later spell's refusal names.
func TestBreakerRefusalAfterReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			code := http.StatusInternalServerError
			if req.URL.Path == "/hang" {
				select {
				case <-release:
				case <-req.Context().Done():
					return nil, context.Cause(req.Context())
				}
				code = http.StatusOK
			}
			return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithMaxRetries(0), WithBreaker(BreakerSettings{
			ConsecutiveFailures: 1, OpenTimeout: 10 * time.Second, HalfOpenRequests: 2, ProbeTimeout: time.Minute}))
		var wg sync.WaitGroup
		bkCall(t, tr, "https://api.test/") // a 500: open
		time.Sleep(10 * time.Second)
		wg.Go(func() { bkCall(t, tr, "https://api.test/hang") }) // the first probe hangs
		synctest.Wait()
		bkCall(t, tr, "https://api.test/") // the second fails: open again
		time.Sleep(10 * time.Second)
		for range 2 { // both probes of the new spell hang
			wg.Go(func() { bkCall(t, tr, "https://api.test/hang") })
		}
		synctest.Wait()
		time.Sleep(time.Second)
		_, _, err := bkCall(t, tr, "https://api.test/")
		bkWantOpen(t, err)
		// The probes of this spell went 1s ago: ProbeTimeout (1m) lets the
		// next one go in 59s; the first spell's, 11s ago, holds nothing.
		if want := "next probe in 59s at the latest"; !strings.HasSuffix(err.Error(), want) {
			t.Errorf("err = %q, want it to end in %q", err, want)
		}
		close(release)
		wg.Wait()
	})
}
