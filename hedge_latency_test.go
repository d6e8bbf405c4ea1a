package resilient

import (
	"testing"
	"time"
)

// TestLatencyHistForgetsASlowSpell: the histogram halves its counts every
// latencyDecay records, so that a host that was slow for a long spell and
// then recovered has its hedge delay follow its recent latencies within a
// few hundred records, not after as many as the slow spell held.
func TestLatencyHistForgetsASlowSpell(t *testing.T) {
	var h latencyHist
	for range 8 * latencyDecay {
		h.record(time.Second)
	}
	for range 2 * latencyDecay {
		h.record(5 * time.Millisecond)
	}
	if q, ok := h.quantile(0.5); !ok || q > 7*time.Millisecond {
		t.Errorf("quantile(0.5) = %v, %v after %d records of 5ms that followed %d of 1s; want the bucket of 5ms", q, ok, 2*latencyDecay, 8*latencyDecay)
	}
	if total := h.total.Load(); total > 2*latencyDecay {
		t.Errorf("histogram holds %d records, want at most %d (halved every %d)", total, 2*latencyDecay, latencyDecay)
	}
}

// TestLatencyHistQuantileAtABucketsEnd: a quantile that falls on the last
// record of a bucket is that bucket's: with half the records at 5ms and
// half at 1s, the median is 5ms, and the hedge delay of a host whose
// attempts are fast half the time is not a second.
func TestLatencyHistQuantileAtABucketsEnd(t *testing.T) {
	var h latencyHist
	for range 50 {
		h.record(5 * time.Millisecond)
		h.record(time.Second)
	}
	if q, ok := h.quantile(0.5); !ok || q > 7*time.Millisecond {
		t.Errorf("quantile(0.5) = %v, %v of 50 records of 5ms and 50 of 1s; want the bucket of 5ms", q, ok)
	}
}

// TestLatencyHistQuantileOfARacingDecay: a record that races with a
// halving (see record) may be counted in the total and lost to its bucket,
// and a quantile read while another goroutine halves the buckets sums
// halved buckets against the total read before: the buckets then hold
// fewer records than the total says. The quantile is still the slowest
// bucket that holds a record, not the histogram's last (28 minutes): such
// a hedge delay sends no copy, for the one call that read it during a
// halving, and, with a Quantile near 1 (0.999), for every call until the
// next halving, 512 records on, after a single racing record.
func TestLatencyHistQuantileOfARacingDecay(t *testing.T) {
	var h latencyHist
	for range 299 {
		h.record(5 * time.Millisecond)
	}
	h.total.Add(1) // a racing record, counted but lost to the halving
	for _, q := range []float64{0.95, 0.999} {
		if got, ok := h.quantile(q); !ok || got > 7*time.Millisecond {
			t.Errorf("quantile(%v) = %v, %v of 299 records of 5ms and a total of 300; want the bucket of 5ms", q, got, ok)
		}
	}
	h.total.Store(2 * h.total.Load()) // read before the buckets were halved
	if got, ok := h.quantile(0.95); !ok || got > 7*time.Millisecond {
		t.Errorf("quantile(0.95) = %v, %v of buckets halved since the total was read; want the bucket of 5ms", got, ok)
	}
}
