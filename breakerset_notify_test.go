package resilient

import (
	"fmt"
	"testing"
	"testing/synctest"
)

// TestBreakerChangesQueueBound checks that the state changes waiting to be
// delivered are bounded (WithBreakerObserver): while an observer holds the
// delivery, 300 more breakers open, and it is told of the first 256 of
// them only, so that a storm cannot grow the queue without bound.
func TestBreakerChangesQueueBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hosts := bkNet{}
		for i := range 301 {
			hosts[fmt.Sprintf("h%d.test", i)] = bkDead()
		}
		release := make(chan struct{})
		var told []BreakerChange // written by the delivering goroutine only
		tr := New(hosts, WithMaxRetries(0),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
			WithBreakerObserver(func(c BreakerChange) {
				if len(told) == 0 {
					<-release // the first change holds the delivery
				}
				told = append(told, c)
			}))
		done := make(chan struct{})
		go func() {
			defer close(done)
			bkCall(t, tr, "http://h0.test/") // delivers its change, and the queue's
		}()
		synctest.Wait() // h0's observer holds the delivery
		for i := 1; i <= 300; i++ {
			bkCall(t, tr, fmt.Sprintf("http://h%d.test/", i))
		}
		close(release)
		<-done
		if len(told) != 1+maxQueuedChanges {
			t.Fatalf("the observer was told of %d changes, want %d (h0's, then the %d queued)", len(told), 1+maxQueuedChanges, maxQueuedChanges)
		}
		if last := told[len(told)-1].Key; last != "http://h256.test:80" {
			t.Errorf("last change told is of %s, want http://h256.test:80 (the later ones dropped)", last)
		}
	})
}
