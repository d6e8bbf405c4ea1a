package resilient

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"
)

// referenceBreaker is the breaker as it was before closed breakers counted
// outcomes in an atomic window: a gobreaker TwoStepCircuitBreaker that sees
// every attempt, with the trip rule of BreakerSettings as its ReadyToTrip.
func referenceBreaker(bs BreakerSettings) *gobreaker.TwoStepCircuitBreaker[struct{}] {
	s := newBreakerSet(bs, nil, nil)
	st := s.settings
	consecutive, minRequests, ratio := uint32(s.consecutive), s.minRequests, s.ratio
	st.ReadyToTrip = func(c gobreaker.Counts) bool {
		if consecutive > 0 && c.ConsecutiveFailures >= consecutive {
			return true
		}
		n := uint64(c.TotalSuccesses) + uint64(c.TotalFailures)
		return n >= minRequests && float64(c.TotalFailures)/float64(n) >= ratio
	}
	return gobreaker.NewTwoStepCircuitBreaker[struct{}](st)
}

// TestBreakerMatchesReference runs random sequences of outcomes, spread
// over fake time so that the window rolls, through the breaker middleware
// and through the reference gobreaker, and checks that both let the same
// attempts through and are in the same state after each of them: the trip
// points, the refusals and the half-open probes are those of gobreaker
// counting every attempt.
func TestBreakerMatchesReference(t *testing.T) {
	settings := []BreakerSettings{
		{},
		{MinRequests: 4, FailureRatio: 0.5, Window: 10 * time.Second, OpenTimeout: 5 * time.Second},
		{ConsecutiveFailures: 3, MinRequests: 1000, Window: 10 * time.Second, OpenTimeout: 5 * time.Second},
		{ConsecutiveFailures: 2, MinRequests: 5, FailureRatio: 0.3, Window: time.Second, OpenTimeout: 2 * time.Second, HalfOpenRequests: 2},
		{MinRequests: 1, FailureRatio: 1, Window: 100 * time.Millisecond, OpenTimeout: time.Second},
	}
	for i, bs := range settings {
		for seed := range uint64(20) {
			synctest.Test(t, func(t *testing.T) {
				rnd := rand.New(rand.NewPCG(seed, uint64(i)))
				ref := referenceBreaker(bs)
				var status atomic.Int32
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					return &http.Response{StatusCode: int(status.Load()), Body: http.NoBody, Request: req}, nil
				})
				bt := bkMiddleware(base, 8, WithBreaker(bs))
				window, open := bs.Window, bs.OpenTimeout
				if window == 0 {
					window, open = defaultBreakerWindow, defaultBreakerOpenTimeout
				}
				seen := map[gobreaker.State]bool{}
				for n := range 400 {
					// Mostly bursts of one kind, so that both trip and
					// recover; now and then a throttled (excluded) one.
					codes := []int{200, 200, 200, 500, 429}
					if n/25%2 == 1 {
						codes = []int{500, 500, 500, 200, 429}
					}
					code := codes[rnd.IntN(len(codes))]
					status.Store(int32(code))

					seen[ref.State()] = true // half-open shows here, before a probe
					done, refErr := ref.Allow()
					if refErr == nil {
						var outcome error
						switch code {
						case 500:
							outcome = errBreakerFailure
						case 429:
							outcome = errBreakerExcluded
						}
						done(outcome)
					}
					_, err := bt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://api.test/", nil))
					if (refErr == nil) != (err == nil) {
						t.Fatalf("settings %d, seed %d, attempt %d (%d): reference allowed %v, breaker err %v", i, seed, n, code, refErr == nil, err)
					}
					if err != nil && !errors.Is(err, ErrCircuitOpen) {
						t.Fatalf("attempt %d: err %v", n, err)
					}
					e := bt.set.lookup(breakerKey{"http", "api.test"})
					got := gobreaker.StateClosed // no state machine until it first trips
					if m := e.m.Load(); m != nil {
						got = m.cb.State()
					}
					if want := ref.State(); got != want {
						t.Fatalf("settings %d, seed %d, attempt %d (%d): state %v, reference %v", i, seed, n, code, got, want)
					}
					time.Sleep(time.Duration(rnd.Int64N(int64(window / 32))))
					if rnd.IntN(20) == 0 {
						time.Sleep(open / 2)
					}
				}
				if len(seen) != 3 {
					t.Errorf("settings %d, seed %d: states seen %v, want all three", i, seed, seen)
				}
			})
		}
	}
}

// TestClosedWindowConcurrent counts successes and failures from many
// goroutines at once, contended enough to spread over stripes, and checks
// that none is lost.
func TestClosedWindowConcurrent(t *testing.T) {
	t.Parallel()
	var w closedWindow
	w.reset(0, int64(time.Second))
	const goroutines, each = 16, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			var st attemptState // each attempt draws its stripe from its own state
			for i := range each {
				if g == 0 && i%10 == 0 {
					w.failure(3, 3)
				} else {
					w.success(&st, 3, 3)
				}
			}
		})
	}
	wg.Wait()
	s, f, _ := w.counts(3)
	if s+f != goroutines*each || f != each/10 {
		t.Errorf("counts: %d successes, %d failures; want %d in all, %d failures", s, f, goroutines*each, each/10)
	}
	// Ten buckets later, they have left the window.
	if s, f, c := w.counts(13); s+f+c != 0 {
		t.Errorf("counts after the window: %d, %d, %d; want none", s, f, c)
	}
}

// TestClosedWindowLongAttempts: an outcome is counted in the bucket of its
// end, success or failure alike, whether or not its attempt started before
// the window's oldest bucket.
func TestClosedWindowLongAttempts(t *testing.T) {
	var w closedWindow
	w.reset(0, int64(time.Second))
	w.failure(2, 12) // started in bucket 2, ended in 12
	if s, f, c := w.counts(12); s != 0 || f != 1 || c != 1 {
		t.Errorf("after a failure of an attempt longer than the window: counts %d, %d, %d; want 0, 1, 1", s, f, c)
	}
	w.success(nil, 3, 14) // started in bucket 3, ended in 14
	if s, f, c := w.counts(14); s != 1 || f != 1 || c != 0 {
		t.Errorf("after a success of an attempt longer than the window: counts %d, %d, %d; want 1, 1, 0", s, f, c)
	}
	w.success(nil, 13, 14) // within the window: counted as of its end too
	for _, tc := range []struct{ now, want uint64 }{{22, 2}, {23, 2}, {24, 0}} {
		if s, _, _ := w.counts(tc.now); s != tc.want {
			t.Errorf("successes at %d = %d; want %d (counted in bucket 14)", tc.now, s, tc.want)
		}
	}
}

// TestClosedWindowSaturates checks that a bucket's count saturates instead
// of overflowing into its age.
func TestClosedWindowSaturates(t *testing.T) {
	var b atomic.Uint64
	b.Store(7<<bucketCountBits | bucketCountMax)
	addBucket(&b, 7)
	if got := b.Load(); got != 7<<bucketCountBits|bucketCountMax {
		t.Errorf("word %#x after a saturated add, want it unchanged", got)
	}
	addBucket(&b, 8)
	if got := b.Load(); got != 8<<bucketCountBits|1 {
		t.Errorf("word %#x after a newer age, want age 8 count 1", got)
	}
	addBucket(&b, 7)
	if got := b.Load(); got != 8<<bucketCountBits|1 {
		t.Errorf("word %#x after an older age, want it unchanged", got)
	}
}

// TestClosedWindowLongIdle: a bucket untouched for 2^39 bucket periods or
// more, its age ahead of the outcome's modulo 2^40, is older than the
// window, not newer: it rolls over, and counts the outcome.
func TestClosedWindowLongIdle(t *testing.T) {
	for _, old := range []uint64{0, 5<<bucketCountBits | 3} {
		for _, idle := range []uint64{1 << 39, 1<<39 + 10, 1<<40 - 1<<33} {
			age := (old>>bucketCountBits + idle) & bucketAgeMask
			var b atomic.Uint64
			b.Store(old)
			addBucket(&b, age)
			if got, want := b.Load(), age<<bucketCountBits|1; got != want {
				t.Errorf("word %#x after an outcome %d periods later: %#x, want %#x (rolled over)", old, idle, got, want)
			}
		}
	}
}

// TestBreakerTripsAfterLongSpell: a host called once, and again after two
// years in which its breaker stayed closed (no other host called, so none
// removed it), 2^39 bucket periods of a 1ms window, trips its breaker as
// any other: the window's buckets are older than the window, not newer.
func TestBreakerTripsAfterLongSpell(t *testing.T) {
	for _, first := range []int{http.StatusOK, http.StatusInternalServerError} {
		t.Run(strconv.Itoa(first), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := new(bkHost)
				h.status.Store(int32(first))
				tr := New(bkNet{"api.test": h}, WithMaxRetries(0), WithBreaker(BreakerSettings{Window: time.Millisecond}))
				const url = "http://api.test/x"
				if code, _, err := bkCall(t, tr, url); err != nil || code != first {
					t.Fatalf("first call = %d, %v; want %d", code, err, first)
				}
				time.Sleep(2 * 365 * 24 * time.Hour)
				h.status.Store(http.StatusInternalServerError)
				for range defaultBreakerMinRequests {
					bkCall(t, tr, url)
				}
				if _, _, err := bkCall(t, tr, url); !errors.Is(err, ErrCircuitOpen) {
					t.Errorf("first call %d, then %d failures two years later: err %v, breaker %v; want ErrCircuitOpen",
						first, defaultBreakerMinRequests, err, tr.BreakerState(url))
				}
			})
		})
	}
}
