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
