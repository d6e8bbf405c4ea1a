package resilient

import (
	"runtime"
	"sync/atomic"
)

// This file holds the counts of a closed breaker: an atomic rolling window,
// so that an attempt through a closed breaker takes no lock. gobreaker is
// still the state machine: it is told of a failure only when the window's
// counts trip the breaker (its ReadyToTrip reads this window), and it runs
// every attempt of an open or half-open breaker.

// closedWindow counts the outcomes of one closed spell of a breaker (one
// gobreaker generation) over a rolling window of breakerBuckets buckets.
// An outcome is counted in the bucket of the time its attempt ended, and
// leaves the window with its bucket, success or failure alike, whether or
// not the attempt started before the window's oldest bucket (it lasted
// longer than the window: a host that answers in 45s, or never, its
// attempts cut by a timeout longer than Window). gobreaker counts an
// outcome in the bucket of its start and drops one older than the window:
// a slow outcome then weighs less than a quick one by the time it took (a
// failure cut after 25s of a 30s window stays in it 5s), so that a host
// that hangs most attempts, its few quick successes counted whole, would
// never trip its breaker, and one that never answers would keep a closed
// breaker for ever.
//
// Each bucket is one word: the bucket's age (the number of bucket periods
// since start, modulo 2^40) in the high 40 bits and its count in the low 24
// bits (saturated at 2^24-1 per bucket and stripe; a bucket whose
// successes are saturated counts no more failures in its share, see
// successesFull), so that rolling a bucket over and counting in it is one
// compare-and-swap.
// A window is replaced, never reset, when its breaker closes again: an
// attempt that began in an earlier spell counts in a window nobody reads.
type closedWindow struct {
	// stripes spread the successes of a breaker that many goroutines use
	// at once over several cache lines, so that cores do not contend on
	// one word; nil until a compare-and-swap on successes fails.
	stripes atomic.Pointer[[]successStripe]

	// failures are made by the first failure: most windows see none, and
	// a breaker per host is made for every host called.
	failures atomic.Pointer[[breakerBuckets]atomic.Uint64]

	// pastFull are the failures counted in buckets whose successes were
	// saturated (see successesFull): in the runs of consecutive failures,
	// not in the share of failures. Made by the first such failure.
	pastFull atomic.Pointer[[breakerBuckets]atomic.Uint64]

	start  int64 // breakerSet.now() when the breaker closed
	period int64 // the bucket period, in nanoseconds

	// consecutive is the number of failures since the last success; a
	// success writes it only when it is not already zero. Its bit
	// queueCutExcused marks a queue cut excused since the last success
	// (see breakerSet.outcome): not a failure, it is no part of the count.
	consecutive atomic.Uint32
	// slowFailures counts the attempts of the spell cut by their attempt
	// timeout, or that failed after two bucket periods or more in flight
	// (see breakerSet.failure): they weigh the attempts in flight by the
	// share of the host's answers that were successes (see
	// breakerSet.tripped). Written on failures only.
	slowFailures atomic.Uint32

	// inFlight counts the attempts in flight that began in the spell's
	// first Window (see inFlightWord), by the bucket they began in; the
	// stripes' own count those of a contended window.
	inFlight [breakerBuckets]atomic.Int64

	successes [breakerBuckets]atomic.Uint64
}

// successStripe is one stripe of a contended window's successes, and of
// its attempts in flight, on a cache line (or two) of its own.
type successStripe struct {
	b        [breakerBuckets]atomic.Uint64
	inFlight [breakerBuckets]atomic.Int64
	_        [128 - 2*breakerBuckets*8%128]byte
}

// reset prepares w for a closed spell starting at now.
func (w *closedWindow) reset(now, period int64) {
	w.start, w.period = now, max(period, 1)
}

// Packing of a bucket word.
const (
	bucketCountBits = 24
	bucketCountMax  = 1<<bucketCountBits - 1
	bucketAgeMask   = 1<<(64-bucketCountBits) - 1
)

// age returns the bucket age of time now (breakerSet.now()), modulo 2^40.
func (w *closedWindow) age(now int64) uint64 {
	if now <= w.start {
		return 0
	}
	return uint64((now-w.start)/w.period) & bucketAgeMask
}

// inWindow reports whether an outcome of age is still in the window at age
// now.
func inWindow(age, now uint64) bool {
	return (now-age)&bucketAgeMask < breakerBuckets
}

// success counts a success of attempt st (nil for none) that started at
// age, now being the current age, in the bucket of now (see closedWindow);
// it reports late when age has left the window. It also ends a run of
// consecutive failures. Spread over stripes, it picks one with st's draw
// (see attemptState.random).
func (w *closedWindow) success(st *attemptState, age, now uint64) (late bool) {
	if w.consecutive.Load() != 0 {
		w.consecutive.Store(0)
	}
	late, age = !inWindow(age, now), now
	if ss := w.stripes.Load(); ss != nil {
		s := *ss
		addBucket(&s[st.random()&uint32(len(s)-1)].b[age%breakerBuckets], age)
		return late
	}
	if addBucket(&w.successes[age%breakerBuckets], age) {
		w.stripe()
	}
	return late
}

// inFlightWord returns the word in which an attempt of st that started
// at age, in the spell's first Window (age below breakerBuckets), counts
// as in flight until its outcome is known: the attempt adds one to it,
// and takes it off before its outcome counts. Until the spell is two
// Windows old, the attempts so counted and still in flight are outcomes
// to come (see pending): a closed spell begins with no attempt in flight
// (the breaker refused them, or did not exist), and its window holds the
// quick outcomes of its first attempts long before the slow ones; a host
// whose successes take 25s and whose failures come at once would see its
// failures reach MinRequests before its first success, and trip, in every
// spell. Spread over stripes, it picks one with st's draw.
func (w *closedWindow) inFlightWord(st *attemptState, age uint64) *atomic.Int64 {
	if w.stripes.Load() != nil {
		return w.stripeInFlightWord(st, age)
	}
	return &w.inFlight[age]
}

// stripeInFlightWord is inFlightWord for a striped window.
func (w *closedWindow) stripeInFlightWord(st *attemptState, age uint64) *atomic.Int64 {
	s := *w.stripes.Load()
	return &s[st.random()&uint32(len(s)-1)].inFlight[age]
}

// pending returns the attempts in flight that began in the spell's first
// Window (see inFlightWord), at age now, in an earlier bucket than now: an
// attempt as young as the outcomes that just came (callers that all call
// a dead host at once) is no slow outcome to come. None once the spell is
// two Windows old, so that attempts that hang (a host that never answers
// some) hold a breaker closed for that long at most. Once attempts of
// the spell were cut by their attempt timeout or failed after two bucket
// periods or more in flight, the trip rule weighs them by the host's share
// of successes (see breakerSet.tripped): a host that never answers trips
// its breaker as its first attempts time out, not when the spell is two
// Windows old (TestBreakerDeadHostTripsAtItsFirstTimeouts).
func (w *closedWindow) pending(now uint64) uint64 {
	if now >= 2*breakerBuckets {
		return 0
	}
	var n int64
	for b := range min(now, breakerBuckets) {
		n += w.inFlight[b].Load()
		if ss := w.stripes.Load(); ss != nil {
			for i := range *ss {
				n += (*ss)[i].inFlight[b].Load()
			}
		}
	}
	return uint64(max(n, 0))
}

// stripe spreads the successes over stripes from now on.
func (w *closedWindow) stripe() {
	n := 1
	for n < 2*runtime.GOMAXPROCS(0) && n < 32 {
		n *= 2
	}
	ss := make([]successStripe, n)
	w.stripes.CompareAndSwap(nil, &ss)
}

// failure counts a failure of an attempt that started at age, now being
// the current age, in the bucket of now (see closedWindow); it reports
// late when age has left the window.
func (w *closedWindow) failure(age, now uint64) (late bool) {
	late, age = !inWindow(age, now), now
	w.consecutive.Add(1)
	p := &w.failures
	if w.successesFull(age) {
		// The bucket counts no more successes: failures past them
		// would tip its share towards failures. They count in the runs
		// of consecutive failures alone (see successesFull).
		p = &w.pastFull
	}
	fs := p.Load()
	if fs == nil {
		p.CompareAndSwap(nil, new([breakerBuckets]atomic.Uint64))
		fs = p.Load()
	}
	addBucket(&fs[age%breakerBuckets], age)
	return late
}

// successesFull reports whether the successes of the bucket of age are
// saturated in the word a success of that age would be counted in (any
// stripe of a striped window: they fill at the same pace). The bucket's
// share of failures is then the share of the outcomes it counted before:
// successes dropped while failures count would trip a breaker below its
// FailureRatio (a long Window's bucket fills: a day's holds 2.4h, 1,942
// successes a second). Its later failures count in the runs of
// consecutive failures only (pastFull). It runs on failures only.
func (w *closedWindow) successesFull(age uint64) bool {
	full := age<<bucketCountBits | bucketCountMax
	if ss := w.stripes.Load(); ss != nil {
		for i := range *ss {
			if (*ss)[i].b[age%breakerBuckets].Load() == full {
				return true
			}
		}
		return false
	}
	return w.successes[age%breakerBuckets].Load() == full
}

// counts returns the successes, failures and consecutive failures in the
// window at age now.
func (w *closedWindow) counts(now uint64) (successes, failures, consecutive uint64) {
	successes = sumBuckets(&w.successes, now)
	if ss := w.stripes.Load(); ss != nil {
		for i := range *ss {
			successes += sumBuckets(&(*ss)[i].b, now)
		}
	}
	if fs := w.failures.Load(); fs != nil {
		failures = sumBuckets(fs, now)
	}
	// A run of failures that began before the window's oldest bucket is
	// counted to the window's start, as gobreaker's rolling counts do.
	inWin := failures
	if fs := w.pastFull.Load(); fs != nil {
		inWin += sumBuckets(fs, now)
	}
	return successes, failures, min(uint64(w.consecutive.Load()&^queueCutExcused), inWin)
}

// queueCutExcused is the bit of closedWindow.consecutive that marks a cut
// by the call's budget of an attempt that queued (see queueCut), excused
// since the host's last success: the next, with no success between, is
// counted.
const queueCutExcused = 1 << 31

// maxBucketLead is the most bucket periods a bucket's age may be ahead of
// an outcome's and still be taken as newer (see addBucket): 2^32 periods,
// five days at the shortest period (100µs, a 1ms window).
const maxBucketLead = 1 << 32

// addBucket counts one outcome of age in the bucket word b, rolling the
// bucket over when it holds an older age. It does nothing when the bucket
// already holds a newer age: the outcome is older than the window. It
// reports whether a compare-and-swap failed (another goroutine counted in
// the same word at the same time).
//
// The outcome's age is in the window of the age its goroutine read last
// (see success and failure): a bucket can be newer only by the time
// another goroutine's reading came after that one, never by much. A
// bucket further ahead, modulo 2^40, is a bucket older than the window:
// one untouched for 2^39 periods or more (a window that never saw a
// failure, which starts its failures' buckets at age 0, then sees one
// 2^39 periods after it began: 1.7 years with a 1ms window), which must
// roll over, or its outcomes would be dropped for as long again. A word
// that never counted an outcome (count 0: the buckets of failures and of
// stripes are made with the spell's first failure or contention, all of
// age 0) holds no age to be newer than: it takes the outcome, however far
// its age 0 lies ahead (a spell 2^40 periods old, less up to 2^32).
func addBucket(b *atomic.Uint64, age uint64) (contended bool) {
	for {
		old := b.Load()
		var v uint64
		switch a := old >> bucketCountBits; {
		case a == age:
			if old&bucketCountMax == bucketCountMax {
				return contended // saturated
			}
			v = old + 1
		case (a-age)&bucketAgeMask <= maxBucketLead && old&bucketCountMax != 0:
			return contended // the bucket is newer than the outcome
		default:
			v = age<<bucketCountBits | 1 // an older bucket: roll over
		}
		if b.CompareAndSwap(old, v) {
			return contended
		}
		contended = true
	}
}

// sumBuckets returns the counts of the buckets of bs whose age is within
// breakerBuckets of now.
func sumBuckets(bs *[breakerBuckets]atomic.Uint64, now uint64) uint64 {
	var n uint64
	for i := range bs {
		v := bs[i].Load()
		if inWindow(v>>bucketCountBits, now) {
			n += v & bucketCountMax
		}
	}
	return n
}
