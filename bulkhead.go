package resilient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// WithMaxInFlight limits the attempts in flight to one host at once to n
// (a bulkhead): a host that slows down cannot take every connection and
// goroutine of the process, and a burst of calls reaches it n at a time.
// Zero, the default, means no limit, and no layer in the chain at all. It
// panics if n is negative. It applies per Transport: WithCallOptions
// rejects it.
//
// The host is the breaker's key (see BreakerSettings.Key):
// scheme://host:port by default, whatever the case of the host or whether
// the default port is spelled; a request for which Key returns "" has no
// limit. The breakers need not be on.
//
// An attempt holds a slot from when it is about to be sent, after the rate
// limiter let it through, until the base RoundTripper returns (its
// response headers, or its error) and the Transport has read what it reads
// of the response within the attempt: the envelope of an error response
// (see WithMaxPeek: at most 2s of a body that stalls) and, with
// WithBufferedResponse, the body of a success. It never holds one while
// the caller reads the response body: a caller may keep any number of
// responses open.
// The wait before a retry (backoff, Retry-After) and the rate limiter's
// waits hold no slot. Every slot is released exactly once on every path,
// a panic in the base RoundTripper included. The breakers' state changes
// that an attempt makes are told (WithBreakerObserver, WithLogger) once
// it has given its slot back: an observer may call the host.
//
// An attempt that finds its host full waits for a slot, first come first
// served, no longer than its deadline: the earliest of its attempt timeout
// (WithAttemptTimeout), the end of the call's budget (WithMaxElapsed) and
// the context's deadline (for the retry of a write that needs time to be
// answered, that much earlier: see WithKeyHonoringHosts). Once it has its
// slot, its attempt timeout starts again, as after the rate limiter's
// wait: the server gets the whole of it to answer, and a wait behind the
// host's other callers is not taken for the host's slowness (its breaker
// would count the timeout as a failure, and open for a healthy host); the
// budget and the context's deadline still bound the attempt, the wait
// included, and a cut by the budget of an attempt that waited at least
// as long as it then had on the wire is not counted by its breaker either,
// while the host answered the last attempt its breaker counted (a cut by
// the context's deadline never is). A context canceled ends the wait
// with the context's error, and so does the request's deprecated Cancel
// channel once closed. An attempt still waiting at its deadline, or whose
// deadline has passed when it would start waiting, fails with an error wrapping ErrTooManyInFlight, naming the host
// and the limit. That refusal is local, as one of the breaker: nothing was
// sent, the breaker does not count it, it spends no retry budget and is not
// retried (a call whose retry is refused returns the response of its
// previous attempt, if it had one; a Classifier that retries it all the
// same pays for the retries it so makes, but the last, refused as the call
// ends, so that one that retries every error cannot spin on refusals), and the Attempt, the Report and the
// log record say so with OutcomeTooManyInFlight. The wait, refused or not,
// is time the call spent waiting, reported as the rate limiter's wait is:
// in Attempt.SlotWait (Attempt.LocalWait is the rate limiter's), in
// Attempt.Duration, and in Report.Waited.
//
// With a rate limit (WithRateLimit, or a pace learned from the server),
// an attempt takes its token of the pace before it waits for a slot. One
// refused at the end of that wait, or whose caller gives up during it,
// gives the token back only when the bucket kept room for it all the
// while; otherwise the bucket's cap absorbed it meanwhile, and given back
// it was one request more than the pace allows. One given a slot is sent
// on that token: after a slow spell that held every slot, the calls queued
// behind it may reach the host faster than the pace (a known limit: taking
// a fresh token with the slot, without holding the slot for a turn,
// starved queued callers under steady contention).
//
// A slot is given back once the rate limiter has learned what its
// attempt's response says (a 429's Retry-After, a quota spent), so that
// an attempt queued for it is not sent into the pause the response
// announced: one given a slot while its host is paused, or the quota it
// shares spent (none left until its reset), passes the slot on and waits
// for the pause or the reset as an attempt that came after it does
// (refused past WithMaxRetryAfter or its deadline), then for a slot again:
// its waits for the host's pauses and quotas are bounded by
// WithMaxRetryAfter in all, and its waits for a slot by its attempt
// timeout in all, however often that happens.
//
// A hedged copy (see WithHedging) takes a slot like any attempt, but never
// waits for one: a copy that finds no free slot is not sent, and gives back
// the hedge allowance, the retry budget and the turn of the rate limiter's
// pace it took.
//
// Hosts are kept in a table of at most 4096 keys (a host spelled two ways
// takes two); a host with nothing in flight and nothing waiting leaves it
// to make room for a new one. When every host the table holds has attempts
// in flight or waiting, an attempt to a host it does not hold goes without
// a limit, until one of them is idle again.
//
// On a success, an attempt takes its slot and gives it back with an atomic
// operation each, without a lock or an allocation; a lock is taken only
// when the host is full.
func WithMaxInFlight(n int) Option {
	mustNotBeNegative("WithMaxInFlight", n)
	return func(c *config) {
		perTransport(c, "WithMaxInFlight")
		c.maxInFlight = n
	}
}

// maxBulkheadKeys bounds the table of a bulkhead, aliases included.
const maxBulkheadKeys = 4096

// The layout of hostSlots.state: the attempts in flight in the low 32
// bits, the attempts waiting in the next 31, and slotsGone.
const (
	slotsMask  = 1<<32 - 1 // the attempts in flight
	waiterUnit = 1 << 32   // one attempt waiting
	slotsGone  = 1 << 63   // the host left the table: look it up again
	maxSlots   = 1<<31 - 1 // the largest limit held: a larger one never binds
)

// errSlotsGone tells acquire that the host it waited on left the table
// before it could wait: it looks the host up again.
var errSlotsGone = errors.New("resilient: host left the bulkhead")

// errSlotPaused tells the rate limiter above that the host of an attempt
// was paused (a 429's Retry-After, or the fleet's pause) while the attempt
// waited for a slot of it: the attempt passed the slot on, and waits for
// the pause there, as the attempts that came after the pause do. It never
// leaves the chain.
var errSlotPaused = errors.New("resilient: the host was paused while the attempt waited for a slot")

// bulkhead is the per-host limit of attempts in flight of one Transport:
// a bounded table of hosts. It is safe for concurrent use.
//
// Looking a host up takes no lock (a hostTable). Inserts, removals and the
// list that orders the hosts for eviction are guarded by mu.
type bulkhead struct {
	limit uint64
	keyFn func(*http.Request) string // BreakerSettings.Key
	rl    *rateLimiter               // the rate limiter above, whose pauses hold a queued attempt; nil for none
	max   int                        // the most keys the table holds: maxBulkheadKeys but in tests

	mu    sync.Mutex
	table hostTable[breakerKey, hostSlots] // aliases included; written under mu
	lru   list[hostSlots, *hostSlots]      // the hosts held, the newest or last found busy first
}

// hostSlots is one host's slots: its attempts in flight, and the queue of
// those waiting for a slot.
//
// state is read and written with atomic operations, so that an attempt
// that finds a free slot, and one that gives its slot back while nobody
// waits, takes no lock. A waiter counts itself in state and joins the
// queue under mu, and gives a slot back under mu: a slot given back while
// anyone waits goes to the first waiter, the count of attempts in flight
// unchanged, so that an attempt that comes later cannot overtake the
// queue. slotsGone is set, from zero only, when the host leaves the table.
type hostSlots struct {
	state atomic.Uint64

	mu      sync.Mutex // guards the queue
	waiters list[slotWaiter, *slotWaiter]

	node tableNode[breakerKey, hostSlots] // holds it in the table under its canonical key

	// Guarded by bulkhead.mu.
	listNode[hostSlots]
	aliases []breakerKey // its other keys in the table
}

func (s *hostSlots) links() *listNode[hostSlots] { return &s.listNode }

// slotWaiter is an attempt waiting for a slot of a host.
type slotWaiter struct {
	listNode[slotWaiter]
	ready   chan struct{} // closed when a slot is handed to it
	granted bool          // a slot was handed to it; guarded by hostSlots.mu
}

func (w *slotWaiter) links() *listNode[slotWaiter] { return &w.listNode }

func newBulkhead(n int, keyFn func(*http.Request) string) *bulkhead {
	b := &bulkhead{limit: uint64(min(n, maxSlots)), keyFn: keyFn, max: maxBulkheadKeys}
	b.table.init()
	return b
}

// bulkheadMiddleware returns the per-host limit of attempts in flight of
// the chain, or nil when there is none.
func (t *Transport) bulkheadMiddleware() Middleware {
	if t.cfg.maxInFlight == 0 {
		return nil
	}
	b := newBulkhead(t.cfg.maxInFlight, t.cfg.breaker.Key)
	b.rl = t.rl    // made by now (New makes the middlewares in order)
	t.bulkhead = b // for hedging
	return func(next http.RoundTripper) http.RoundTripper {
		// The breakers' middleware is made by now (New makes every
		// middleware before Chain wraps them).
		return &bulkheadTransport{next: hopTo(next), b: b, breakers: t.breakers}
	}
}

// bulkheadTransport holds a slot of the host of each attempt while the
// layers below send it, and delivers the state changes of the breakers
// below it once the slot is given back.
type bulkheadTransport struct {
	next     hop
	b        *bulkhead
	breakers *breakerSet // nil without breakers
}

func (m *bulkheadTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return m.roundTripAttempt(req, nil)
}

func (m *bulkheadTransport) roundTripAttempt(req *http.Request, st *attemptState) (*http.Response, error) {
	s, err := m.b.acquire(req, st)
	if err == errSlotPaused {
		return nil, err // sent again by the rate limiter, the body too
	}
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	returned := false
	if m.breakers != nil {
		defer m.flushPanicking(req.Context(), &returned) // open-coded: a flag per attempt, no allocation
	}
	resp, err := m.send(s, req, st)
	returned = true
	if m.breakers != nil && m.breakers.pending.Load() && (st == nil || st.slot == nil) {
		// The breakers' state changes, which they leave to this layer
		// (see breakerSet.deliverAbove), once the slot is given back (by
		// the rate limiter, which delivers them then, when the slot was
		// handed over to it: see attemptState.keepsSlot).
		m.breakers.flushClosing(req.Context(), resp)
	}
	return resp, err
}

// flushPanicking delivers the breakers' state changes when the layers
// below panicked (returned is false), once the slot is given back, as the
// breakers' layer does on that path without this one: the change to
// half-open that the attempt's breaker made before its base panicked is
// told with the panic, not left for a later attempt to deliver. The panic
// goes on.
func (m *bulkheadTransport) flushPanicking(ctx context.Context, returned *bool) {
	if !*returned && m.breakers.pending.Load() {
		m.breakers.flush(ctx)
	}
}

// send sends req through the layers below, holding slot s (nil for none)
// until they return or panic; when they return a response and the rate
// limiter above asks for it (see attemptState.keepsSlot), s is handed
// over to it in st.slot instead.
func (m *bulkheadTransport) send(s *hostSlots, req *http.Request, st *attemptState) (*http.Response, error) {
	if s == nil {
		return m.next.roundTrip(req, st) // no limit for this request
	}
	kept := false
	defer func() {
		if !kept {
			s.release()
		}
	}()
	resp, err := m.next.roundTrip(req, st)
	if resp != nil && st != nil && st.keepsSlot {
		st.slot, kept = s, true
	}
	return resp, err
}

// acquire takes a slot of the host of req, attempt st (nil for none),
// waiting for one as WithMaxInFlight says. It returns nil and no error
// for a request without a limit.
func (b *bulkhead) acquire(req *http.Request, st *attemptState) (*hostSlots, error) {
	k, ok := requestKey(b.keyFn, req)
	if !ok {
		return nil, nil
	}
	var w0 time.Time // when the attempt started waiting for a slot
	var left float64 // the tokens of its pace then, when it holds one (see partition.giveBackStale)
	var gen uint64   // the generation of that pace's rate then
	for {
		s := b.slots(k)
		if s == nil {
			return nil, nil // the table holds only busy hosts
		}
		if s.tryAcquire(b.limit) {
			return s, nil
		}
		if s.gone() {
			continue
		}
		if st != nil && st.hedge > 0 {
			return nil, fmt.Errorf("%w: %s: %d in flight; a hedged copy does not wait", ErrTooManyInFlight, breakerName(k, b.keyFn != nil), b.limit)
		}
		if w0.IsZero() {
			w0 = time.Now()
			if st != nil && st.paceTok != nil {
				left, gen = st.pace.tokensLeft(w0)
			}
		}
		queued, err := s.wait(req.Context(), cancelOf(req), b.limit, slotDeadline(req, st), k, b.keyFn != nil)
		if err == errSlotsGone {
			continue
		}
		now := time.Now()
		waited := now.Sub(w0)
		if st != nil {
			// Time the call spent waiting, as the rate limiter's wait
			// is (Attempt.SlotWait, Report.Waited), a refused wait
			// included.
			st.slotWait += waited
		}
		if queued && st != nil && st.paceTok != nil && err != nil {
			// Refused after a wait, or its caller gave up: the token of
			// the pace taken before it, never sent on, is given back
			// only while it is still worth one (see
			// partition.giveBackStale), not by the rate limiter.
			st.pace.giveBackStale(st.paceTok, left, gen, w0, now)
			st.paceTok = nil
		}
		if err != nil {
			return nil, err
		}
		if st != nil && !st.start.IsZero() {
			// The attempt starts once it has its slot, as after the rate
			// limiter's wait: its timeout is the server's to spend, and a
			// wait behind the host's other callers is not taken for the
			// host's slowness.
			st.start = st.start.Add(waited)
		}
		if st != nil && b.rl != nil && b.pausedMeanwhile(req, s) {
			// The host was paused while the attempt found it full
			// (another attempt's 429), or its quota spent (a response
			// with none left), whether it queued or the slot came free
			// as it was about to: it is not sent into the pause, which
			// holds every attempt of its quota, but goes back to the
			// rate limiter. The token of the pace it took is spent, as
			// every token is once a pause holds the partition.
			st.paceTok = nil
			if !st.gated.IsZero() {
				// The wait for the slot is not one of the server's
				// limits: the rate limiter bounds the attempt's waits
				// for them, before and after it, in all.
				st.gated = st.gated.Add(waited)
			}
			return nil, errSlotPaused
		}
		return s, nil
	}
}

// pausedMeanwhile reports whether the rate limiter would hold req, which
// waited for slot s, for its partition's pause; it passes s on when it
// does, and when the caller's key function panics.
func (b *bulkhead) pausedMeanwhile(req *http.Request, s *hostSlots) (paused bool) {
	held := true
	defer func() {
		if held {
			s.release()
		}
	}()
	paused = b.rl.holdsPaused(req)
	held = paused
	return paused
}

// slotDeadline returns when attempt st of req stops waiting for a slot:
// the earliest of its attempt timeout, the call's budget and the context's
// deadline, the latter two less what the attempt needs (see
// attemptState.latestStart); zero for none. The attempt timeout bounds the attempt's waits
// for a slot together: one that waits again after it passed a slot on for
// a pause (see errSlotPaused) has what its earlier waits left of it.
func slotDeadline(req *http.Request, st *attemptState) time.Time {
	if st == nil {
		end, _ := req.Context().Deadline()
		return end
	}
	end := st.latestStart()
	if st.callCfg != nil && st.callCfg.attemptTimeout > 0 {
		// The attempt's deadline as the deadline middleware sets it, less
		// the slot waits the attempt's start was moved on by (none but
		// before a pause): without that, each wait after a pause would
		// get the whole timeout anew, and the attempt wait for slots
		// longer than it in all.
		if e := attemptClock(st).Add(st.callCfg.attemptTimeout - st.slotWait); end.IsZero() || e.Before(end) {
			end = e
		}
	}
	return end
}

// full reports whether the host of req has no slot free, or attempts
// waiting for one. It creates nothing and takes no lock.
func (b *bulkhead) full(req *http.Request) bool {
	k, ok := requestKey(b.keyFn, req)
	if !ok {
		return false
	}
	s := b.table.load(k.bounded())
	if s == nil {
		return false
	}
	v := s.state.Load()
	return v&slotsGone == 0 && (v>>32 != 0 || v&slotsMask >= b.limit)
}

// slots returns the slots of the host of k, adding it to the table when
// needed, or nil when the table is full of hosts that are not idle.
func (b *bulkhead) slots(k breakerKey) *hostSlots {
	h := b.table.hashOf(k)
	if s := b.table.find(k, h); s != nil && !s.gone() {
		return s
	}
	return b.insert(k, h)
}

// len returns the number of keys the table holds, aliases included.
func (b *bulkhead) len() int {
	return b.table.len()
}

// insert returns the slots of k, whose hash is h, making them unless
// another goroutine did, or adding k as an alias of its canonical key's;
// nil when there is no room.
func (b *bulkhead) insert(k breakerKey, h uint64) *hostSlots {
	b.mu.Lock()
	defer b.mu.Unlock()
	if kb := k.bounded(); kb != k {
		k, h = kb, b.table.hashOf(kb)
	}
	if s := b.table.find(k, h); s != nil {
		return s // (hosts leave the table under mu: not gone)
	}
	ck, ch := k, h
	if b.keyFn == nil {
		// A URL's host, one without a scheme too (see breakerName),
		// the default port of the scheme lower-cased.
		ck.scheme, ck.host = canonicalName(k.scheme, k.host)
		if ck != k {
			ch = b.table.hashOf(ck)
		}
	}
	var s *hostSlots
	need := 1
	if ck != k {
		if s = b.table.find(ck, ch); s == nil {
			need = 2
		}
	}
	if b.table.len()+need > b.max {
		b.makeRoom(need, s)
	}
	if b.table.len()+need > b.max {
		// Every host held is busy. The canonical key's slots serve
		// the alias too, found under the lock until there is room.
		return s
	}
	if s == nil {
		s = new(hostSlots)
		b.table.insert(ck.clone(), ch, s, &s.node)
		b.lru.pushFront(s)
	}
	if ck != k {
		k = k.clone()
		b.table.insert(k, h, s, nil)
		s.aliases = append(s.aliases, k)
	}
	return s
}

// makeRoom removes idle hosts (nothing in flight, nothing waiting), the
// oldest first, until need more keys fit in the table, keep excepted;
// b.mu is held. A busy host met on the way moves to the front. It looks at
// each host once at most.
func (b *bulkhead) makeRoom(need int, keep *hostSlots) {
	for n := b.table.len(); n > 0 && b.lru.tail != nil && b.table.len()+need > b.max; n-- {
		s := b.lru.tail
		b.lru.remove(s)
		if s != keep && s.state.CompareAndSwap(0, slotsGone) {
			b.table.deleteNode(&s.node)
			for _, a := range s.aliases {
				b.table.delete(a)
			}
			continue
		}
		b.lru.pushFront(s)
	}
}

// gone reports whether s left its table.
func (s *hostSlots) gone() bool {
	return s.state.Load()&slotsGone != 0
}

// tryAcquire takes a slot when one is free and nobody waits, and reports
// whether it did. It takes no lock.
func (s *hostSlots) tryAcquire(limit uint64) bool {
	for {
		v := s.state.Load()
		if v>>32 != 0 || v&slotsMask >= limit {
			return false // waiters (or gone), or full
		}
		if s.state.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// release gives a slot back: to the first waiter when there is one, else
// to the host, without a lock.
func (s *hostSlots) release() {
	for {
		v := s.state.Load()
		if v>>32 != 0 {
			break
		}
		if s.state.CompareAndSwap(v, v-1) {
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.waiters.head; w != nil {
		// The slot goes to w: it leaves the queue, and the count of
		// attempts in flight stays.
		s.waiters.remove(w)
		w.granted = true
		s.state.Add(^uint64(waiterUnit - 1))
		close(w.ready)
		return
	}
	s.state.Add(^uint64(0)) // the waiters left meanwhile
}

// wait waits for a slot of s, the host of k, until end (zero for none),
// until ctx is done or until cancel (the request's deprecated Cancel
// channel, nil for none) is closed. A wait whose end has passed is not
// started. It returns errSlotsGone when s left the table before the wait
// started. queued reports whether the attempt joined the queue (a slot
// freed meanwhile is taken without). custom says that k is a custom key
// (see breakerName), for the errors that name it.
func (s *hostSlots) wait(ctx context.Context, cancel <-chan struct{}, limit uint64, end time.Time, k breakerKey, custom bool) (queued bool, err error) {
	now := time.Now()
	if !end.IsZero() && !end.After(now) {
		return false, fmt.Errorf("%w: %s: %d in flight, and the attempt's deadline has passed", ErrTooManyInFlight, breakerName(k, custom), limit)
	}
	s.mu.Lock()
	for {
		v := s.state.Load()
		if v&slotsGone != 0 {
			s.mu.Unlock()
			return false, errSlotsGone
		}
		if v>>32 == 0 && v&slotsMask < limit {
			if s.state.CompareAndSwap(v, v+1) {
				s.mu.Unlock()
				return false, nil // freed meanwhile
			}
			continue
		}
		if s.state.CompareAndSwap(v, v+waiterUnit) {
			break
		}
	}
	w := &slotWaiter{ready: make(chan struct{})}
	s.waiters.pushBack(w)
	s.mu.Unlock()

	var timeout <-chan time.Time
	if !end.IsZero() {
		timer := time.NewTimer(end.Sub(now))
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-w.ready:
		return true, nil
	case <-timeout:
	case <-cancel:
		err = fmt.Errorf("resilient: waiting for a slot of %s: %w", breakerName(k, custom), errRequestCanceled)
	case <-ctx.Done():
		if !(errors.Is(ctx.Err(), context.DeadlineExceeded) && !end.IsZero() && !time.Now().Before(end)) {
			// Canceled; a context that ends at its deadline, which
			// is the wait's end, ends it as the timer does.
			err = fmt.Errorf("resilient: waiting for a slot of %s: %w", breakerName(k, custom), context.Cause(ctx))
		}
	}
	if err == nil {
		err = fmt.Errorf("%w: %s: %d in flight, none free within %v", ErrTooManyInFlight, breakerName(k, custom), limit, end.Sub(now))
	}
	if !s.leave(w) {
		s.release() // handed over as the wait ended: passed on
	}
	return true, err
}

// leave takes w out of the queue, and reports whether it did: false when
// a slot was handed to w first.
func (s *hostSlots) leave(w *slotWaiter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted {
		return false
	}
	s.waiters.remove(w)
	s.state.Add(^uint64(waiterUnit - 1))
	return true
}
