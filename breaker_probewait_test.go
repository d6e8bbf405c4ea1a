package resilient

import (
	"net/http"
	"strings"
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
