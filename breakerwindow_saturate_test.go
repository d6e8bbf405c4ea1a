package resilient

import (
	"sync/atomic"
	"testing"
	"time"
)

// saturatedWindow returns a closed window of s whose bucket of age 0 holds
// as many successes as a bucket counts (2^24-1 per stripe) and failures,
// as a long Window's bucket does after a busy spell (a day's is 2.4h a
// bucket: 1,942 successes a second fill it).
func saturatedWindow(s *breakerSet, failures uint64) *closedWindow {
	w := new(closedWindow)
	w.reset(0, s.period)
	w.successes[0].Store(bucketCountMax) // age 0, saturated
	if failures > 0 {
		fs := new([breakerBuckets]atomic.Uint64)
		fs[0].Store(failures)
		w.failures.Store(fs)
	}
	return w
}

// TestBreakerSaturatedSuccessesDoNotTrip: successes past a bucket's bound
// were dropped while failures went on counting, so that a host whose
// failures stayed below FailureRatio tripped its breaker once they caught
// up with the saturated successes (with the default 0.5, a host failing
// 40% of its attempts tripped so). A bucket whose successes are saturated
// keeps the share of failures it had then.
func TestBreakerSaturatedSuccessesDoNotTrip(t *testing.T) {
	s := newBreakerSet(BreakerSettings{Window: 24 * time.Hour, FailureRatio: 0.2}, nil, nil)
	const below = bucketCountMax / 4 // just below 20% of the outcomes
	w := saturatedWindow(s, below)
	if s.tripped(w, 0) {
		t.Fatalf("tripped at %d successes, %d failures, want not: below FailureRatio", bucketCountMax, below)
	}
	// Successes go on arriving, dropped by the saturated bucket, with
	// failures at one in six: 16.7%, below FailureRatio.
	for range 10 {
		for range 5 {
			w.success(nil, 0, 0)
		}
		w.failure(0, 0)
	}
	if s.tripped(w, 0) {
		got, fails, _ := w.counts(0)
		t.Errorf("tripped by 50 successes and 10 failures (16.7%%) after a saturated bucket at %.6f%% failures, want not (the window reads %d successes, %d failures)", 100*float64(below)/float64(bucketCountMax+below), got, fails)
	}
}

// TestBreakerSaturatedSuccessesKeepTheRun: the failures of a bucket whose
// successes are saturated, which its share of failures no longer counts,
// still count in a run of consecutive failures: a host that goes down
// after a busy spell trips ConsecutiveFailures at once, not once the
// bucket has left the window (2.4h for a day's).
func TestBreakerSaturatedSuccessesKeepTheRun(t *testing.T) {
	s := newBreakerSet(BreakerSettings{Window: 24 * time.Hour, ConsecutiveFailures: 5}, nil, nil)
	w := saturatedWindow(s, 0)
	for i := range 5 {
		if s.tripped(w, 0) {
			t.Fatalf("tripped after %d failures in a row, want 5", i)
		}
		w.failure(0, 0)
	}
	if !s.tripped(w, 0) {
		_, _, run := w.counts(0)
		t.Errorf("tripped(5 failures in a row, ConsecutiveFailures 5) = false, want true (run %d)", run)
	}
}
