package resilient

import (
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitWindowExpiresWithoutResets: one response of a host whose
// quota (60, no window of its own) has 59 left announces an hour's window
// (a reset 59 minutes ahead, one glitch; or a policy announced once), and
// every response after it announces the same limit and count without a
// reset nor a policy. That window slows a client calling at half the quota
// no longer than MaxBelievedReset, as it does when the later responses
// announce resets that never confirm it
// (TestRateLimitWindowEstimateBoundedByMaxBelievedReset): a response
// without a reset confirms no window either. (Only a response with a reset
// could drop the estimate: the pace of 60 an hour held for good, calls
// refused or held to the end of the run.)
func TestRateLimitWindowExpiresWithoutResets(t *testing.T) {
	runResetlessWindow(t, "the pace", func() Option { return WithMaxRetries(0) })
}

// runResetlessWindow runs the case of TestRateLimitWindowExpiresWithoutResets
// with each of its two ways to announce the window once, over a Transport
// with the option store returns (a new one for each case), and fails t
// when what paces (named by by) still holds or refuses calls 10s after
// MaxBelievedReset.
func runResetlessWindow(t *testing.T, by string, store func() Option) {
	for _, tc := range []struct {
		name             string
		limit, remaining string   // the names of the fields every response sends
		first            []string // what the first one adds
	}{
		{"estimated from one reset", "X-RateLimit-Limit", "X-RateLimit-Remaining", []string{"X-RateLimit-Reset", formatInt(int64(59 * time.Minute / time.Second))}},
		{"policy announced once", "RateLimit-Limit", "RateLimit-Remaining", []string{"RateLimit-Policy", "60;w=3540"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					w.Header().Set(tc.limit, "60")
					w.Header().Set(tc.remaining, "59")
					if n == 0 {
						w.Header().Set(tc.first[0], tc.first[1])
					}
				}}
				client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0), store())}
				var refused, held int
				var last time.Duration
				for range 3600 { // two hours, 30 calls a minute
					time.Sleep(2 * time.Second)
					sent := time.Now()
					code, err := do(t, client, "GET", "http://api.test/x")
					switch {
					case code != 200 && !errors.Is(err, ErrRateLimited):
						t.Fatalf("call at %v: %d, %v", time.Since(start), code, err)
					case code != 200:
						refused++
						last = sent.Sub(start)
					case time.Since(sent) != 0:
						held++
						last = sent.Sub(start)
					}
				}
				if held+refused == 0 {
					t.Fatalf("no call held by %s: the test paces nothing", by)
				}
				if last > MaxBelievedReset+10*time.Second {
					t.Errorf("%d calls refused and %d held by %s, the last %v after the first response; want none 10s after MaxBelievedReset (%v)", refused, held, by, last, MaxBelievedReset)
				}
			})
		})
	}
}
