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

	// consecutive is the run of failures since the last success: its
	// count in the low 32 bits (saturated), and in the high 32 the run's
	// generation, which each success that ends a run moves on (see
	// endRun). A success writes it only when the count is not zero.
	consecutive atomic.Uint64

	// runStarts count the failures of the run by the bucket their
	// attempts began in, for the attempts that began in the spell's first
	// Window and ended in its first two (see runBefore): each word holds
	// the run's generation in its high 32 bits, its count in the low 32;
	// a word of another generation counts none. Made by the first such
	// failure.
	runStarts atomic.Pointer[[breakerBuckets]atomic.Uint64]

	// inFlight counts the attempts in flight that began in the spell's
	// first Window (see inFlightWord), by the bucket they began in; the
	// stripes' own count those of a contended window.
	inFlight [breakerBuckets]atomic.Int64
	// slowFailure says that an attempt of the spell failed after two
	// buckets or more in flight (see failure): the attempts in flight are
	// then no outcomes to come that may succeed (see pending).
	slowFailure atomic.Bool

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
// consecutive failures (see endRun). Spread over stripes, it picks one
// with st's draw (see attemptState.random).
func (w *closedWindow) success(st *attemptState, age, now uint64) (late bool) {
	if c := w.consecutive.Load(); uint32(c) != 0 { // the count (see runCountMask)
		w.endRun(c)
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

// runCountMask is the count of failures of a consecutive word (see
// closedWindow.consecutive); the rest is the run's generation.
const runCountMask = 1<<32 - 1

// endRun ends the run of failures for a success that read c in
// consecutive: the next run, of the next generation, holds the failures
// counted since that reading, which came after the success. Storing zero
// instead would erase a failure counted between the reading and the
// store, and with it the run that failure began. A run that another
// success ended meanwhile is left as it is. (The failures so carried to
// the next run leave the buckets their attempts began in behind, in
// runStarts: no attempt in flight ends their run; a race of a
// nanosecond's weight.)
func (w *closedWindow) endRun(c uint64) {
	gen, seen := c>>32, c&runCountMask
	for !w.consecutive.CompareAndSwap(c, (gen+1)<<32|(c&runCountMask-seen)) {
		if c = w.consecutive.Load(); c>>32 != gen {
			return
		}
	}
}

// addToRun counts a failure in the run of consecutive failures, and
// returns the run's generation.
func (w *closedWindow) addToRun() (gen uint64) {
	for {
		c := w.consecutive.Load()
		if c&runCountMask == runCountMask || w.consecutive.CompareAndSwap(c, c+1) {
			return c >> 32
		}
	}
}

// runBefore returns how many failures of the run of generation gen, at age
// now, began no later than the newest bucket, earlier than now, that an
// attempt still in flight began in (see pending): failures are in a row
// in the order their attempts began, and were that attempt to succeed, it
// would end the run of those that began before it. (Those that began in
// its bucket count as before it: within a bucket, the order is not known.)
// A closed spell begins with no attempt in flight, and its quick failures
// come before its slow successes: a host that answers 200 in 25s to two
// calls in three and 500 at once to the third would see a run as long as
// its failures in 25s before its first success ends it, and trip
// ConsecutiveFailures in every spell. Only the attempts of the spell's
// first Window are followed in flight, and only for its first two, as for
// the ratio (see inFlightWord); so are the failures' buckets (see
// failure). An attempt as young as the outcomes that just came (callers
// that all call a dead host at once) ends no run, nor does one that began
// before the run's failures (one that the host hangs); nor any once an
// attempt of the spell failed after two buckets or more in flight (see
// pending).
func (w *closedWindow) runBefore(gen, now uint64) uint64 {
	rs := w.runStarts.Load()
	if rs == nil || now >= 2*breakerBuckets || w.slowFailure.Load() {
		return 0
	}
	for b := min(now, breakerBuckets); b > 0; b-- {
		if w.inFlightAt(b-1) <= 0 {
			continue
		}
		var n uint64
		for i := range b {
			if v := rs[i].Load(); v>>32 == gen {
				n += v & runCountMask
			}
		}
		return n
	}
	return 0
}

// addRunStart counts a failure of the run of generation gen whose attempt
// began at age in runStarts (see runBefore).
func (w *closedWindow) addRunStart(gen, age uint64) {
	rs := w.runStarts.Load()
	if rs == nil {
		w.runStarts.CompareAndSwap(nil, new([breakerBuckets]atomic.Uint64))
		rs = w.runStarts.Load()
	}
	for {
		old := rs[age].Load()
		v := gen<<32 | 1
		if old>>32 == gen {
			if old&runCountMask == runCountMask {
				return
			}
			v = old + 1
		}
		if rs[age].CompareAndSwap(old, v) {
			return
		}
	}
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
// some) hold a breaker closed for that long at most; and none once an
// attempt of the spell failed after two buckets or more in flight (an
// attempt timeout): attempts as old as those in flight fail, and a host
// that never answers trips its breaker as its first attempts time out,
// not when the spell is two Windows old
// (TestBreakerDeadHostTripsAtItsFirstTimeouts).
func (w *closedWindow) pending(now uint64) uint64 {
	if now >= 2*breakerBuckets || w.slowFailure.Load() {
		return 0
	}
	var n int64
	for b := range min(now, breakerBuckets) {
		n += w.inFlightAt(b)
	}
	return uint64(max(n, 0))
}

// inFlightAt returns the attempts in flight that began in bucket b of the
// spell's first Window (see inFlightWord).
func (w *closedWindow) inFlightAt(b uint64) int64 {
	n := w.inFlight[b].Load()
	if ss := w.stripes.Load(); ss != nil {
		for i := range *ss {
			n += (*ss)[i].inFlight[b].Load()
		}
	}
	return n
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
	if (now-age)&bucketAgeMask >= 2 && !w.slowFailure.Load() {
		w.slowFailure.Store(true) // see pending
	}
	gen := w.addToRun()
	if age < breakerBuckets && now < 2*breakerBuckets {
		w.addRunStart(gen, age)
	}
	late, age = !inWindow(age, now), now
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
// window at age now: those of the run that an attempt in flight does not
// stand in front of (see runBefore).
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
	c := w.consecutive.Load()
	run := c & runCountMask
	run -= min(run, w.runBefore(c>>32, now))
	return successes, failures, min(run, inWin)
}

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
// roll over, or its outcomes would be dropped for as long again.
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
		case (a-age)&bucketAgeMask <= maxBucketLead:
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
