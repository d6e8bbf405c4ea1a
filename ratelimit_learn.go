package resilient

import (
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilienthttp/resilient/internal/redact"
)

// This file holds how a partition follows the server's responses: the
// learning of each attempt's result, and the pauses and the pace it sets
// from the rate-limit headers (parsed in ratelimit_headers.go).

// paceShare of the announced quota is used when pacing, so that the
// announced reset, often rounded to the second, is rarely waited for.
const paceShare = 0.95

// learnClosing is learn for a rate limiter that runs the caller's code on a
// response (a WithRateLimitParser function, a QuotaStore): when that code
// panics, the panic takes resp from the caller, and its body is closed on
// the way out (see closeOnPanic).
func (m *rateLimitTransport) learnClosing(k partKey, noCred bool, req *http.Request, p *partition, counted *bool, st *attemptState, resp *http.Response) {
	done := false
	defer closeOnPanic(resp, &done)
	m.learn(k, noCred, req, p, counted, st, resp)
	done = true
}

// endFlight ends the attempt's flight in p when *counted, and clears
// *counted.
func endFlight(p *partition, counted *bool) {
	if *counted {
		*counted = false
		p.end()
	}
}

// learn reads the rate-limit values of resp, records them in the attempt's
// state and updates the partition, and ends the attempt's flight when
// *counted, clearing *counted as it does: a store that panics after the
// flight ended (in Learn or Pause) leaves the caller's deferred end with
// nothing to end again. Without rate-limit headers, Retry-After or a partition, it does
// nothing more than look the headers up, when the Transport's headerWatch
// has it read them at all. The attempt's state gets what the
// server announced (so that the retry loop returns a response whose wait is
// too long); the partition learns only what MaxBelievedReset allows.
//
// k lacks its credential's fingerprint when noCred is set: it is taken from
// req once the response turns out to announce something.
func (m *rateLimitTransport) learn(k partKey, noCred bool, req *http.Request, p *partition, counted *bool, st *attemptState, resp *http.Response) {
	var now lazyNow
	hdr, read := m.rl.headers.read(resp, &now, m.rl.parsers, st)
	cls := statusClass(resp.StatusCode)
	if st != nil && st.classified {
		cls = st.class
	}
	if !read && cls != Throttled {
		// A success of a quiet Transport, unread: the happy path.
		endFlight(p, counted)
		return
	}
	r := rlResponse{hdr: hdr, status: resp.StatusCode, throttled: cls == Throttled}
	if st != nil {
		r.sent = st.start
	}
	if r.throttled || r.status == http.StatusServiceUnavailable {
		if st != nil && st.classified {
			r.retryAfter, r.hasRA = st.retryAfter, st.hasRetryAfter
		} else {
			r.retryAfter, r.hasRA = retryAfterHeader(resp.Header, now.get)
		}
	}
	found := r.hdr.found()
	if found && servedByCache(resp.Header) {
		// A cache's copy tells the quota as it was when the server
		// made the response, a while ago: its Remaining is spent
		// since, or refilled, and its reset, read against its Date or
		// from the time it arrives, may hold calls the server takes.
		r.hdr, found = rateHeaders{info: RateLimitInfo{Limit: -1, Remaining: -1}}, false
	}
	if !found && !r.hasRA {
		endFlight(p, counted)
		return // the happy path: nothing announced
	}
	t := now.get()
	if st != nil {
		st.rate = r.hdr.info
		if r.hasRA {
			st.rate.Reset = t.Add(r.retryAfter) // Retry-After wins
		}
		waitForReset(st, r.throttled, r.hdr.info, t) // the loop waits the same pause as the partition
	}
	if noCred {
		// No partition could be found when the attempt began: its key
		// has neither its credential nor its canonical name yet.
		k = m.rl.canonical(k)
		k.cred = credentialOf(req)
		if k.cred != 0 && p != nil {
			// The attempt was counted in a partition found without its
			// credential (made meanwhile): it learns in its own.
			endFlight(p, counted)
			p = nil
		}
	}
	// The attempt reports what the server said; the partition learns
	// only what is believable.
	plain := 0
	if r.hdr.plain && !namesQuota(resp.Header) {
		plain = r.hdr.info.Limit
		r.method, r.path = bucketMethod(req.Method), routeTemplate(req.URL.Path)
	}
	nk, split := m.rl.resources.learn(k, req, resp, plain, r.throttled)
	if split > 0 {
		// The host counts each endpoint apart: what its partition of
		// the class learned was the first limit's, whose routes now
		// have a partition of their own.
		m.rl.splitPlain(partKey{scheme: k.scheme, host: k.host, write: k.write, custom: k.custom, cred: k.cred}, split, t)
	}
	if nk != k {
		// The response names a quota of its own: it learns, not the
		// partition the attempt was counted in.
		endFlight(p, counted)
		k, p = nk, nil
	}
	if p != nil && p.removed.Load() {
		// p was evicted while the attempt was in flight (a table full of
		// other credentials' partitions): what the answer says, a 429's
		// pause, holds the partition the next attempts of k find, not
		// one that none finds again.
		endFlight(p, counted)
		p = nil
	}
	if !r.believe(t) && p == nil {
		return
	}
	if p == nil {
		p = m.rl.lookup(k, true, &now)
	}
	if k.resource != "" && m.rl.quota != nil && p.global.Load() == nil {
		// A quota of its own: the fleet's pause of the host's global
		// limit must hold it, which the members that got a global 429
		// may never have made (see fleetGlobal).
		m.rl.fleetGlobal(k)
	}
	r.global = r.throttled && r.hasRA && globalScope(resp.Header)
	m.rl.update(p, t, &r, counted)
	if r.global {
		// Discord's global limit: every route of the credential waits.
		m.rl.pauseHost(k, t.Add(r.retryAfter), t)
	}
}

// rlResponse is what the rate limiter reads from one attempt's result.
type rlResponse struct {
	hdr        rateHeaders
	retryAfter time.Duration
	hasRA      bool // a Retry-After on a throttled or unavailable response
	throttled  bool // the class is Throttled (a 429 by default)
	status     int
	// method and path are the route of a response that announced a plain
	// limit (rateHeaders.plain); "" otherwise.
	method, path string
	// sent is when the attempt was sent (after its waits); zero when
	// unknown.
	sent time.Time
	// global says that the response is a 429 of the host's global limit
	// with a Retry-After (see globalScope), which pauses every partition
	// of its host and credential (see pauseHost).
	global bool
}

// believe drops from r what lies beyond MaxBelievedReset from now: a
// Retry-After, a reset (with the remaining quota of its window), a policy
// window. It reports whether anything is left to learn.
//
// It drops too the quota of a response that was not throttled and that
// announces a limit of 0, in whichever family (a policy's q=0, a
// parser's Limit 0): the server answered the request that it says it
// allows none of, and several APIs send a limit of 0 for a quota they do
// not meter. Believed, its remaining 0 would hold every call until its
// reset, where a plain client's get their answers. A throttled response's
// limit of 0, and a success's remaining 0 beside a positive limit (the
// request that spent the quota), are believed.
//
// A reset it keeps is the time it is from now on the monotonic clock, as
// a Retry-After is: one given as a time on the server's clock (a Unix
// time, a date, a parser's time.Unix) holds a wall-clock reading only, and
// kept as it is, it would move with a step of the wall clock (NTP, a
// resumed virtual machine): a pause 30 seconds ahead would last an hour
// and 30 seconds after a step of an hour back.
func (r *rlResponse) believe(now time.Time) bool {
	if r.hdr.info.Limit == 0 && !r.throttled {
		r.hdr = rateHeaders{info: RateLimitInfo{Limit: -1, Remaining: -1}}
	}
	if r.hasRA && r.retryAfter > MaxBelievedReset {
		r.hasRA = false
	}
	if d := r.hdr.info.Reset.Sub(now); d > MaxBelievedReset {
		// The remaining quota of that window goes with it.
		r.hdr.info.Reset, r.hdr.info.Remaining = time.Time{}, -1
	} else if !r.hdr.info.Reset.IsZero() {
		r.hdr.info.Reset = now.Add(d)
	}
	if r.hdr.window > MaxBelievedReset {
		r.hdr.window = 0
	}
	return r.hasRA || r.hdr.found()
}

// update learns from one response, whose values r has believed, and ends
// the attempt's flight when *counted, clearing *counted before it calls
// the store.
func (rl *rateLimiter) update(p *partition, now time.Time, r *rlResponse, counted *bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now = p.at(now)
	var spent time.Time // when the quota the attempts wait for is back; zero for none
	if p.reopened != nil {
		spent = p.spentUntil(now)
	}
	if *counted {
		p.inflight--
		*counted = false // ended, whatever the store does next
	}
	info := &r.hdr.info
	if r.hdr.found() {
		p.heard = now
		sent := r.sent
		if sent.IsZero() || sent.After(now) {
			sent = now
		}
		if sent.After(p.heardSent) {
			p.heardSent = sent
		}
	}
	// wasSpent says that the server's last count of the quota was none
	// left until its reset (a Remaining 0; a Retry-After's pause says
	// nothing of the count); newWindow, that r announces the window of
	// the same limit that follows. The window of another limit (a server
	// that announces the nearer to running out of a burst limit and an
	// hourly one) is not: its count says nothing of the spent limit's,
	// whose burst may be far below it.
	wasSpent, newWindow := p.drained && p.remaining == 0 && !p.reset.IsZero(), false
	// wasOver says that the window of the server's last count (none left,
	// or some: not a Retry-After's pause) is over, its reset passed before
	// r's request was sent: the window r announces follows it, and fills
	// the pace's bucket as one that follows a spent window does. The
	// bucket kept the old window's last count as its burst, 1 of a
	// window left with 1, and held to the estimated window's pace, then
	// refused, the calls the server said it would take, where a plain
	// client's went. (The window is the count's, over before a pause
	// announced since is: the new window's first count after that pause
	// fills the bucket too.)
	over := p.overSince(now)
	wasOver := !over.IsZero() && !r.sent.IsZero() && !r.sent.Before(over)
	// The remaining quota of the current window. A response with a later
	// reset starts a new window; one with an earlier reset (reordered)
	// only lowers the count, unless it belongs to an older window. So
	// does one with a later reset and more left whose attempt was sent
	// before the response that set the count arrived: the server may have
	// counted it first, and a reset in seconds from its answer, read when
	// it arrives, is later by its delay (see believe), though its window
	// is the same. A response that announces another limit than the count
	// is of (a server that announces the nearer to running out of a burst
	// limit and an hourly one) counts another window, whose reset, earlier
	// or later, says nothing of the count's: it sets the count as a new
	// window does. Its none left until its reset, taken for an older
	// window of the other limit, was dropped, and the next calls were
	// sent into it.
	if info.Remaining >= 0 && info.Reset.After(now) {
		other := info.Limit > 0 && p.limit > 0 && info.Limit != p.limit
		switch {
		case !p.reset.After(now) || (other || info.Reset.After(p.reset)) && (info.Remaining <= p.remaining || r.sent.IsZero() || !r.sent.Before(p.counted)):
			newWindow = !other
			p.remaining, p.reset, p.counted, p.countReset = info.Remaining, info.Reset, now, info.Reset
			p.refillUnit, p.refillFrom = refillUnit(&r.hdr, now), now
			p.drained = info.Remaining == 0
		case p.window > 0 && p.reset.Sub(info.Reset) > p.window/2:
			// From an older window: ignore.
		case info.Remaining < p.remaining:
			p.remaining, p.counted = info.Remaining, now
			p.refillUnit, p.refillFrom = refillUnit(&r.hdr, now), now
			p.drained = info.Remaining == 0
		}
	} else if wasOver && info.Remaining > 0 && !r.throttled && (info.Limit <= 0 || p.limit <= 0 || info.Limit == p.limit) {
		// A count without a reset (a server that announces its reset
		// only when the quota runs low), of a request sent once the
		// last counted window's reset had passed: the server counts the
		// window of the same limit that follows, and the pace's bucket
		// fills as it does for one announced with its reset (below).
		// Left as the spent window's, a burst of 1, it held the calls
		// the server said it would take to the estimated window's pace,
		// and refused them past WithMaxRetryAfter, where a plain
		// client's went. The new window's reset is not known: the next
		// count without one fills nothing again.
		newWindow = true
		p.remaining, p.reset, p.counted, p.drained, p.countReset = info.Remaining, time.Time{}, now, false, time.Time{}
	}
	if info.Limit > 0 {
		if info.Limit != p.limit && p.limit > 0 && r.hdr.window == 0 {
			// Another limit, announced without its window: the window
			// learned went with the old limit. The new limit's is
			// estimated from its resets, this response's first (below),
			// and paces it from the tokens the old pace left; without a
			// reset, it is not known, and the old pace goes too.
			if info.Reset.After(now) {
				p.window, p.policyWindow = 0, false
			} else {
				rl.unpace(p, now)
			}
		}
		p.limit = info.Limit
		p.handedOver = false // the quota its store paces is p's again
	}
	switch {
	case len(r.path) > redact.MaxPath:
		p.plainMethod, p.plainPath = "", "" // not a route: a hostile URL
	case p.plainMethod != r.method || p.plainPath != r.path:
		// Copies: the path is part of the request's URL.
		p.plainMethod, p.plainPath = keepKey(r.method), keepKey(r.path)
	}
	switch {
	case r.hdr.window > 0:
		p.window, p.policyWindow, p.windowSeen = r.hdr.window, true, now
	case p.policyWindow && now.Sub(p.windowSeen) > MaxBelievedReset:
		// A policy no response has announced for MaxBelievedReset, while
		// responses go on announcing a quota without it, is an estimate
		// like any other: one response's policy cannot slow the pace for
		// longer than a believed pause may last.
		p.policyWindow = false
	}
	if r.hdr.window == 0 && !p.policyWindow && info.Reset.After(now) {
		// The longest time to a reset seen is the window, or close to it.
		// An estimate that no response has confirmed (a time to a reset
		// of at least half of it) for two of its windows, or for
		// MaxBelievedReset if that is shorter, is dropped for the current
		// time to a reset while the server says that at least half of its
		// quota is left: one response's reset, however far ahead it was
		// believed, cannot slow the pace for longer than a believed pause
		// may last. A
		// quota in use keeps its estimate: a rolling window's resets are
		// those of its oldest request, close at hand under a steady load,
		// and never confirm it.
		switch est := info.Reset.Sub(now); {
		case est > p.window:
			p.window, p.windowSeen = est, now
		case est >= p.window/2:
			p.windowSeen = now
		case p.staleEstimate(info, now):
			p.window, p.windowSeen = est, now
		}
	} else if r.hdr.window == 0 && !p.policyWindow && p.window > 0 && r.hdr.found() && !r.throttled && p.staleEstimate(info, now) {
		// A response without a reset confirms no estimate either, and
		// gives none to drop it for: the window is no longer known, and
		// its pace goes with it until a reset estimates one anew. (Kept,
		// one response's reset paced the host for as long as the later
		// ones announced a quota without a reset.) One that announces no
		// quota (a Retry-After alone) drops none, nor does a throttled
		// one: neither says that the quota is not in use, a 429 that it
		// is spent. (Dropped, a rolling window's next reset, close at
		// hand, was taken for the window: a pace many times the quota.)
		if p.learned {
			rl.dropPaceWake(p, now)
		}
		p.window, p.windowSeen = 0, time.Time{}
	}

	// A pause: Retry-After first, else the reset.
	var until time.Time
	paused := false // the Retry-After's pause, not the server's count, sets p.remaining
	switch {
	case r.hasRA && (r.throttled || r.retryAfter <= rl.maxWait):
		paused = true
		// (A 503's Retry-After longer than any call waits pauses
		// nothing: the server is down, not out of quota, and the calls
		// that follow find out whether it is back before its word, as a
		// plain client's would, while the breaker sees to the outage.
		// Believed, one 503 would refuse the host's calls for up to
		// MaxBelievedReset.)
		until = now.Add(r.retryAfter)
		// Retry-After wins over the reset: the window is over when the
		// pause is.
		p.remaining, p.reset, p.refillUnit, p.counted = 0, until, 0, now
	case info.Reset.After(now) && r.throttled:
		until = throttledUntil(*info, now)
	case info.Reset.After(now) && r.status == http.StatusServiceUnavailable && info.Remaining == 0:
		until = info.Reset
	}
	p.raisePause(until)

	shared := until
	if r.global && p.sharesGlobal() {
		// The global limit's pause, not the route's: the store holds it
		// in the host's global limit, which every member's partition of
		// the route reads (see pauseHost).
		shared = time.Time{}
	}
	// The store hears of the quota from a response that announces its
	// window or a reset, not from one without either: that confirms no
	// window, and the estimate it would give the store, which no reset
	// confirms, would pace the fleet for MaxBelievedReset past the time
	// this Transport drops it (above).
	if !p.learnShared(info, shared, r.hdr.found() && (r.hdr.window > 0 || info.Reset.After(now))) {
		// A new window with requests left, announced after the spent
		// one, or once the last counted one is over (no pause, no
		// throttle), fills the pace's bucket.
		fill := (wasSpent || wasOver) && newWindow && until.IsZero() && !r.throttled && p.remaining > 0
		// The burst is the remaining count p believes, not the one r
		// announced: an answer reordered behind a later one (its count
		// dropped above) would raise the burst to what was left before
		// the later one counted, and at the reset the bucket let that
		// many go together into a quota the server said was spent. (A
		// Retry-After's pause, which sets none left, keeps r's count: the
		// pause holds the calls, not the burst.) So is one of a request
		// sent before the count of a window announced without its reset
		// (see wasOver) arrived: the last answer of the window before,
		// sent before its reset and late, set the burst to its none
		// left, and the new window's calls, which the server takes,
		// were held to the pace, then refused.
		remaining := info.Remaining
		if remaining >= 0 && !paused && (p.reset.After(now) || p.reset.IsZero() && !r.sent.IsZero() && r.sent.Before(p.counted)) {
			remaining = p.remaining
		}
		rl.pace(p, now, remaining, fill)
	}
	if !spent.IsZero() && p.reopened != nil && p.spentUntil(now).Before(spent) {
		// The quota is back earlier than the attempts waiting for it
		// were told (a Retry-After, which wins over the reset, or a
		// faster refill), or no longer spent: they wake to look again.
		close(p.reopened)
		p.reopened = nil
	}
	p.reopen(now)
	p.answerHeard()
}

// staleEstimate reports whether p's estimate of the window, which no
// response has confirmed for two of its windows, or for MaxBelievedReset
// if that is shorter, is dropped by a response that announced info at
// now: while the server says that at least half of its quota is left (a
// quota in use keeps its estimate, see update). p.mu is held.
func (p *partition) staleEstimate(info *RateLimitInfo, now time.Time) bool {
	return now.Sub(p.windowSeen) > min(2*p.window, MaxBelievedReset) && (info.Limit <= 0 || info.Remaining < 0 || info.Remaining*2 >= info.Limit)
}

// refillUnit returns the time one request of a quota refilled continuously
// takes to come back, as h announces it at now: the time until it is full
// again, over the requests it lacks; 0 for a quota that resets at once, or
// when h does not tell.
func refillUnit(h *rateHeaders, now time.Time) time.Duration {
	i := &h.info
	if !h.refill || i.Limit <= 0 || i.Remaining < 0 || i.Remaining >= i.Limit || !i.Reset.After(now) {
		return 0
	}
	return max(i.Reset.Sub(now)/time.Duration(i.Limit-i.Remaining), 1)
}

// unrelatedThrottle is the longest pause of a throttled response without a
// Retry-After whose quota is not spent: GitHub asks for a minute after a
// secondary rate limit that says no more.
const unrelatedThrottle = time.Minute

// waitForReset makes the retry of attempt st, throttled by a server that
// gave no Retry-After, wait until the quota info it announced at now is
// available again (see throttledUntil), as a rate-limit partition pauses.
// It does nothing when the attempt was not throttled or when the reset is
// not after now. Like a Retry-After, the wait is capped at
// maxRetryAfterSeconds: a reset centuries ahead would otherwise be the
// largest Duration, which the jitter added to it overflows.
func waitForReset(st *attemptState, throttled bool, info RateLimitInfo, now time.Time) {
	if throttled && !st.hasRetryAfter && info.Reset.After(now) {
		st.retryAfter, st.hasRetryAfter = min(throttledUntil(info, now).Sub(now), maxRetryAfterSeconds*time.Second), true
	}
}

// waitForAnnouncedReset makes the retry of attempt st, whose response resp
// was throttled without a Retry-After, wait for the reset resp announced,
// read as the limiter reads it (its families, then parsers), as
// waitForReset does. It serves the attempts that go without the limiter
// (WithoutRateLimit, a WithRateLimitKey that exempts them), whose learn
// does not run. A parser that panics closes resp's body first.
func waitForAnnouncedReset(st *attemptState, resp *http.Response, parsers []RateLimitParser, now time.Time) {
	if st.class != Throttled || st.hasRetryAfter {
		return
	}
	t := lazyNow{t: now}
	r := parseRateLimit(resp.Header, &t)
	if !r.found() && canonicalRateHeaders(resp) {
		r = parseRateLimit(resp.Header, &t)
	}
	if !r.found() && len(parsers) > 0 {
		done := false
		defer closeOnPanic(resp, &done)
		r.custom(parsers, resp.Header, &t)
		done = true
	}
	waitForReset(st, true, r.info, t.t)
}

// throttledUntil returns when the pause of a throttled response without a
// Retry-After ends, at now, from the quota info it announced with a reset:
// at the reset when that quota is spent (Remaining 0) or its remaining is
// not announced; else unrelatedThrottle from now at most, for the quota did
// not throttle the request (another limit did, such as GitHub's secondary
// limits), and its reset, up to an hour away, says nothing of when that
// limit ends.
func throttledUntil(info RateLimitInfo, now time.Time) time.Time {
	if info.Remaining > 0 && info.Reset.Sub(now) > unrelatedThrottle {
		return now.Add(unrelatedThrottle)
	}
	return info.Reset
}

// pace sets p's limiter from what the server announced: 95% of
// limit/window (of remaining/window when the remaining count is the
// larger), with bursts of the remaining quota; a static limit, when set,
// caps both. p.mu is held.
//
// fill says that the response announced a new window of the same limit,
// with remaining requests left, after the window that the last word said
// was spent, or once the reset of the window the last word counted had
// passed: the bucket then holds the new burst at once, as the first
// quota learned's does, on the server's word. The spent window's
// Remaining 0 left a burst of 1 (a window left with a few, as few), and
// the attempts that waited for its reset, given turns one 1/rate apart
// from it, were refused once those passed the bound of the server's
// waits (WithMaxRetryAfter, in all), though the server would take them
// all. Another limit's count fills
// nothing: it says nothing of the spent one's burst. The attempts waiting
// for turns of the old bucket wake to take tokens of the new one (rose). A
// static limit (WithRateLimit) keeps its tokens, never more than it
// allows.
func (rl *rateLimiter) pace(p *partition, now time.Time, remaining int, fill bool) {
	if p.limit <= 0 || p.window <= 0 {
		return
	}
	// A remaining count above the limit says that the quota counted is at
	// least that: a pace by the limit would refuse the calls the server
	// says remain.
	r := rate.Limit(paceShare * float64(max(p.limit, remaining)) / p.window.Seconds())
	b := remaining
	switch {
	case b < 0 && p.learned:
		b = p.paceBurst // not announced: keep it
	case b < 0:
		b = p.limit
	}
	if rl.static > 0 {
		r, b = min(r, rl.static), min(b, rl.burst)
	}
	b = max(b, 1)
	switch {
	case p.lim == nil:
		// The first quota learned, without a static limit: a full bucket,
		// so that the remaining quota can be used at once.
		p.lim = rate.NewLimiter(r, b)
		p.newRate()
	case !p.learned:
		// A static limiter keeps its tokens: never more than it allows.
		if r != p.lim.Limit() {
			p.setRate(now, r)
		}
		p.lim.SetBurstAt(now, b)
	case fill && rl.static == 0:
		p.lim = rate.NewLimiter(r, b)
		p.newRate()
		p.owed = 0 // the bucket is full
		p.wake()
	default:
		if r != p.paceRate {
			p.setRate(now, r)
		}
		if b != p.paceBurst {
			p.lim.SetBurstAt(now, b)
		}
	}
	p.learned, p.paceRate, p.paceBurst = true, r, b
}

// unpace forgets the quota p's pace follows, which no response has
// announced for MaxBelievedReset: a server that stopped announcing it (one
// response's policy, a quota announced once) cannot hold a host's calls for
// longer than a believed pause may last. A static limit paces p again; the
// remaining quota, its reset and the pause, bounded by their own times,
// stay. The next response that announces a quota paces p anew. The
// attempts waiting for turns of the pace forgotten wake (see dropPaceWake).
// p.mu is held.
func (rl *rateLimiter) unpace(p *partition, now time.Time) {
	rl.dropPaceWake(p, now)
	p.limit, p.window, p.policyWindow, p.windowSeen = 0, 0, false, time.Time{}
}

// dropPaceWake is dropPace for a pace the server's word (or its silence)
// dropped: the attempts waiting for turns of it wake when nothing paces p
// then, as they do when a static limit's rate rises (see setRate, which
// dropPace calls for one): a turn of a pace p no longer follows is spent,
// and they look again at what holds them now. (Asleep, they waited for a
// pace no longer known, up to WithMaxRetryAfter, where a plain client's
// calls go at once.) Only the waiters of a pace learned wake: those of a
// partition whose pace a split dropped (see forget) wait for turns of the
// limit its routes still have, and wake at none of its later drops. p.mu
// is held.
func (rl *rateLimiter) dropPaceWake(p *partition, now time.Time) {
	learned := p.learned
	rl.dropPace(p, now)
	if learned && p.lim == nil {
		p.wake()
	}
}

// dropPace forgets the pace p learned from the server, if any: the static
// limit paces p again, or nothing does. p.mu is held.
func (rl *rateLimiter) dropPace(p *partition, now time.Time) {
	switch {
	case p.learned && rl.static > 0:
		p.setRate(now, rl.static) // records the change (newRate)
		p.lim.SetBurstAt(now, rl.burst)
	case p.learned:
		p.lim = nil
		fallthrough
	default:
		p.newRate()
	}
	p.learned, p.paceRate, p.paceBurst, p.owed = false, rate.Limit(0), 0, 0
}
