package resilient

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilient/internal/redact"
	"github.com/sony/gobreaker/v2"
)

// breakerKey identifies a breaker in a breakerSet: the URL's scheme and
// host as the request has them, so that looking a breaker up builds no
// string (a URL without a scheme, "//host/path", has an empty one, as a
// custom key: see bounded; it is still a URL's host, which breakerName
// and hostMatcher tell from a custom key by the Key function's presence);
// or, with a custom Key function, the key, with an empty scheme.
// Default keys that differ only in case or in an explicit default port are
// aliases of the breaker stored under the canonical one.
type breakerKey struct{ scheme, host string }

// breakerEntry is one breaker of a set. Its fields are laid out for the
// cache: what a lookup and an eviction read first, then what an attempt
// through a closed breaker reads, the pointers before the counts.
type breakerEntry struct {
	// node holds the breaker under its canonical key (node.key) in the
	// set's table.
	node tableNode[breakerKey, breakerEntry]

	// used is set by the attempts and cleared by the set's evictions and
	// idle passes, which then record their time in lastSeen: a clock
	// approximation of the time of the last attempt, which costs an
	// attempt no clock read and no write but the first.
	used atomic.Bool

	// A mirror of the breaker's state, written by its OnStateChange and
	// read without its lock.
	state atomic.Int32

	// removed is set when the breaker leaves the set, before its keys
	// leave the table: the set's last may still hold it for a moment.
	removed atomic.Bool

	// reset is set by ResetHost before it removes the breaker (see
	// breakerSet.rehome).
	reset atomic.Bool

	// Guarded by the set's mu.
	list *entryList // the list that holds it; nil once removed
	listNode[breakerEntry]
	aliases  *[]breakerKey // the other keys of the same breaker; nil for none
	lastSeen int64         // the creation or the last pass that found it used
	opening  chan struct{} // closed when it opens or leaves the set (see breakerSet.opened); nil when none waits

	// win is the window of the breaker's current closed spell, nil while
	// it is open or half-open: an attempt that finds a window goes through
	// without a lock and without gobreaker (see closedWindow).
	win atomic.Pointer[closedWindow]

	// m is the breaker's state machine, made by breakerSet.machine when
	// a failure trips it: a breaker that never tripped needs none.
	m atomic.Pointer[breakerMachine]

	win0 closedWindow // the first closed spell's window
}

// breakerMachine is the state machine of a breaker that has tripped, and
// what goes with it: the breaker of every host called is kept, and most
// never trip.
type breakerMachine struct {
	cb   *gobreaker.TwoStepCircuitBreaker[struct{}]
	name string // breakerName of its key

	// openedAt mirrors the time it last opened, written by its
	// OnStateChange and read without its lock, in nanoseconds since the
	// set's epoch.
	openedAt atomic.Int64

	// The probes let through while half-open and not yet answered.
	pmu    sync.Mutex
	probes []*probe

	// told is the state the observers and the logger were last told of
	// (closed before the first change); guarded by the set's qmu.
	told gobreaker.State
}

// breakerSet is the bounded set of breakers of a Transport, and the queue of
// their state changes waiting to be delivered.
//
// Looking a breaker up takes no lock (a hostTable). Inserts, removals and
// the two lists that order the breakers for eviction are guarded by mu:
// closed breakers in one, open and half-open ones in the other, each the
// most recently seen first. Recency is kept without a write per attempt:
// an attempt sets its breaker's used flag, and a pass that meets a used
// breaker at the back of its list moves it to the front (a second chance),
// so every eviction is amortized O(1).
type breakerSet struct {
	settings     gobreaker.Settings
	keyFn        func(*http.Request) string
	isFailure    func(*http.Response, *APIError, error, bool) bool // BreakerSettings.IsFailure
	timeout      time.Duration                                     // OpenTimeout
	probeTimeout time.Duration                                     // ProbeTimeout
	idleAfter    time.Duration                                     // Window + OpenTimeout
	period       int64                                             // the bucket period of the windows, in nanoseconds
	max          int                                               // the hard limit: maxBreakers but in tests
	epoch        time.Time

	// The trip rule (see BreakerSettings).
	consecutive uint64
	minRequests uint64
	ratio       float64

	// last is a breaker a lookup found, kept until it is removed, so
	// that a client that calls one host finds its breaker without hashing
	// its key. It is written only when it is empty (and when its breaker
	// is removed): lookups of many hosts do not all write it.
	last atomic.Pointer[breakerEntry]

	// everOpened says that a breaker of the set has opened, once at least:
	// until then, an attempt that a QuotaStore paces does not look its
	// breaker up before it takes a token (see rateLimiter.acquire), so
	// that a Transport whose breakers never opened pays nothing for it.
	everOpened atomic.Bool

	mu           sync.Mutex
	table        hostTable[breakerKey, breakerEntry] // aliases included; written under mu
	closed, open entryList
	lastSweep    int64
	// opening is closed when any breaker opens, for the attempts that
	// wait for their turn of the rate limiter's pace to a host the set
	// holds no breaker of yet (see opened); nil when none waits. Guarded
	// by mu.
	opening chan struct{}

	observers []func(BreakerChange)
	logger    *slog.Logger

	// deliverAbove says that the limit of attempts in flight
	// (WithMaxInFlight) is above the breakers in the chain: the breakers'
	// layer then leaves the changes queued, and that layer delivers them
	// once the attempt has given its slot back, so that an observer (or a
	// logger's handler) that calls the host through the Transport does not
	// wait for the slot of the attempt that tells it.
	deliverAbove bool

	// State changes are queued by OnStateChange, which gobreaker calls
	// under its lock, and delivered by flush once that lock is released.
	qmu        sync.Mutex
	queue      []BreakerChange
	pending    atomic.Bool // queue is not empty
	delivering atomic.Bool // a goroutine is delivering changes
}

// maxBreakerDuration is the longest Window, OpenTimeout and ProbeTimeout
// hold: a longer one (math.MaxInt64, as "for ever" is sometimes written)
// counts as it, so that the sum of two, and a time that far from now, stay
// within time.Duration and time.Time.
const maxBreakerDuration = 100 * 365 * 24 * time.Hour

func newBreakerSet(bs BreakerSettings, observers []func(BreakerChange), logger *slog.Logger) *breakerSet {
	if bs.FailureRatio == 0 {
		bs.FailureRatio = defaultBreakerFailureRatio
	}
	if bs.MinRequests == 0 {
		bs.MinRequests = defaultBreakerMinRequests
	}
	if bs.Window == 0 {
		bs.Window = defaultBreakerWindow
	}
	if bs.OpenTimeout == 0 {
		bs.OpenTimeout = defaultBreakerOpenTimeout
	}
	if bs.HalfOpenRequests == 0 {
		bs.HalfOpenRequests = defaultBreakerHalfOpenRequests
	}
	if bs.ProbeTimeout == 0 {
		bs.ProbeTimeout = bs.OpenTimeout
	}
	bs.Window = min(bs.Window, maxBreakerDuration)
	bs.OpenTimeout = min(bs.OpenTimeout, maxBreakerDuration)
	bs.ProbeTimeout = min(bs.ProbeTimeout, maxBreakerDuration)
	period := max(bs.Window/breakerBuckets, 1)
	// gobreaker half-opens once its expiry is before now, so a breaker
	// would still refuse at the instant OpenTimeout ends; a nanosecond
	// less makes it stay open for OpenTimeout exactly (gobreaker takes a
	// zero Timeout for its 60s default, so 1ns stays as it is).
	gbTimeout := bs.OpenTimeout
	if gbTimeout > 1 {
		gbTimeout--
	}
	s := &breakerSet{
		settings: gobreaker.Settings{
			MaxRequests:  uint32(min(uint64(bs.HalfOpenRequests), math.MaxUint32)),
			Interval:     bs.Window,
			BucketPeriod: period,
			Timeout:      gbTimeout,
			IsSuccessful: func(err error) bool { return err == nil },
			IsExcluded:   func(err error) bool { return err == errBreakerExcluded || err == errBreakerThrottled },
		},
		keyFn:        bs.Key,
		isFailure:    bs.IsFailure,
		timeout:      bs.OpenTimeout,
		probeTimeout: bs.ProbeTimeout,
		idleAfter:    bs.Window + bs.OpenTimeout,
		period:       int64(period),
		max:          maxBreakers,
		epoch:        time.Now(),
		consecutive:  uint64(bs.ConsecutiveFailures),
		minRequests:  uint64(bs.MinRequests),
		ratio:        bs.FailureRatio,
		observers:    observers,
		logger:       logger,
	}
	s.table.init()
	return s
}

// tripped reports whether the counts of w at age now trip its breaker.
func (s *breakerSet) tripped(w *closedWindow, now uint64) bool {
	successes, failures, consecutive := w.counts(now)
	if s.consecutive > 0 && consecutive >= s.consecutive {
		return true
	}
	n := successes + failures
	// The share itself, not ratio×n: 0.07×100 is 7.000000000000001, and
	// 7 failures of 100 would not trip a ratio of 0.07.
	if n < s.minRequests || float64(failures)/float64(n) < s.ratio {
		return false
	}
	// Nor while the attempts in flight since an earlier bucket, were they
	// all to succeed, would keep the share under the ratio (see
	// closedWindow.inFlightWord): a host whose successes are slow and whose
	// failures are quick is judged on its answers, not on its quickest.
	p := float64(w.pending(now))
	if sf := w.slowFailures.Load(); sf > 0 && p > 0 {
		// Attempts of the spell were cut by their attempt timeout, or
		// failed slowly: those in flight are outcomes to come that may
		// succeed in the share of the host's answers that were
		// successes. A host that never answers, none, and it trips as
		// its first attempts time out, whatever its Window
		// (TestBreakerDeadHostTripsAtTimeoutsShortOfTwoTenths); a
		// healthy host that hangs one attempt in 200, nearly all,
		// however long the hang took to be cut
		// (TestBreakerRareHangKeepsHealthyHostClosed,
		// TestBreakerRareSlowFailureKeepsHealthyHostClosed).
		p *= float64(successes) / float64(successes+uint64(sf))
	}
	return p == 0 || float64(failures)/(float64(n)+p) >= s.ratio
}

// readyToTrip is e's gobreaker ReadyToTrip: gobreaker's own counts of a
// closed breaker hold only the failure that trips it, the window holds the
// rest.
func (s *breakerSet) readyToTrip(e *breakerEntry) bool {
	w := e.win.Load()
	return w != nil && s.tripped(w, w.age(s.now()))
}

// failure counts a failure, of an attempt that started at start
// (breakerSet.clock), at age, in the window w of e, and trips e through
// gobreaker when the window says so. A failure after two tenths of Window
// or more in flight (two bucket periods, not two bucket boundaries: a 4s
// failure of a 30s window is no slow one), or cut by its attempt timeout
// (timedOut, see attemptTimedOut) however short, is counted in
// closedWindow.slowFailures: the attempts in flight then weigh by the
// host's share of successes (see tripped), so that a host that never
// answers trips as its first attempts time out, whatever its Window (a
// 10s attempt timeout is no slow failure of a 100s window by its length
// alone), and one that hangs a rare attempt keeps the weight of its slow
// successes in flight, however long its hang took to be cut.
func (s *breakerSet) failure(e *breakerEntry, w *closedWindow, age uint64, start int64, timedOut bool) {
	t := s.now()
	now := w.age(t)
	if e.win.Load() != w {
		return // the breaker has left that closed spell since the attempt started
	}
	if timedOut || t-start >= 2*w.period {
		w.slowFailures.Add(1)
	}
	if late := w.failure(age, now); late && e.removed.Load() {
		if e, w = s.rehome(e, w); w != nil {
			t = s.now()
			s.failure(e, w, w.age(t), t, timedOut)
		}
		return
	}
	if !s.tripped(w, now) {
		return
	}
	done, err := s.machine(e).cb.Allow()
	if err != nil {
		return // another failure tripped it first
	}
	if e.win.Load() != w {
		done(errBreakerExcluded) // not in the spell the attempt began in
		return
	}
	done(errBreakerFailure) // gobreaker asks readyToTrip, which trips it
}

// rehome returns the breaker, and the window of its closed spell, that
// counts the late outcome (see closedWindow.failure) of an attempt that
// began in e's closed spell w, e having been removed from the set since:
// the host's breaker in the set, made anew when there is none. The set
// removes a closed breaker through which no attempt has started for
// Window + OpenTimeout (see dropIdle), whatever attempts are still in
// flight through it: without this, a host that hangs them all would never
// trip its breaker. The window is nil when the outcome counts nowhere: e
// has left the spell w, ResetHost removed e (the host's breaker starts
// anew), or the host's breaker is not closed.
func (s *breakerSet) rehome(e *breakerEntry, w *closedWindow) (*breakerEntry, *closedWindow) {
	if e.win.Load() != w || e.reset.Load() {
		return e, nil
	}
	k := e.node.key
	h := s.table.hashOf(k)
	if e = s.table.find(k, h); e == nil {
		e = s.insert(k, h, s.now())
	}
	return e, e.win.Load()
}

// clock returns the time of an attempt's start as the set counts it: the
// retry loop's reading when it has one, else the clock's.
func (s *breakerSet) clock(st *attemptState) int64 {
	if st != nil && !st.start.IsZero() {
		return int64(st.start.Sub(s.epoch))
	}
	return s.now()
}

// openFor reports whether the breaker of req is open and refuses its
// attempts for d more at least: an attempt sent within d is refused. It
// finds the breaker under any spelling of req's host, as stateOf does: a
// spelling no attempt has used yet has no alias in the set, and its
// attempt would be refused by the host's breaker all the same. It creates
// no breaker and takes no lock.
func (s *breakerSet) openFor(req *http.Request, d time.Duration) bool {
	keys, n := hostKeys(s.keyFn, req)
	e := findHost(&s.table, keys[:n])
	if e == nil || e.state.Load() != int32(gobreaker.StateOpen) {
		return false
	}
	m := e.m.Load()
	return m != nil && int64(d) < m.openedAt.Load()+int64(s.timeout)-s.now()
}

// opened returns a channel closed once the breaker of req opens, or
// leaves the set: an attempt that waits for its turn of the pace takes it
// before it reads its breaker (see openFor), and reads it again once woken,
// so that it stops waiting for a turn its breaker will refuse (see
// rateLimiter.acquire). A host the set holds no breaker of yet gets the
// set's channel, closed when any breaker opens. Only waiting attempts make
// one; a breaker that opens wakes the waiters of its host alone.
func (s *breakerSet) opened(req *http.Request) <-chan struct{} {
	keys, n := hostKeys(s.keyFn, req)
	e := findHost(&s.table, keys[:n])
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := &s.opening
	if e != nil && e.list != nil { // still in the set
		ch = &e.opening
	}
	if *ch == nil {
		*ch = make(chan struct{})
	}
	return *ch
}

// now returns the monotonic time since the set's epoch, in nanoseconds.
func (s *breakerSet) now() int64 { return int64(time.Since(s.epoch)) }

// len returns the number of keys in the set, aliases included.
func (s *breakerSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.table.len()
}

// lookup returns the breaker stored under k, or nil.
func (s *breakerSet) lookup(k breakerKey) *breakerEntry {
	return s.table.load(k)
}

// get returns the breaker of req, an attempt whose state is st (nil for
// none), creating it when needed, or nil when req goes through without a
// breaker.
func (s *breakerSet) get(req *http.Request, st *attemptState) *breakerEntry {
	k, ok := requestKey(s.keyFn, req)
	if !ok {
		return nil
	}
	e := s.last.Load()
	if e == nil || e.node.key != k || e.removed.Load() {
		if e != nil && e.removed.Load() {
			s.last.CompareAndSwap(e, nil)
		}
		h := s.table.hashOf(k)
		if e = s.table.find(k, h); e == nil {
			e = s.insert(k, h, s.clock(st))
			if !s.deliverAbove {
				s.flush(req.Context()) // an open breaker evicted to make room
			}
			return e
		}
		if s.last.Load() == nil && e.node.key == k && !e.removed.Load() {
			// Should e be removed from now on, remove (or the next
			// lookup, if this store comes after remove's) takes it out.
			s.last.CompareAndSwap(nil, e)
		}
	}
	if !e.used.Load() {
		e.used.Store(true)
	}
	return e
}

// requestKey returns the key of req's breaker (and of its retry budget
// when keyFn is set: see budgetKey): keyFn's
// (BreakerSettings.Key) when set, bounded (customKey), else the URL's
// scheme and the host the server sees, as the request has them: its URL's,
// or the virtual host its Host header names (see stateHost). It reports false for a request
// without one. The URL's key is not bounded (see breakerKey.bounded): a
// lookup with it finds the key of any host within the bounds at no cost,
// and an insert, or a lookup that must find a host past them, bounds it.
func requestKey(keyFn func(*http.Request) string, req *http.Request) (breakerKey, bool) {
	switch {
	case keyFn != nil:
		k := customKey(keyFn(req))
		return breakerKey{host: k}, k != ""
	case req.URL != nil:
		return breakerKey{req.URL.Scheme, stateHost(req)}, true
	}
	return breakerKey{}, false
}

// insert returns the breaker of k, whose hash is h, creating it unless
// another goroutine did, or adding k as an alias of the breaker of its
// canonical key; now is the time of the attempt (breakerSet.clock).
func (s *breakerSet) insert(k breakerKey, h uint64, now int64) *breakerEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kb := k.bounded(); kb != k {
		k, h = kb, s.table.hashOf(kb)
	}
	if e := s.table.find(k, h); e != nil {
		e.used.Store(true)
		return e
	}
	if d := int64(s.idleAfter / 2); now-s.lastSweep >= d || s.lastSweep-now >= d {
		// (A time that far before the last sweep's is a clock that
		// went back: a Transport made outside a testing/synctest
		// bubble reads the bubble's clock, years behind its epoch,
		// inside it; no sweep would come until it caught up.)
		// Before the canonical key's breaker is looked up: one it
		// removes must not take the alias made below with it.
		s.dropIdle(now)
	}
	ck, ch := k, h
	if s.keyFn == nil {
		ck.scheme = lowerASCII(k.scheme)
		ck.host = canonicalHost(ck.scheme, k.host)
	}
	var e *breakerEntry
	need := 1
	if ck != k {
		ch = s.table.hashOf(ck)
		if e = s.table.find(ck, ch); e == nil {
			need = 2
		}
	}
	if s.table.len()+need > s.max {
		if e != nil {
			// Another spelling of a breaker the set holds: room for it
			// is made among the other closed breakers only, never by
			// removing e (a host's own spellings would reset its open
			// breaker) nor an open one; without room, the spelling goes
			// through e without being stored.
			if !s.makeAliasRoom(e, now) {
				e.used.Store(true)
				return e
			}
		} else {
			s.makeRoom(need, now)
		}
	}
	if e == nil {
		e = s.newEntry(now)
		ck = ck.clone()
		s.table.insert(ck, ch, e, &e.node)
		s.closed.pushFront(e)
	} else {
		e.used.Store(true)
	}
	if ck != k {
		k = k.clone()
		s.table.insert(k, h, e, nil)
		if e.aliases == nil {
			e.aliases = new([]breakerKey)
		}
		*e.aliases = append(*e.aliases, k)
	}
	return e
}

// newEntry returns a closed breaker, to be inserted under its canonical
// key.
func (s *breakerSet) newEntry(now int64) *breakerEntry {
	e := &breakerEntry{lastSeen: now}
	e.win0.reset(now, s.period)
	e.win.Store(&e.win0)
	return e
}

// machine returns e's state machine, making it on first use. While it is
// closed, gobreaker's own counts are not used (the window holds them), so
// a breaker made when it first trips behaves as one made with e. Two
// goroutines may make one at once: one of them is kept, the other is
// dropped before anything used it (a gobreaker changes state, and calls
// back, only when used).
func (s *breakerSet) machine(e *breakerEntry) *breakerMachine {
	if m := e.m.Load(); m != nil {
		return m
	}
	m := &breakerMachine{name: breakerName(e.node.key, s.keyFn != nil)}
	st := s.settings
	st.Name = m.name
	st.ReadyToTrip = func(gobreaker.Counts) bool { return s.readyToTrip(e) }
	st.OnStateChange = func(_ string, _, to gobreaker.State) { s.changed(e, to) }
	m.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](st)
	if !e.m.CompareAndSwap(nil, m) {
		return e.m.Load()
	}
	return m
}

// refusal returns the error of an attempt the state machine m refused
// with err.
func (s *breakerSet) refusal(m *breakerMachine, err error) error {
	if errors.Is(err, gobreaker.ErrTooManyRequests) {
		// The probes in flight hold the slots until they answer, or
		// until the oldest goes stale (ProbeTimeout): the next probe
		// goes then at the latest.
		m.pmu.Lock()
		oldest, held := int64(math.MaxInt64), len(m.probes) > 0
		for _, pr := range m.probes {
			oldest = min(oldest, pr.start)
		}
		m.pmu.Unlock()
		if !held {
			return fmt.Errorf("%w: %s: half-open, waiting for its probe", ErrCircuitOpen, m.name)
		}
		wait := roundUpMillisecond(time.Duration(oldest-s.now()) + s.probeTimeout)
		return fmt.Errorf("%w: %s: half-open, waiting for its probe: next probe in %v at the latest", ErrCircuitOpen, m.name, wait)
	}
	wait := roundUpMillisecond(time.Duration(m.openedAt.Load()-s.now()) + s.timeout)
	return fmt.Errorf("%w: %s: next probe in %v", ErrCircuitOpen, m.name, wait)
}

// roundUpMillisecond returns d, at least 0, rounded up to the millisecond:
// a probe is not due before.
func roundUpMillisecond(d time.Duration) time.Duration {
	return max(d+time.Millisecond-1, 0).Truncate(time.Millisecond)
}

// breakerName returns the name of the breaker of k: the key itself for a
// custom key (custom, BreakerSettings.Key), else scheme://host:port,
// bounded (see breakerKey.bounded), a credential in a parameter after the
// host REDACTED ("api.example.com;jsessionid=REDACTED", see
// redact.HostParams): the observers, the log, the errors and a
// BudgetStore show it. The host of a URL without a scheme ("//host/path",
// which a custom base may serve), also keyed with an empty scheme, is a
// URL's host, not a custom key: it is named as one, its user information
// and its session id REDACTED, without a scheme. It is not called on a
// call's success path.
func breakerName(k breakerKey, custom bool) string {
	k = k.bounded()
	if k.scheme == "" {
		if custom {
			return k.host
		}
		_, k.host = urlKey("", k.host) // user information put in the host by hand
		return redact.HostParams(k.host)
	}
	k.host = redact.HostParams(k.host)
	port := defaultPort(k.scheme)
	if port == "" || hasPort(k.host) {
		return k.scheme + "://" + k.host
	}
	return k.scheme + "://" + k.host + port
}
