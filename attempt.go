package resilient

import (
	"net/http"
	"time"

	"golang.org/x/time/rate"
)

// attemptState is what the layers of the chain learn about one attempt. The
// retry loop allocates one per call and resets it for each attempt; the
// middlewares receive it (see attemptRoundTripper) and fill it, so that the
// response is classified once and every layer reads that result.
type attemptState struct {
	number      int // 1 for the first attempt
	maxAttempts int
	deadline    time.Time // when the attempt must start at the latest: the end of the call's budget (context or WithMaxElapsed), earlier by what a write retry needs (see call.decide); zero for none
	budget      time.Time // the end of WithMaxElapsed's budget alone; zero for none
	ctxDeadline time.Time // the deadline of the attempt's context, as the retry loop read it; zero for none
	hedge       int       // 0 for an attempt; for a hedged copy, its number: n for the n-th sent, once it reaches the base (see hedgeRun.wire)
	hedges      int       // hedged copies of the attempt sent
	run         *hedgeRun // the copies of a hedged attempt, for the attempt itself (hedge 0) and each copy; nil for an attempt not hedged
	callCfg     *config   // the call's configuration
	resends     int       // the call's requests sent to the wire before this attempt (a hedged copy: before the attempt it copies)
	wired       bool      // the attempt reached the Tracer, right above the base
	reached     bool      // the attempt passed every layer that may refuse or hold it, the Tracer's StartAttempt included, and went on to the base (see classifier)
	// declined says that the base declined the attempt with the bare
	// http.ErrSkipAltProtocol: nothing was sent, whatever a layer above
	// then made of the error (the classifier's caller's mistake, the
	// attempt deadline's cut, a body's failure joined to it). It is the
	// one source of the decline for every layer, the retry loop and the
	// hedged copies (see declinedUnsent, call.notSent, launchCopy,
	// hedgeRun.finish), and for launchCopy when the caller's code above
	// the base (the Tracer's end of its span, a Classifier) panics on a
	// hedged copy before it took the copy's number back (see
	// neverSentCopy). Set by the Tracer's layer and the classifier, as the
	// base returns (see noteDecline). What the call returns is told by its
	// error itself (see call.declinedBare).
	declined bool
	// bufferMax is how much of the body of a success the classifier
	// reads within the attempt (WithBufferedResponse); 0 for none.
	bufferMax int64
	// capture is the call's request body, captured while sent to be
	// replayed, when the classifier may read a success's body; nil for
	// none. The body may have outgrown what can be replayed by the time
	// the response comes: no retry could follow a cut then.
	capture *captureBody

	// lost says that an earlier attempt of the call, a keyed write, got no
	// answer after it may have been sent, a gateway's 502 or 504 included
	// (see noAnswerBehind): the server may still hold its key (see
	// keyHeld).
	lost bool
	// marked says that an earlier attempt of the call's write, or of the
	// call whose 307 or 308 it follows (see call.inheritMarks), may have
	// been processed (call.lost, call.answeredUnproven): the call then
	// never ends with the bare sentinel of the base's decline (see
	// declinedBare), and an attempt the base declines, its first
	// included, is sent by no one (see declinedUnsent).
	marked bool

	// cutRetried says that an attempt of the call, this one or an earlier
	// one, failed with a header block cut short and was retried for it
	// (see cutHeaders): a second such failure is the server's framing.
	// Set by classify, and by the retry loop and launchCopy (off the
	// success path) for the attempts that follow; settle gathers it from
	// a hedged attempt's copies that lost.
	cutRetried bool

	// copyLost says that a hedged copy of this attempt, a keyed write,
	// got no answer after it may have been sent (see hedgeRun.lost),
	// whichever copy decided the attempt: the server may have processed
	// the write even when the attempt's own result proves that its
	// request never left. Set by settle.
	copyLost bool

	// Filled by the classify middleware.
	classified    bool
	class         Class
	apiErr        *APIError // the parsed envelope; nil for none
	noRetry       bool      // the server said not to retry its answer (see saidNoRetry)
	platform      bool      // the answer carries a Postato platform error: the host took the post (see refusedUnprocessed)
	code          string
	requestID     string
	retryAfter    time.Duration // the server's wait; valid when hasRetryAfter
	hasRetryAfter bool
	neverSent     bool // err proves the request never left this process
	peekCut       bool // the attempt timeout cut the peek at the error body (see peekTimedOut)
	// answeredAfter is the time from start to the response's headers,
	// read before the body of an error is read for its envelope (up to
	// maxReadWait of a body that trickles), so that the host's latency is
	// its time to headers (see latencySince), or before the wait for the
	// copies of a hedged attempt that failed; zero when not recorded, and
	// at least 1ns when recorded (headers that came at once, on a clock
	// that did not move). A duration rather than a time keeps the state,
	// which every call clears, from growing.
	answeredAfter time.Duration
	// cut is the success whose body failed to be read within the attempt
	// (see WithBufferedResponse), its body closed: the attempt failed
	// with the read's error, and the rate limiter reads the quota its
	// headers announced. Nil otherwise.
	cut *http.Response

	// traceEnd ends the Tracer's span of the attempt: the Tracer leaves
	// it to the classifier when the body of the attempt's success is to
	// be read within the attempt, so that the span ends once it was read,
	// with the read's error if any. Nil otherwise.
	traceEnd func(*http.Response, error)

	// Filled by the retry loop.
	stop StopReason // why no attempt follows a retryable outcome

	// prepared is the attempt's deadline, which the retry loop readied in
	// the context of the attempt's request when it copied that request
	// anyway (see readyDeadline), so that the deadline middleware arms it
	// instead of copying the request a second time; nil for none. The
	// middleware clears it when it hands it to a response's body, which
	// then releases it on Close; otherwise the retry loop releases it once
	// the attempt ends without a response (see releaseDeadline).
	prepared *deadlineBody

	// armed is the deadline the deadline middleware armed for the
	// attempt, nil for none: the classifier cuts a stalled peek at the
	// response's body through its context (see abortAfter).
	armed *deadlineBody

	// Filled by the rate limiter.
	rate      RateLimitInfo
	localWait time.Duration // time this attempt waited for its turn
	// gated is when the server's limits (a pause, a spent quota, the
	// learned pace) first held the attempt at the rate limiter, zero
	// until they did, moved on by the time it then waited for a slot it
	// passed on for a pause (see errSlotPaused): WithMaxRetryAfter bounds
	// those waits in all, across its passes through the rate limiter,
	// as it bounds them in one (see rateLimiter.acquire).
	gated time.Time
	// paceTok is the limiter of the partition's pace whose token the
	// attempt holds, and pace that partition; nil for none (pace is set
	// only with paceTok). An attempt refused at the end of a wait for a
	// slot of its host (WithMaxInFlight) gives that token back only while
	// it is still worth one (see partition.giveBackStale), and clears
	// paceTok, so that the rate limiter does not give it back again.
	paceTok *rate.Limiter
	pace    *partition

	// Filled by the limit of attempts in flight (WithMaxInFlight), only
	// when the attempt found its host full.
	slotWait time.Duration // time this attempt waited for a slot of its host

	// keepsSlot, set by the rate limiter when the limit of attempts in
	// flight is below it, asks that limit to hand the slot of an attempt
	// that got a response over in slot rather than give it back: the rate
	// limiter gives it back once it has learned what the response says (a
	// 429's pause, a quota spent), so that no attempt queued for the slot
	// is sent before it is learned (see bulkhead.pausedMeanwhile).
	keepsSlot bool
	slot      *hostSlots
	// slotPaused is set while the rate limiter sends the attempt again
	// after it passed on a slot of its paused host (see afterSlotPaused).
	slotPaused bool

	// seed is the state of the attempt's generator of pseudo-random
	// numbers (see random); zero until it first draws. reset keeps it.
	seed uint64

	// writes is the write trace of the attempts made with this state whose
	// context carries no trace of the caller's (see call.attemptRequest):
	// its hooks are made once, for the state's life in the Transport's
	// pool, not for each attempt. reset keeps it.
	writes *writeTrace

	// start is when the attempt started, as the retry loop read the clock
	// (the call's own reading for its first attempt), moved on by the
	// time the rate limiter made it wait and the time it waited for a
	// slot of its host (WithMaxInFlight); zero when unknown. The layers
	// read it instead of the clock.
	start time.Time
}

// queued returns the time the attempt waited before it was sent: for its
// turn at the rate limiter and for a slot of its host.
func (st *attemptState) queued() time.Duration { return st.localWait + st.slotWait }

// latestStart returns when a layer of the chain that holds the attempt (the
// rate limiter, the limit of attempts in flight) must let it go at the
// latest: its deadline, and for a first attempt, whose deadline leaves it
// nothing (no host's answer before it says what it needs, see
// call.startBy), durationFloor before it, the least any attempt needs (see
// call.leastLeft): held later, it would be cut before the host could
// answer it. Zero for none.
func (st *attemptState) latestStart() time.Time {
	if st.number > 1 || st.deadline.IsZero() {
		return st.deadline // a retry's leaves what it needs already
	}
	return st.deadline.Add(-durationFloor)
}

// reset clears st for another attempt or call, keeping its write trace
// and its generator's seed.
func (st *attemptState) reset() {
	w, s := st.writes, st.seed
	*st = attemptState{}
	st.writes, st.seed = w, s
}

// writeTrace returns st's write trace, cleared for a new attempt.
func (st *attemptState) writeTrace() *writeTrace {
	w := st.writes
	if w == nil {
		w = new(writeTrace)
		w.arm()
		st.writes = w
		return w
	}
	w.clear()
	return w
}

// attemptExtras is what an attempt whose request the retry loop copies may
// need beside the copy, in one allocation: its deadline, readied for the
// deadline middleware (see readyDeadline); the context that carries the
// write trace of an unproven write when the deadline's does not (see
// call.traceWrite); room for the values of the call's keyed header (see
// keyedHeader), which a typical request's header fits in; and, for the
// first attempt of a call whose key is drawn, the key's bytes (see
// drawKey).
type attemptExtras struct {
	db     deadlineBody
	traced traceCtx
	vals   [8]string
	key    [36]byte
}

// RateLimitInfo is the quota a server announced on one response, as read from
// its rate-limit headers.
type RateLimitInfo struct {
	// Limit is the quota of the current window; -1 when not announced.
	Limit int
	// Remaining is what is left of it; -1 when not announced.
	Remaining int
	// Reset is when the window resets; zero when not announced.
	Reset time.Time
}

// attemptRoundTripper is implemented by the middlewares of the Transport's
// own chain. The retry loop hands each attempt's state to the outermost one,
// and each hands it to the next, so that an attempt needs neither a context
// of its own nor a copy of the caller's request when it sends that request
// unchanged. Through RoundTrip they run without it: the attempt is then
// classified by status alone where a layer needs its class.
type attemptRoundTripper interface {
	roundTripAttempt(req *http.Request, st *attemptState) (*http.Response, error)
}

// hop is the RoundTripper below a layer of the chain, with its
// attemptRoundTripper side found once, when the chain is built, so that an
// attempt goes down the layers without a type assertion in each.
type hop struct {
	rt http.RoundTripper
	at attemptRoundTripper // rt, when it is one of the chain's own layers; else nil
}

// hopTo returns the hop to rt.
func hopTo(rt http.RoundTripper) hop {
	at, _ := rt.(attemptRoundTripper)
	return hop{rt: rt, at: at}
}

// roundTrip sends req through the hop's RoundTripper, with st when it is
// one of the chain's own layers.
func (h hop) roundTrip(req *http.Request, st *attemptState) (*http.Response, error) {
	if h.at != nil {
		return h.at.roundTripAttempt(req, st)
	}
	return h.rt.RoundTrip(req)
}

// noteDecline records in st whether err, what the base returned for the
// attempt, declines it (see attemptState.declined): only the bare
// http.ErrSkipAltProtocol does, as the http.Transport above compares it.
func (st *attemptState) noteDecline(err error) {
	st.declined = err == http.ErrSkipAltProtocol
}

// neverSentCopy reports whether st, a hedged copy whose caller's code
// panicked on its goroutine (see launchCopy), was never sent: a layer
// refused it, or its Tracer's StartAttempt panicked, before it went on to
// the base; or the base declined it (http.ErrSkipAltProtocol).
func (st *attemptState) neverSentCopy() bool {
	return !st.reached || st.declined
}
