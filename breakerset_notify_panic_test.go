package resilient

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
)

// TestBreakerObserverPanicStillTellsTheOthers: an observer that panics on
// a change does not keep it from the observers after it nor from the
// logger (WithBreakerObserver: each is called on every state change). Here
// the first observer panics on a.test's trip; the second (as
// resilientotel's instrumentation would be) and the log are told of it all
// the same, once, and the panic still reaches the caller.
func TestBreakerObserverPanicStillTellsTheOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hosts := bkNet{"a.test": bkDead()}
		var second []string // written by the delivering goroutine only
		var log bytes.Buffer
		panicked := false
		tr := New(hosts, WithMaxRetries(0), WithoutHedging(),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
			WithLogger(slog.New(slog.NewTextHandler(&log, nil))),
			WithBreakerObserver(func(BreakerChange) {
				if !panicked {
					panicked = true
					panic("observer exploded")
				}
			}),
			WithBreakerObserver(func(c BreakerChange) {
				second = append(second, c.Key+" "+c.From.String()+"->"+c.To.String())
			}))
		mustPanic(t, "the observer's panic was not propagated", func() {
			bkCall(t, tr, "http://a.test/")
		})
		_, _, err := bkCall(t, tr, "http://a.test/") // refused: delivers what waits
		bkWantOpen(t, err)
		if want := []string{"http://a.test:80 closed->open"}; !slices.Equal(second, want) {
			t.Errorf("the second observer was told %q, want %q", second, want)
		}
		if n := strings.Count(log.String(), "breaker state change"); n != 1 {
			t.Errorf("the log holds %d breaker changes, want 1:\n%s", n, log.String())
		}
	})
}
