package resilient

import (
	"slices"
	"testing"
	"testing/synctest"
)

// TestBreakerChangesAfterPanicDeliveredBySuccesses: the changes that wait
// after an observer's panic are delivered by the Transport's next attempt
// (WithBreakerObserver), a success through a closed breaker included, as
// they are with WithMaxInFlight. Before, only an attempt that failed or
// was refused delivered them: while the Transport's calls succeeded, the
// observers and the log never learned that b.test's breaker had opened.
func TestBreakerChangesAfterPanicDeliveredBySuccesses(t *testing.T) {
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
		for range 3 {
			if code, _, err := bkCall(t, tr, "http://ok.test/"); err != nil || code != 200 {
				t.Fatalf("ok.test = %d, %v", code, err)
			}
		}
		want := []string{"http://h0.test:80 open", "http://a.test:80 open", "http://b.test:80 open"}
		if !slices.Equal(got, want) {
			t.Errorf("after 3 successful calls the observer was told %q, want %q: b.test's change still waits", got, want)
		}
	})
}
