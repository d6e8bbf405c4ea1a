package resilient

import (
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerSlowSuccessesKeepHealthyHostOpen: a host that answers 200
// after 25s to two calls in three, and 500 at once to the third (33%
// failures, under the default 0.5), called twice a second, keeps its
// breaker closed. Before, the quick failures of each closed spell reached
// MinRequests before its first slow success landed, and the window, 20
// failures to none, tripped it: 234 of 300 calls were refused. A host
// whose quick failures are 70% of its answers still trips, its slow
// successes in flight notwithstanding; and so does one that hangs 60% of
// its attempts (for longer than the test) and fails the others at once:
// attempts in flight weigh as outcomes to come for two Windows at most.
func TestBreakerSlowSuccessesKeepHealthyHostOpen(t *testing.T) {
	for _, tc := range []struct {
		name      string
		quickFail func(n int32) bool // whether the nth attempt fails at once; the others are slow
		slow      time.Duration      // how long a slow attempt takes to answer 200 (0: it hangs)
		wantTrip  bool
	}{
		{"33% quick failures, slow successes", func(n int32) bool { return n%3 == 0 }, 25 * time.Second, false},
		{"70% quick failures, slow successes", func(n int32) bool { return n%10 < 7 }, 25 * time.Second, true},
		{"40% quick failures, 60% hang", func(n int32) bool { return n%10 < 4 }, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n, hits atomic.Int32
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					hits.Add(1)
					code := http.StatusInternalServerError
					if !tc.quickFail(n.Add(1)) {
						code = http.StatusOK
						var answer <-chan time.Time // nil: hangs
						if tc.slow > 0 {
							answer = time.After(tc.slow)
						}
						select {
						case <-answer:
						case <-req.Context().Done():
							return nil, req.Context().Err()
						}
					}
					return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				})
				tr := New(base, WithMaxRetries(0), WithAttemptTimeout(time.Hour), WithMaxElapsed(time.Hour))
				const calls = 300 // one every 500ms, for 2.5 minutes
				refused, _ := pacedCalls(t, tr, "http://slow.test/", calls, 500*time.Millisecond)
				switch {
				case tc.wantTrip && (refused == 0 || hits.Load() >= calls):
					t.Errorf("%s: the host got %d of %d calls, %d refused: its breaker never opened", tc.name, hits.Load(), calls, refused)
				case !tc.wantTrip && refused > 5:
					t.Errorf("%d of %d calls refused (%d reached the host), want at most 5: the quick failures of a host failing 1 call in 3 tripped its breaker before its slow successes landed", refused, calls, hits.Load())
				}
			})
		})
	}
}

// TestClosedWindowPending: an attempt in flight that began in the spell's
// first Window weighs against a trip, as an outcome to come that may be a
// success, once the bucket it began in is past; one that began in the
// bucket of the outcomes just counted does not (callers that all call a
// dead host at once), nor any once the spell is two Windows old.
func TestClosedWindowPending(t *testing.T) {
	s := newBreakerSet(BreakerSettings{MinRequests: 4, FailureRatio: 0.5}, nil, nil)
	w := new(closedWindow)
	w.reset(0, s.period)
	early := w.inFlightWord(nil, 0)
	early.Add(1)
	w.inFlightWord(nil, 3).Add(1)
	for _, tc := range []struct{ now, want uint64 }{{0, 0}, {3, 1}, {4, 2}, {19, 2}, {20, 0}} {
		if got := w.pending(tc.now); got != tc.want {
			t.Errorf("pending(%d) = %d, want %d", tc.now, got, tc.want)
		}
	}

	for range 3 {
		w.failure(3, 3)
	}
	w.success(nil, 3, 3)
	if !s.tripped(w, 3) {
		t.Errorf("3 failures, 1 success, 1 attempt in flight since an earlier bucket (3 of 5 at best): not tripped, want tripped")
	}
	for range 5 {
		w.inFlightWord(nil, 3).Add(1) // began with the outcomes: not counted
	}
	if !s.tripped(w, 3) {
		t.Errorf("the same and 5 attempts in flight since the current bucket: not tripped, want tripped")
	}
	w.inFlightWord(nil, 1).Add(2)
	if s.tripped(w, 3) {
		t.Errorf("3 failures, 1 success, 3 attempts in flight since earlier buckets (3 of 7 at best): tripped, want not")
	}
	w.inFlightWord(nil, 1).Add(-2)
	if !s.tripped(w, 3) {
		t.Errorf("after two of those attempts ended uncounted (3 of 5 at best): not tripped, want tripped")
	}
}
