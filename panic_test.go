package resilient

import (
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestPanicReleasesSlots: a panic in the base RoundTripper or in a
// Classifier, recovered by the caller, releases every slot the layers took:
// the rate limiter's count of attempts in flight (which, leaked, shut the
// quota gate of a partition whose server announced 3 remaining) and the
// breaker's (not counted: 25 panics do not trip it). The calls that follow
// reach the server at once.
//
// (The server announces no limit, so that nothing paces the calls.)
func TestPanicReleasesSlots(t *testing.T) {
	for _, tc := range []struct {
		where   string
		breaker bool
	}{{"base", true}, {"classifier", true}, {"base", false}, {"classifier", false}} {
		where := tc.where
		name := where
		if !tc.breaker {
			name += " without breaker"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var panicking atomic.Bool
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					w.Header().Set("X-RateLimit-Remaining", "3")
					w.Header().Set("X-RateLimit-Reset", "60")
				}}
				var base http.RoundTripper = handlerRT{srv}
				opts := []Option{WithMaxRetries(0)}
				if !tc.breaker {
					opts = append(opts, WithoutBreaker())
				}
				switch where {
				case "base":
					base = roundTripFunc(func(req *http.Request) (*http.Response, error) {
						if panicking.Load() {
							panic("base exploded")
						}
						return handlerRT{srv}.RoundTrip(req)
					})
				case "classifier":
					opts = append(opts, WithClassifier(func(resp *http.Response, _ *APIError, _ error, def Class) Class {
						if panicking.Load() {
							panic("classifier exploded")
						}
						return def
					}))
				}
				client := &http.Client{Transport: New(base, opts...)}
				if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 {
					t.Fatalf("first call: %d, %v", code, err)
				}
				panicking.Store(true)
				const panics = 25
				for range panics {
					mustPanic(t, "the panic was not propagated", func() {
						req, _ := http.NewRequest("GET", "http://api.test/x", nil)
						client.Do(req)
					})
				}
				panicking.Store(false)
				seen := len(srv.seen(""))
				start := time.Now()
				for i := range 10 {
					if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 {
						t.Fatalf("call %d after %d panics: %d, %v; want 200", i, panics, code, err)
					}
				}
				if d := time.Since(start); d != 0 {
					t.Errorf("10 calls after the panics waited %v, want none: a slot leaked", d)
				}
				if n := len(srv.seen("")) - seen; n != 10 {
					t.Errorf("the server saw %d of the 10 calls", n)
				}
			})
		})
	}
}

// TestPanicInBreakerObserverReleasesProbe: a breaker observer that panics
// on the change to half-open, delivered on the goroutine of the attempt
// that took the probe's slot, releases that slot with the panic: the next
// attempt probes, and the host is not refused for good ("half-open,
// waiting for its probe" on every call, the stale-probe release finding no
// probe to free).
func TestPanicInBreakerObserverReleasesProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var failing atomic.Bool
		failing.Store(true)
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			if failing.Load() {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}}
		observer := func(c BreakerChange) {
			if c.To == BreakerHalfOpen {
				panic("observer exploded")
			}
		}
		tr := New(handlerRT{srv}, WithMaxRetries(0), WithoutRetryBudget(),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Second}),
			WithBreakerObserver(observer))
		client := &http.Client{Transport: tr}
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 500 {
			t.Fatalf("first call: %d, %v; want the 500 that trips the breaker", code, err)
		}
		failing.Store(false)
		time.Sleep(2 * time.Second) // the breaker goes half-open with the next attempt
		mustPanic(t, "the observer's panic was not propagated", func() {
			req, _ := http.NewRequest("GET", "http://api.test/x", nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		})
		// However long the caller waits (past ProbeTimeout, which is
		// OpenTimeout), the host must answer again.
		time.Sleep(time.Minute)
		for i := range 3 {
			if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 {
				t.Fatalf("call %d after the observer's panic: %d, %v; want 200 (the probe's slot leaked)", i, code, err)
			}
		}
	})
}
