package resilient

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerFirstFailureOfLongHealthySpell: a healthy host whose breaker
// stayed closed for nearly 2^40 bucket periods (3.48 years of a 1ms
// window) without a failure, and then dies, trips its breaker as any
// other. The window makes its failures' buckets at the first failure, all
// of age 0 and count 0: taken for buckets newer than the outcome (ahead
// of it, modulo 2^40, by 2^32 periods or less), they dropped every
// failure of the next 2^32 periods (five days), and the breaker of the
// dead host stayed closed that long.
func TestBreakerFirstFailureOfLongHealthySpell(t *testing.T) {
	const period = time.Millisecond / breakerBuckets
	for _, left := range []time.Duration{1 << 32, 1 << 31, 10} {
		t.Run(strconv.FormatInt(int64(left), 10)+"_periods_short", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := new(bkHost)
				h.status.Store(http.StatusOK)
				tr := New(bkNet{"api.test": h}, WithMaxRetries(0), WithBreaker(BreakerSettings{Window: time.Millisecond}))
				const url = "http://api.test/x"
				if code, _, err := bkCall(t, tr, url); err != nil || code != http.StatusOK {
					t.Fatalf("first call = %d, %v; want 200", code, err)
				}
				time.Sleep((1<<40 - left) * period)
				if code, _, err := bkCall(t, tr, url); err != nil || code != http.StatusOK {
					t.Fatalf("call after the long spell = %d, %v; want 200", code, err)
				}
				h.status.Store(http.StatusInternalServerError)
				for range 2 * defaultBreakerMinRequests {
					bkCall(t, tr, url)
				}
				hits := h.hits.Load()
				if _, _, err := bkCall(t, tr, url); !errors.Is(err, ErrCircuitOpen) {
					t.Errorf("%d failures after %d healthy bucket periods: err %v, breaker %v, host hits %d; want ErrCircuitOpen",
						2*defaultBreakerMinRequests, 1<<40-left, err, tr.BreakerState(url), hits)
				}
			})
		})
	}
}

// TestClosedWindowFreshWordsCount: the words a closed window makes late in
// its spell, its failures' buckets at its first failure and its stripes at
// its first contention, count the outcomes of any age, that of a spell
// nearly 2^40 bucket periods old included: taken for buckets newer than
// the outcome, the stripes dropped every success for 2^32 periods, and a
// healthy host's few failures tripped its breaker.
func TestClosedWindowFreshWordsCount(t *testing.T) {
	for _, age := range []uint64{1<<40 - 1<<32, 1<<40 - 1<<31, 1<<40 - 1} {
		var w closedWindow
		w.reset(0, 1)
		w.stripe()
		for range 9 {
			w.success(nil, age, age)
		}
		w.failure(age, age)
		if s, f, c := w.counts(age); s != 9 || f != 1 || c != 1 {
			t.Errorf("at age %d, a striped window's 9 successes and a first failure: counts %d, %d, %d; want 9, 1, 1", age, s, f, c)
		}
	}
}
