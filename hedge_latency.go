package resilient

import (
	"math"
	"sync/atomic"
	"time"
)

// This file holds the latency histogram of each host, from which the hedge
// delay is read.

// latencies returns the host's latency histogram, made on first use.
func (b *hostBudget) latencies() *latencyHist {
	if h := b.lat.Load(); h != nil {
		return h
	}
	b.lat.CompareAndSwap(nil, new(latencyHist))
	return b.lat.Load()
}

// latencyHist is a decaying histogram of a host's times to response
// headers, in buckets a quarter of an octave wide from 100µs; it is safe
// for concurrent use and takes no lock.
type latencyHist struct {
	buckets [latencyBuckets]atomic.Int64
	n       atomic.Int64 // records since the last decay
	total   atomic.Int64 // records held (decayed)
}

const (
	latencyBuckets = 96
	latencyBase    = 100 * time.Microsecond
	latencyDecay   = 512 // records between two halvings
)

// bucketOf returns the bucket of d: floor(4·log2(d/latencyBase)).
func bucketOf(d time.Duration) int {
	if d <= latencyBase {
		return 0
	}
	i := int(4 * math.Log2(float64(d)/float64(latencyBase)))
	return min(i, latencyBuckets-1)
}

// upperBound returns the upper bound of bucket i.
func upperBound(i int) time.Duration {
	return time.Duration(float64(latencyBase) * math.Exp2(float64(i+1)/4))
}

func (h *latencyHist) record(d time.Duration) {
	h.buckets[bucketOf(d)].Add(1)
	h.total.Add(1)
	if h.n.Add(1) >= latencyDecay {
		// Halve: recent latencies weigh more. Racing records may be lost,
		// which a histogram of recent behaviour can afford.
		h.n.Store(0)
		var total int64
		for i := range h.buckets {
			v := h.buckets[i].Load() / 2
			h.buckets[i].Store(v)
			total += v
		}
		h.total.Store(total)
	}
}

// quantile returns the upper bound of the bucket holding quantile q, or
// false with too few records. The buckets may hold fewer records than the
// total says (a record that raced with a halving, or a halving between
// the reads of the total and of the buckets): the quantile is then the
// slowest bucket that holds any, not the histogram's last.
func (h *latencyHist) quantile(q float64) (time.Duration, bool) {
	total := h.total.Load()
	if total < minHedgeSamples {
		return 0, false
	}
	want := int64(math.Ceil(q * float64(total)))
	var acc int64
	last := latencyBuckets - 1 // the slowest bucket that holds a record
	for i := range h.buckets {
		n := h.buckets[i].Load()
		if n > 0 {
			last = i
		}
		if acc += n; acc >= want {
			return upperBound(i), true
		}
	}
	return upperBound(last), true
}
