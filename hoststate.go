package resilient

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"golang.org/x/time/rate"
)

// HostState is what a Transport holds about one host at one moment, as
// Transport.HostState reads it: for a dashboard or a health check, and for
// a caller that sheds optional work while a host fails or its quota runs
// low.
type HostState struct {
	// Breaker is the state of the host's circuit breaker, as
	// Transport.BreakerState reports it.
	Breaker BreakerState

	// Reads is the state of the rate-limit partition that a GET request
	// for the URL goes through (reads: GET, HEAD and OPTIONS), and Writes
	// that of a POST request (every other method), under the partition
	// key of WithRateLimitKey when one is set.
	Reads, Writes RateLimitState

	// RetryBudget is the number of retries the host's budget holds (its
	// address's, for a request to a virtual host: see RetryBudget; a
	// retry the server asked for with a wait costs
	// RetryBudget.ThrottledCost, a fraction of one): RetryBudget.Burst for a host the Transport holds
	// no budget for, as a new host starts full, but when its table of
	// budgets is full and would make no room for the host's next call,
	// what the budget it then shares with the other hosts beyond the
	// table holds (see RetryBudget). It counts what the budget
	// regains while the host is not called (one retry per ten minutes, up
	// to the burst), as the host's next call finds it. A budget shared
	// through a BudgetStore reads what its SharedBudget holds, as the
	// member sees the fleet's, when it tells (a SharedBudgetReader, such
	// as redisquota's). It is -1 when there is no budget to read: budgets
	// are off (WithoutRetryBudget), or shared through a BudgetStore whose
	// budget does not tell, or that the Transport has not asked for the
	// host yet (the fleet's count lives in the store).
	RetryBudget float64

	// InFlight is the number of attempts to the host holding a slot of
	// WithMaxInFlight, and Waiting the number waiting for one; both are -1
	// when there is no such limit: WithMaxInFlight is off, or
	// BreakerSettings.Key exempts the host.
	InFlight, Waiting int
}

// RateLimitState is what a Transport's rate limiter holds of one partition.
type RateLimitState struct {
	// RateLimitInfo is the quota the server last announced: Limit, or -1
	// when none was; Remaining, what was left of it, until Reset, or -1
	// and the zero time when no reset is known or it has passed.
	RateLimitInfo

	// Rate is the pace the partition keeps, in requests a second: the
	// lower of the pace of the announced quota and that of WithRateLimit;
	// 0 for none. A quota shared through a QuotaStore is paced by the
	// store, which this does not read.
	Rate float64

	// PausedUntil is the time before which no attempt of the partition is
	// sent: the end of a pause that a 429 or a Retry-After asked for (the
	// fleet's, with a QuotaStore), or the reset of a quota that the
	// attempts in flight have used up; the zero time when an attempt may
	// go now.
	PausedUntil time.Time

	// InFlight is the number of the partition's attempts past its turn
	// and not yet answered: sent, or waiting below the rate limiter (for a
	// slot of WithMaxInFlight, which HostState.Waiting counts too).
	InFlight int
}

// HostState returns what the Transport holds about the host of req, as its
// requests find it: its breaker, its rate-limit partitions, its retry
// budget and its attempts in flight, looked up under the keys attempts of
// requests like req use: its URL's scheme and host (its path matters only
// to a quota a server names by route), or the virtual host its Host header
// names behind that address (see BreakerSettings.Key: req.Host
// "up.internal" on "http://10.0.0.1:8080/" reads up.internal's state, not
// the address's, but for the retry budget, which is the address's: see
// RetryBudget), its credential (a server counts
// quotas per credential: see WithRateLimitKey), and whatever a custom key
// (WithRateLimitKey, BreakerSettings.Key) reads of it; its method and body
// do not matter (Reads and Writes say both classes). A host the Transport
// has not called, or has forgotten (an idle host is evicted), is reported
// as a new one: breaker closed, no quota known, a full budget, nothing in
// flight (but the budget of a host beyond a full table of retry budgets:
// see HostState.RetryBudget). One that ResetHost cleared has its breaker
// closed and no quota known; its budget and its attempts in flight are as
// they were. It changes nothing, takes no lock but the partitions' own (and,
// for a host beyond a full table of retry budgets, that table's), briefly,
// makes no call to a QuotaStore but a
// PauseUntil (and a shared budget's Tokens, see RetryBudget), and is safe to call at any time, from any goroutine.
//
// It returns an error when req is nil or its URL is not absolute with a
// host.
func (t *Transport) HostState(req *http.Request) (HostState, error) {
	if t.inner.rt == nil { // the zero Transport
		t.zeroOnce.Do(func() { t.zeroImpl = New(nil) })
		return t.zeroImpl.HostState(req)
	}
	switch {
	case req == nil || req.URL == nil:
		return HostState{}, errors.New("resilient: HostState: no request, or no URL")
	case req.URL.Scheme == "" || req.URL.Host == "":
		return HostState{}, fmt.Errorf("resilient: HostState: %q is not an absolute URL with a host", redactURL(req))
	}
	get, post := *req, *req
	get.Method, post.Method = http.MethodGet, http.MethodPost
	if get.Header == nil {
		get.Header, post.Header = make(http.Header), make(http.Header)
	}
	now := t.clock.now()
	s := HostState{RetryBudget: -1, InFlight: -1, Waiting: -1}
	if t.breakers != nil {
		s.Breaker = t.breakers.stateOf(&get)
	}
	s.Reads, s.Writes = t.rl.stateOf(&get, now), t.rl.stateOf(&post, now)
	if t.budgets != nil {
		s.RetryBudget = t.budgets.tokensOf(&get)
	}
	if t.bulkhead != nil {
		s.InFlight, s.Waiting = t.bulkhead.countOf(&get)
	}
	return s, nil
}

// hostKeys returns the keys under which the tables of breakers, budgets
// and slots may hold the host of req (a request made from a URL alone, or
// one that is yet to make its first attempt): the key of keyFn, or the key
// as a request has it, then its canonical form (an alias is stored only
// once a request used it). It returns none when keyFn exempts req.
func hostKeys(keyFn func(*http.Request) string, req *http.Request) (keys [2]breakerKey, n int) {
	if keyFn != nil {
		k, ok := requestKey(keyFn, req)
		if !ok {
			return keys, 0
		}
		keys[0] = k
		return keys, 1
	}
	k, _ := requestKey(nil, req)
	return urlKeys(k)
}

// urlKeys returns the keys under which a table may hold k, a URL's key as
// a request has it (see hostKeys): k bounded, then its canonical form.
func urlKeys(k breakerKey) (keys [2]breakerKey, n int) {
	k = k.bounded()
	scheme := lowerASCII(k.scheme)
	keys[0] = k
	keys[1] = breakerKey{scheme, canonicalHost(scheme, k.host)}
	return keys, 2
}

// findHost returns the value of the first of keys that table holds, or nil.
func findHost[V any](table *hostTable[breakerKey, V], keys []breakerKey) *V {
	for _, k := range keys {
		if v := table.load(k); v != nil {
			return v
		}
	}
	return nil
}

// stateOf returns the state of the partition of req at now. A nil
// limiter (WithoutRateLimit) has none.
func (rl *rateLimiter) stateOf(req *http.Request, now time.Time) RateLimitState {
	s := RateLimitState{RateLimitInfo: RateLimitInfo{Limit: -1, Remaining: -1}}
	if rl == nil {
		return s
	}
	k, ok := rl.key(req, true)
	if !ok {
		return s // exempt: nothing applies
	}
	s.Rate = float64(rl.static)
	p := rl.part(k)
	if p == nil {
		if until := rl.hostPauses.of(k); until.After(now) {
			s.PausedUntil = until // a global limit's, which a partition made for req starts with
		}
		return s
	}
	// The lock is released by hand, not deferred: gate releases it itself
	// when the QuotaStore panics (see unlockIfPanicking), and a second
	// release would be a fatal error, which no recover stops.
	p.mu.Lock()
	if p.limit > 0 {
		s.Limit = p.limit
	}
	if p.reset.After(now) {
		s.Remaining, s.Reset = p.remaining, p.reset
	}
	if p.lim != nil && p.lim.Limit() != rate.Inf {
		s.Rate = float64(p.lim.Limit())
	}
	if until, _, _ := p.gate(now); until.After(now) {
		s.PausedUntil = until
	}
	s.InFlight = p.inflight
	p.mu.Unlock()
	return s
}

// tokensOf returns the retries the budget of req's host holds, or -1 when
// it cannot tell (see HostState.RetryBudget): the budget req would spend
// from (see budgetKey), its address's unless keyFn keys it.
func (s *budgetSet) tokensOf(req *http.Request) float64 {
	var keys [2]breakerKey
	n := 0
	if s.keyFn != nil {
		keys, n = hostKeys(s.keyFn, req)
	}
	if n == 0 {
		keys, n = urlKeys(breakerKey{req.URL.Scheme, addressHost(req)})
	}
	b := findHost(&s.m, keys[:n])
	switch {
	case b != nil && b.shared != nil:
		if r, ok := b.shared.(SharedBudgetReader); ok {
			// Another hand's arithmetic: a NaN tells nothing, and
			// no member's view holds more than its Burst.
			if v := r.Tokens(); !math.IsNaN(v) {
				return min(max(v, 0), float64(s.burst)/budgetUnit)
			}
		}
		return -1
	case b == nil && s.store != nil:
		return -1
	case b == nil && s.overflows():
		// Beyond a full table: the host's next call shares the
		// overflow budget (see budgetSet.insert), which a new host's
		// full one would misstate.
		b = &s.overflow
	case b == nil:
		return float64(s.burst) / budgetUnit
	}
	// What the budget holds when next used: with what it regains for
	// the time it was not (see budgetSet.use).
	tokens := b.tokens.Load() &^ budgetDropped
	if tokens < s.burst {
		tokens = min(tokens+s.idleRefill(s.now(), b.used.Load()), s.burst)
	}
	return float64(tokens) / budgetUnit
}

// countOf returns the attempts to req's host in flight and waiting; -1
// and -1 for a host the breaker's key exempts, which has no limit.
func (b *bulkhead) countOf(req *http.Request) (inFlight, waiting int) {
	keys, n := hostKeys(b.keyFn, req)
	if n == 0 {
		return -1, -1
	}
	s := findHost(&b.table, keys[:n])
	if s == nil {
		return 0, 0
	}
	v := s.state.Load()
	if v&slotsGone != 0 {
		return 0, 0
	}
	return int(v & slotsMask), int((v &^ slotsGone) >> 32)
}
