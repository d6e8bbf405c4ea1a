package resilient

import (
	"fmt"
	"slices"
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

// TestBreakerObserverPanicKeepsLaterChanges: an observer that panics on a
// change of a batch the delivery took from the queue does not lose the
// changes after it: the next attempt of the Transport delivers them, in
// order, whatever its outcome: a refusal, or a success through a closed
// breaker (a success did not deliver them: while the Transport's calls
// succeeded, the observers and the log never learned that b.test's
// breaker had opened). Here the observer told of h0's change trips a.test
// and b.test through the Transport, whose changes wait for it, then panics
// on a.test's.
func TestBreakerObserverPanicKeepsLaterChanges(t *testing.T) {
	for _, next := range []string{"http://a.test/", "http://ok.test/"} {
		t.Run(next, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hosts := bkNet{"h0.test": bkDead(), "a.test": bkDead(), "b.test": bkDead(), "ok.test": new(bkHost)}
				var tr *Transport
				var got []string // written by the delivering goroutine only
				tr = New(hosts, WithMaxRetries(0), WithoutHedging(),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
					WithBreakerObserver(func(c BreakerChange) {
						got = append(got, c.Key+" "+c.To.String())
						switch c.Key {
						case "http://h0.test:80":
							bkCall(t, tr, "http://a.test/") // queued: h0's delivery is on
							bkCall(t, tr, "http://b.test/")
						case "http://a.test:80":
							panic("observer exploded")
						}
					}))
				bkCall(t, tr, "http://ok.test/") // ok.test's breaker exists: its calls are successes alone
				mustPanic(t, "the observer's panic was not propagated", func() {
					bkCall(t, tr, "http://h0.test/")
				})
				code, _, err := bkCall(t, tr, next) // delivers what waits
				if next == "http://a.test/" {
					bkWantOpen(t, err)
				} else if err != nil || code != 200 {
					t.Fatalf("ok.test = %d, %v", code, err)
				}
				want := []string{"http://h0.test:80 open", "http://a.test:80 open", "http://b.test:80 open"}
				if !slices.Equal(got, want) {
					t.Errorf("after a call to %s the observer was told %q, want %q", next, got, want)
				}
			})
		})
	}
}
