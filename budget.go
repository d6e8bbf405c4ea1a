package resilient

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ErrRetryBudgetExhausted means a retry was refused because the retry
// budget of the request's host was spent: the host's recent attempts
// failed more than its successes pay for. A call whose retry is refused
// returns the response of its last attempt when it has one, and else an
// error wrapping ErrRetryBudgetExhausted and the last attempt's cause.
var ErrRetryBudgetExhausted = errors.New("resilient: retry budget exhausted")

// Defaults of RetryBudget.
const (
	DefaultRetryBudgetRatio         = 0.2
	DefaultRetryBudgetBurst         = 10
	DefaultRetryBudgetThrottledCost = 0.1
)

// RetryBudget bounds the retries of a host as a share of its traffic, so
// that retries never multiply an outage, whatever the number of callers
// and of retries a layer above stacks on top: every answer of the host (a
// success, or an error the server gave deliberately, such as a 404)
// deposits Ratio tokens, up to Burst; a retry spends one token, or
// ThrottledCost when the server asked for it with a wait (a 429 with a
// Retry-After or the reset of its quota, or a 503 with a Retry-After; not
// a wait of 0, a date past or one shorter than the backoff's base, which
// the retry raises to it, nor a 429 without one: those pace nothing but
// the backoff); a retry that finds too few tokens is not sent. First
// attempts never spend, and a retry that is not sent after all (refused by
// the breaker, the rate limiter or the limit of attempts in flight, or
// declined by the base with http.ErrSkipAltProtocol, which ends the call;
// its body not replayable; its call canceled during its
// wait, the backoff's, the rate limiter's or a slot's; a panic before it
// is sent) gives back what it spent, as does one that the caller's own
// mistake kept from being sent (a RequestError: a header net/http refuses,
// a body that broke), even when a Classifier retries it: it counts against
// nothing. A refusal of the breaker, the rate limiter or the limit of
// attempts in flight that a Classifier retries all the same is the
// exception: the retry it was is paid for as any retry, unless the
// Transport sent it at once because it foresaw the refusal, so that a
// Classifier that retries every error cannot spin on refusals (see
// WithMaxInFlight). A host's budget starts full, so the first failures
// on a new host are retried as usual; a budget regains one retry for each
// ten minutes its host neither answered nor was retried, up to Burst, so
// that the first failures after a quiet spell (days after an outage spent
// the budget) are retried as a new host's are.
//
// With the defaults, a host that fails 10% of attempts keeps far more
// tokens than its retries spend (each success pays for a fifth of a
// retry), so its calls succeed as without a budget; a host that fails
// every attempt costs 10 retries in all, then one attempt per call until
// it answers again (and one retry more per ten minutes without a call).
//
// A Transport keeps the budgets of 4,096 hosts at most. When its table is
// full, a new host's budget takes the place of full ones (the same as new,
// the host's hedge allowance included: see WithHedging) and of those of
// hosts that neither answered nor were retried or hedged for a minute
// (such a host starts again full); when there are none, the new host
// shares one overflow budget with every other host that found the table
// full, so that an outage of more hosts than the table holds is bounded
// too: by Burst retries per host in the table, and Burst retries in all
// for the hosts beyond it.
//
// A host's budget is that of the address its requests are sent to: its
// URL's scheme and host, whatever virtual host a request's Host header
// names behind it (an ingress, a gateway, a server called by its IP
// address), so that an outage of the server the connection goes to costs
// Burst retries in all, however many Host names its callers use (a
// reverse proxy passing on its clients' Host headers, tenant subdomains),
// where a budget per name would allow each new one Burst more. A retry
// that the budget denies leaves the call what a plain client's is, one
// attempt: a virtual host whose neighbor spent the budget is still called,
// and its breaker, its WithMaxInFlight slots and its rate-limit partitions
// stay its own (see BreakerSettings.Key). A custom BreakerSettings.Key
// keys the budget too; a request for which it returns "" goes without a
// breaker, not without a budget: it keeps its address's.
//
// The zero value means the defaults. Fields are per host.
type RetryBudget struct {
	// Ratio is what each answer of the host deposits, in retries: the share
	// of retries the budget sustains (default 0.2). The budget counts in
	// millionths of a retry: a Ratio finer than that deposits a millionth.
	Ratio float64

	// Burst is the most the budget holds, and what it starts with: the
	// retries an outage costs before the budget stops them (default 10).
	Burst float64

	// ThrottledCost is what a retry the server asked for with a wait
	// costs, in (0, 1] (default 0.1: the server paces such retries
	// itself); any other retry costs 1, a 429's without a wait (or with
	// one shorter than the backoff's base) too.
	ThrottledCost float64
}

// WithRetryBudget sets the per-host retry budget, which is on by default
// with the defaults documented on RetryBudget; zero fields take their
// default. The budget is kept per address (the URL's scheme and host),
// which the virtual hosts behind it share, or per custom
// BreakerSettings.Key (see RetryBudget). It panics with a message naming the field if a value is
// negative or not finite, or ThrottledCost is above 1.
func WithRetryBudget(b RetryBudget) Option {
	for _, f := range []struct {
		name string
		v    float64
	}{{"Ratio", b.Ratio}, {"Burst", b.Burst}, {"ThrottledCost", b.ThrottledCost}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			panic(fmt.Sprintf("resilient: WithRetryBudget %s: %v is not a finite value of 0 or more", f.name, f.v))
		}
	}
	if b.ThrottledCost > 1 {
		panic(fmt.Sprintf("resilient: WithRetryBudget ThrottledCost: %v is above 1", b.ThrottledCost))
	}
	return func(c *config) {
		perTransport(c, "WithRetryBudget")
		c.budget, c.noBudget = b, false
	}
}

// WithoutRetryBudget turns the retry budget off: each call retries as its
// own options allow, however many calls fail.
func WithoutRetryBudget() Option {
	return func(c *config) {
		perTransport(c, "WithoutRetryBudget")
		c.noBudget = true
	}
}

// budgetUnit is a token, in the fixed-point units of hostBudget: a
// millionth, so that a Ratio of a ten-thousandth (a retry per 10,000
// answers, for a host called that often) deposits what it says, where a
// thousandth made it nothing, and a host whose budget an outage spent was
// never retried again.
const budgetUnit = 1_000_000

// maxBudgetUnits bounds a budget's values in budgetUnit, so that a balance
// plus a deposit never overflows.
const maxBudgetUnits = math.MaxInt64 / 4

// budgetUnits returns v tokens in budgetUnit, saturated at maxBudgetUnits:
// a value too large to run out (WithRetryBudget takes any finite one) must
// not overflow to a negative balance.
func budgetUnits(v float64) int64 {
	if u := v * budgetUnit; u < maxBudgetUnits {
		return int64(u)
	}
	return maxBudgetUnits
}

// maxBudgets bounds the table of host budgets. When it is full, a new
// host's budget takes the place of budgets that can be dropped: those that
// are full (the same as a new one) and those of hosts not called for more
// than budgetIdle (which refill only when used again: see use); when
// none can, the new host shares the overflow budget with every other host
// that found the table full, so that retries to hosts beyond the table are
// bounded together.
const maxBudgets = 4096

// budgetIdle is how long a budget that is not full is kept without a
// withdrawal or a deposit once the table is full: its host is not being
// called, and a budget refills only by the host's answers or when used
// again (see use), so that it would never be full again and never leave
// the table. A host called again once its budget was dropped starts again
// with a full one: at most Burst retries more per budgetIdle, for a host
// called less often than that, when the table is full.
const budgetIdle = time.Minute

// budgetRefill is how long a budget is not used for each retry it regains
// when used again (see use): a quiet host's budget fills up again, while a
// host that fails every call, called less often than budgetIdle, gets at
// most one retry more per budgetRefill than its answers pay for.
const budgetRefill = 10 * time.Minute

// budgetDropped marks the tokens of a budget dropped from the table (see
// sweep): it is counted no more in notFull, whatever happens to it, while
// the calls that still hold it deposit to it as before; their retries and
// hedged copies pay to the host's budget in the table (see call.payRetry
// and call.launchCopy). It is above any balance (maxBudgetUnits) and any
// balance plus a deposit.
const budgetDropped = 1 << 62

// budgetSet holds the retry budgets of a Transport's hosts. It is safe for
// concurrent use. An answer costs nothing while every budget is full (the
// steady state of healthy hosts): one atomic load tells it, and no host is
// looked up; otherwise a map lookup and an atomic load, plus a write when
// the host's budget is not full. The table holds at most maxBudgets keys:
// see there what happens when it is full.
type budgetSet struct {
	ratio, burst, throttled int64 // in budgetUnit
	keyFn                   func(*http.Request) string

	m        hostTable[breakerKey, hostBudget] // keys as requested, and canonical; written under mu
	notFull  atomic.Int64                      // budgets not full, but those dropped and those shared through a store
	overflow hostBudget                        // the budget of the hosts that found the table full
	epoch    time.Time                         // of the coarse times of hostBudget.used
	mu       sync.Mutex
	aliases  int   // keys of m that are not canonical; under mu
	idleAt   int64 // the coarse time from which idle budgets may be worth a sweep; under mu
	// hedged is how many budgets the last sweep kept, full or shared,
	// for their hedge allowance (see sweep), which notFull does not
	// count; under mu.
	hedged int

	store    BudgetStore // the fleet's budgets (budget_store.go); nil for none
	settings RetryBudget // with the defaults, for store
}

// hostBudget is one host's budget, in budgetUnit, with what hedging keeps
// of the host.
type hostBudget struct {
	tokens      atomic.Int64                // with budgetDropped once dropped
	used        atomic.Int64                // coarse time (see budgetSet.now) of the last write of tokens but by an answer to a full budget
	hedgeTokens atomic.Int64                // see takeHedge
	lat         atomic.Pointer[latencyHist] // made when a call is hedged
	shared      SharedBudget                // the fleet's budget, in place of tokens; nil for none
	node        tableNode[breakerKey, hostBudget]
}

func newBudgetSet(b RetryBudget, keyFn func(*http.Request) string) *budgetSet {
	if b.Ratio == 0 {
		b.Ratio = DefaultRetryBudgetRatio
	}
	if b.Burst == 0 {
		b.Burst = DefaultRetryBudgetBurst
	}
	if b.ThrottledCost == 0 {
		b.ThrottledCost = DefaultRetryBudgetThrottledCost
	}
	s := &budgetSet{
		ratio:     max(budgetUnits(b.Ratio), 1), // a share, however small, is not nothing
		burst:     budgetUnits(b.Burst),
		throttled: max(budgetUnits(b.ThrottledCost), 1), // a cost, however small, is not nothing
		keyFn:     keyFn,
		epoch:     time.Now(),
	}
	s.m.init()
	s.fill(&s.overflow)
	return s
}

// fill makes b a new budget: full, used now.
func (s *budgetSet) fill(b *hostBudget) {
	b.tokens.Store(s.burst)
	b.hedgeTokens.Store(hedgeBurst * budgetUnit)
	b.used.Store(s.now())
}

// now returns the coarse time of hostBudget.used: whole seconds since
// s.epoch, on the monotonic clock.
func (s *budgetSet) now() int64 { return int64(time.Since(s.epoch) / time.Second) }

// use records that b is used now, with a write only when the coarse time
// changed. A budget not used for budgetRefill or more first regains one
// retry for each budgetRefill it was not used, up to its burst: a host not
// called for an hour and forty minutes (with the default burst) starts
// again as a new host does, as it would once a sweep of a full table
// dropped it (a budget that an outage spent a week ago would otherwise
// refuse the retries of the host's first failing calls, and refill only by
// the host's answers), while a host that fails every call still costs at
// most one retry more per budgetRefill. It runs on an answer to a budget
// not full and on a retry, never on the answer of a host whose budget is
// full. Of the callers that find a budget idle at once, only the one that
// marks it used adds what it regained.
func (s *budgetSet) use(b *hostBudget) {
	now := s.now()
	used := b.used.Load()
	if used == now || !b.used.CompareAndSwap(used, now) {
		return
	}
	if add := s.idleRefill(now, used); add > 0 {
		if v, ok := addTokens(&b.tokens, add, s.burst); ok && v == s.burst {
			s.notFull.Add(-1)
		}
	}
}

// idleRefill returns the tokens a budget last used at used (coarse time)
// regains when used at now: one retry per budgetRefill, at most a burst
// (see use).
func (s *budgetSet) idleRefill(now, used int64) int64 {
	idle := (now - used) / int64(budgetRefill/time.Second)
	switch {
	case idle <= 0:
		return 0
	case idle <= s.burst/budgetUnit:
		return idle * budgetUnit // within the burst: no overflow
	}
	return s.burst
}

// answered credits an answer of the call's host, resp: a deposit, unless
// every local budget is full, in which case the host is not even looked
// up. A fleet's budgets (WithQuotaStore) are always credited: other
// members spend them.
func (s *budgetSet) answered(c *call, resp *http.Response) {
	switch {
	case s.store == nil && s.notFull.Load() == 0:
		// Every budget full: nothing to deposit.
	case s.store == nil && c.hb != nil:
		s.deposit(c.hb)
	default:
		s.answeredGuarded(c, resp)
	}
}

// answeredGuarded is answered where a caller's code may run and panic: the
// function that keys the budget (BreakerSettings.Key, which looks up a
// host the call has not looked up yet: with the breakers off, the budget
// is the first to call it), or a BudgetStore's (Budget, Deposit). resp,
// which the caller then never sees, is closed on the way out, as around
// every function a caller plugs in (see closeOnPanic).
func (s *budgetSet) answeredGuarded(c *call, resp *http.Response) {
	done := false
	defer closeOnPanic(resp, &done)
	s.deposit(c.hostBudget())
	done = true
}

// get returns the budget of req's host, or nil for a request without one.
func (s *budgetSet) get(req *http.Request) *hostBudget {
	k, custom, ok := budgetKey(s.keyFn, req)
	if !ok {
		return nil
	}
	h := s.m.hashOf(k)
	if b := s.m.find(k, h); b != nil {
		return b
	}
	return s.insert(k, h, custom)
}

// budgetKey returns the key of req's retry budget: keyFn's
// (BreakerSettings.Key) when it returns one, else the key of the address
// req is sent to, its URL's scheme and host (see addressHost), whatever
// virtual host its Host header names: a request exempt from a breaker is
// not exempt from the bound on retries, and the virtual hosts behind one
// address share its budget, for each new Host with a full budget of its
// own multiplied an outage of the address (a reverse proxy passing on its
// clients' Host headers, tenant subdomains: six attempts per call, where
// one budget allows a burst in all). A budget that denies a retry makes a
// call what a plain client's is, one attempt, where a breaker's refusal
// or a pause would hold back a host that is up: those stay per virtual
// host (see requestKey). custom says that the key is keyFn's, not the
// URL's, whose host may have no scheme (see breakerName). It reports false
// for a request without a URL that keyFn does not key.
func budgetKey(keyFn func(*http.Request) string, req *http.Request) (k breakerKey, custom, ok bool) {
	if keyFn != nil {
		if k, ok := requestKey(keyFn, req); ok {
			return k, true, true
		}
	}
	if req.URL == nil {
		return breakerKey{}, false, false
	}
	return breakerKey{req.URL.Scheme, addressHost(req)}, false, true
}

// insert returns the budget of k, whose hash is h, making it unless
// another goroutine did, or adding k as an alias of its canonical key's;
// when the table is full and no budget can be dropped, the overflow
// budget. custom says that k is a custom key (see budgetKey).
func (s *budgetSet) insert(k breakerKey, h uint64, custom bool) *hostBudget {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kb := k.bounded(); kb != k {
		k, h = kb, s.m.hashOf(kb)
	}
	if b := s.m.find(k, h); b != nil {
		return b
	}
	ck, ch := k, h
	if !custom {
		// A URL's host, one without a scheme too (see breakerName),
		// the default port of the scheme lower-cased.
		ck.scheme, ck.host = canonicalName(k.scheme, k.host)
		if ck != k {
			ch = s.m.hashOf(ck)
		}
	}
	if ck != k {
		if b := s.m.find(ck, ch); b != nil {
			if s.m.len() < maxBudgets {
				s.m.insert(k.clone(), h, b, nil) // an alias: another spelling of the same host
				s.aliases++
			}
			return b
		}
	}
	if s.m.len() >= maxBudgets && !s.makeRoom() {
		return &s.overflow
	}
	b := &hostBudget{shared: s.sharedBudget(ck, custom)}
	s.fill(b)
	s.m.insert(ck.clone(), ch, b, &b.node)
	if ck != k && s.m.len() < maxBudgets {
		s.m.insert(k.clone(), h, b, nil) // an alias, kept only while the table has room for it
		s.aliases++
	}
	return b
}

// makeRoom drops budgets from the full table, when it is worth a sweep,
// and reports whether the table has room now; s.mu is held. A sweep costs
// a walk of the table: it is made when it frees an eighth of the table
// (budgets that are full, counted from notFull), or once idle budgets may
// (see sweep), and at most once a second for the latter.
func (s *budgetSet) makeRoom() bool {
	if now := s.now(); s.worthSweep(now) {
		s.sweep(now)
	}
	return s.m.len() < maxBudgets
}

// worthSweep reports whether makeRoom sweeps the full table at now (see
// there); s.mu is held.
func (s *budgetSet) worthSweep(now int64) bool {
	notFull := s.notFull.Load()
	if s.overflow.tokens.Load() < s.burst {
		notFull--
	}
	full := int64(s.m.len()-s.aliases-s.hedged) - notFull
	return 8*full >= maxBudgets || now >= s.idleAt
}

// droppable reports whether a sweep drops b, a budget of the table not
// dropped yet, last used age (coarse time) before the sweep (see sweep),
// and whether b is full (or shared).
func (s *budgetSet) droppable(b *hostBudget, age int64) (drop, full bool) {
	full = b.shared != nil || b.tokens.Load() == s.burst
	drop = full && b.hedgeTokens.Load() >= hedgeBurst*budgetUnit || age > int64(budgetIdle/time.Second)
	return drop, full
}

// overflows reports whether the budget of a host the table does not hold
// is the overflow budget now: the table is full, and makeRoom would find no
// room in it (see HostState). It changes nothing; it takes s.mu while the
// table is full, and walks it when a sweep would run.
func (s *budgetSet) overflows() bool {
	if s.m.len() < maxBudgets {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.m.len() < maxBudgets || !s.worthSweep(now) {
		return s.m.len() >= maxBudgets
	}
	room := false
	s.m.each(func(k breakerKey, b *hostBudget) {
		if !room && k == b.node.key && b.tokens.Load()&budgetDropped == 0 {
			room, _ = s.droppable(b, now-b.used.Load())
		}
	})
	return !room
}

// sweep drops from the table the budgets that are full, those shared
// through a store (handles that the store keeps) and those not used for
// more than budgetIdle, with their aliases, and sets idleAt to the time
// when an eighth of the table will have been idle that long if not used
// again (at least a second from now); s.mu is held. A budget whose hedge
// allowance is not full is no new one either: it is kept unless idle, so
// that its host does not come back with the whole allowance (see
// takeHedge), which only its calls refill.
func (s *budgetSet) sweep(now int64) {
	idle := int64(budgetIdle / time.Second)
	var ages [budgetIdle/time.Second + 1]int // kept budgets not full, by coarse age
	s.hedged = 0
	s.m.each(func(k breakerKey, b *hostBudget) {
		if k != b.node.key || b.tokens.Load()&budgetDropped != 0 {
			return // an alias, or dropped already
		}
		age := now - b.used.Load()
		drop, full := s.droppable(b, age)
		if drop {
			s.drop(b)
			return
		}
		if full {
			s.hedged++
		}
		ages[max(age, 0)]++
	})
	s.m.filter(func(k breakerKey, b *hostBudget) bool {
		if b.tokens.Load()&budgetDropped == 0 {
			return true
		}
		if k != b.node.key {
			s.aliases--
		}
		return false
	})
	s.idleAt = now + idle + 1
	n := 0
	for age := idle; age > 0; age-- {
		if n += ages[age]; 8*n >= maxBudgets {
			s.idleAt = now - age + idle + 1
			break
		}
	}
}

// drop marks b dropped from the table (budgetDropped), and counts it no
// more in notFull.
func (s *budgetSet) drop(b *hostBudget) {
	for {
		t := b.tokens.Load()
		if t&budgetDropped != 0 {
			return
		}
		if b.tokens.CompareAndSwap(t, t|budgetDropped) {
			if t < s.burst {
				s.notFull.Add(-1)
			}
			return
		}
	}
}

// deposit credits an answer of the host.
func (s *budgetSet) deposit(b *hostBudget) {
	if b == nil {
		return
	}
	if b.shared != nil {
		s.depositShared(b)
		return
	}
	if v, ok := addTokens(&b.tokens, s.ratio, s.burst); ok {
		s.use(b)
		if v == s.burst { // filled, and not dropped
			s.notFull.Add(-1)
		}
	}
}

// withdraw spends a retry's cost, throttled when the server asked for the
// retry, and reports whether the budget held it.
func (s *budgetSet) withdraw(b *hostBudget, throttled bool) bool {
	if b.shared != nil {
		return s.withdrawShared(b, throttled)
	}
	cost := int64(budgetUnit)
	if throttled {
		cost = s.throttled
	}
	s.use(b)
	before, ok := takeTokens(&b.tokens, cost)
	if ok && before == s.burst { // full, and not dropped
		s.notFull.Add(1)
	}
	return ok
}

// refund gives back the cost of one retry that withdraw took (unthrottled)
// for a hedged copy that was never sent.
func (s *budgetSet) refund(b *hostBudget) { s.giveBack(b, false) }

// giveBack gives back what withdraw took, throttled or not, for a retry
// that was never sent.
func (s *budgetSet) giveBack(b *hostBudget, throttled bool) {
	if b.shared != nil {
		s.giveBackShared(b, throttled)
		return
	}
	cost := int64(budgetUnit)
	if throttled {
		cost = s.throttled
	}
	if v, ok := addTokens(&b.tokens, cost, s.burst); ok && v == s.burst {
		s.notFull.Add(-1)
	}
}

// addTokens adds add to the balance a, up to limit, without a lock, and
// returns the new balance; a budgetDropped mark is kept. It reports
// whether it changed the balance (a full one takes no write).
func addTokens(a *atomic.Int64, add, limit int64) (v int64, changed bool) {
	for {
		t := a.Load()
		if t&^budgetDropped >= limit {
			return t, false
		}
		v := min(t&^budgetDropped+add, limit) | t&budgetDropped
		if a.CompareAndSwap(t, v) {
			return v, true
		}
	}
}

// takeTokens takes cost from the balance a when it holds that much,
// without a lock, and returns the balance before; a budgetDropped mark is
// kept.
func takeTokens(a *atomic.Int64, cost int64) (before int64, ok bool) {
	for {
		t := a.Load()
		if t&^budgetDropped < cost {
			return t, false
		}
		if a.CompareAndSwap(t, t-cost) {
			return t, true
		}
	}
}
