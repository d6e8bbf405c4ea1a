package resilient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// breakerKey identifies a breaker in a breakerSet: the URL's scheme and
// host as the request has them, so that looking a breaker up builds no
// string; or, with a custom Key function, the key, with an empty scheme.
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

	// Guarded by the set's mu.
	list *entryList // the list that holds it; nil once removed
	listNode[breakerEntry]
	aliases  *[]breakerKey // the other keys of the same breaker; nil for none
	lastSeen int64         // the creation or the last pass that found it used

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

// entryList is a list of breakers, the most recently seen at the front.
type entryList struct {
	list[breakerEntry, *breakerEntry]
}

func (l *entryList) pushFront(e *breakerEntry) {
	e.list = l
	l.list.pushFront(e)
}

func (l *entryList) remove(e *breakerEntry) {
	l.list.remove(e)
	e.list = nil
}

func (e *breakerEntry) links() *listNode[breakerEntry] { return &e.listNode }

// probe is an attempt a half-open breaker let through. Its outcome is
// reported once: by the attempt, or, when it has gone unanswered for
// ProbeTimeout, as not counted by breakerSet.releaseStaleProbes, which
// frees its slot; whichever comes second is dropped.
type probe struct {
	done     func(error)
	start    int64 // breakerSet.now() when it was let through
	reported atomic.Bool
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

	mu           sync.Mutex
	table        hostTable[breakerKey, breakerEntry] // aliases included; written under mu
	closed, open entryList
	lastSweep    int64

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
	return n >= s.minRequests && float64(failures)/float64(n) >= s.ratio
}

// readyToTrip is e's gobreaker ReadyToTrip: gobreaker's own counts of a
// closed breaker hold only the failure that trips it, the window holds the
// rest.
func (s *breakerSet) readyToTrip(e *breakerEntry) bool {
	w := e.win.Load()
	return w != nil && s.tripped(w, w.age(s.now()))
}

// failure counts a failure, of an attempt that started at age, in the
// window w of e, and trips e through gobreaker when the window says so.
func (s *breakerSet) failure(e *breakerEntry, w *closedWindow, age uint64) {
	now := w.age(s.now())
	if e.win.Load() != w || !w.failure(age, now) || !s.tripped(w, now) {
		// The breaker has left that closed spell since the attempt
		// started, the attempt is older than the window, or the
		// breaker stays closed.
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

// clock returns the time of an attempt's start as the set counts it: the
// retry loop's reading when it has one, else the clock's.
func (s *breakerSet) clock(st *attemptState) int64 {
	if st != nil && !st.start.IsZero() {
		return int64(st.start.Sub(s.epoch))
	}
	return s.now()
}

// addProbe records a probe e let through while half-open, done being its
// report function.
func (s *breakerSet) addProbe(e *breakerEntry, done func(error)) *probe {
	pr := &probe{done: done, start: s.now()}
	m := e.m.Load()
	m.pmu.Lock()
	m.probes = append(m.probes, pr)
	m.pmu.Unlock()
	return pr
}

// dropProbe forgets a probe whose outcome was reported.
func (s *breakerSet) dropProbe(e *breakerEntry, pr *probe) {
	m := e.m.Load()
	m.pmu.Lock()
	defer m.pmu.Unlock()
	for i, p := range m.probes {
		if p == pr {
			m.probes = append(m.probes[:i], m.probes[i+1:]...)
			return
		}
	}
}

// releaseStaleProbes releases the probes of e that have gone unanswered for
// ProbeTimeout or longer: their slots are freed (reported as not counted)
// and their own outcomes, when they come, are dropped. It reports whether
// it released any, in which case a refused attempt may ask again. It runs
// on the goroutine of an attempt that a half-open breaker refused: no timer
// or goroutine watches the probes.
func (s *breakerSet) releaseStaleProbes(e *breakerEntry) bool {
	stale := s.now() - int64(s.probeTimeout)
	var released []*probe
	m := e.m.Load()
	m.pmu.Lock()
	kept := m.probes[:0]
	for _, pr := range m.probes {
		if pr.start <= stale {
			released = append(released, pr)
		} else {
			kept = append(kept, pr)
		}
	}
	clear(m.probes[len(kept):])
	m.probes = kept
	m.pmu.Unlock()
	freed := false
	for _, pr := range released {
		if pr.reported.CompareAndSwap(false, true) {
			pr.done(errBreakerExcluded)
			freed = true
		}
	}
	return freed
}

// openFor reports whether the breaker of req is open and refuses its
// attempts for d more at least: an attempt sent within d is refused. It
// creates no breaker and takes no lock.
func (s *breakerSet) openFor(req *http.Request, d time.Duration) bool {
	k, ok := requestKey(s.keyFn, req)
	if !ok {
		return false
	}
	e := s.lookup(k.bounded())
	if e == nil || e.state.Load() != int32(gobreaker.StateOpen) {
		return false
	}
	m := e.m.Load()
	return m != nil && int64(d) < m.openedAt.Load()+int64(s.timeout)-s.now()
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

// requestKey returns the key of req's breaker and retry budget: keyFn's
// (BreakerSettings.Key) when set, bounded (customKey), else the URL's
// scheme and host as the request has them. It reports false for a request
// without one. The URL's key is not bounded (see breakerKey.bounded): a
// lookup with it finds the key of any host within the bounds at no cost,
// and an insert, or a lookup that must find a host past them, bounds it.
func requestKey(keyFn func(*http.Request) string, req *http.Request) (breakerKey, bool) {
	switch {
	case keyFn != nil:
		k := customKey(keyFn(req))
		return breakerKey{host: k}, k != ""
	case req.URL != nil:
		return breakerKey{req.URL.Scheme, req.URL.Host}, true
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
	if now-s.lastSweep >= int64(s.idleAfter/2) {
		s.dropIdle(now)
	}
	if s.table.len()+need > s.max {
		s.makeRoom(need, now)
		if e != nil && e.list == nil {
			e = nil // makeRoom removed it: make room for both keys
			s.makeRoom(2, now)
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
	m := &breakerMachine{name: breakerName(e.node.key)}
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

// listOf returns the list e belongs in, by its state; s.mu is held.
func (s *breakerSet) listOf(e *breakerEntry) *entryList {
	if e.state.Load() == int32(gobreaker.StateClosed) {
		return &s.closed
	}
	return &s.open
}

// place moves e to the front of the list of its state, with lastSeen now,
// unless it was removed; s.mu is held.
func (s *breakerSet) place(e *breakerEntry, now int64) {
	if e.list == nil {
		return
	}
	e.list.remove(e)
	e.lastSeen = now
	s.listOf(e).pushFront(e)
}

// dropIdle runs, with s.mu held, on an insertion that comes
// (Window + OpenTimeout)/2 or more after the previous one: it removes the
// closed breakers that have seen no attempt for longer than
// Window + OpenTimeout. It walks the closed list from its back, the least
// recently seen first, giving used breakers their second chance, and stops
// at the first breaker that is not idle: each step removes or moves a
// breaker, so its cost is amortized over the attempts and insertions.
func (s *breakerSet) dropIdle(now int64) {
	s.lastSweep = now
	idle := now - int64(s.idleAfter)
	for steps := s.closed.n; steps > 0 && s.closed.tail != nil; steps-- {
		e := s.closed.tail
		switch {
		case e.used.Load():
			e.used.Store(false)
			s.place(e, now)
		case e.state.Load() != int32(gobreaker.StateClosed):
			s.place(e, e.lastSeen) // it left the closed state: not idle
		case e.lastSeen < idle:
			s.remove(e)
		default:
			return
		}
	}
}

// makeRoom removes breakers, with s.mu held, until need more keys fit in
// the set: the least recently used closed breakers first, and only when
// there are none left, the least recently used open and half-open ones.
func (s *breakerSet) makeRoom(need int, now int64) {
	for s.table.len()+need > s.max {
		if !s.evict(&s.closed, now) && !s.evict(&s.open, now) {
			return // empty
		}
	}
}

// evict removes the least recently used breaker of l that belongs in it,
// and reports whether it removed one. A used breaker met on the way gets
// its second chance (moved to the front, its use recorded); one whose state
// no longer belongs in l moves to the other list. After a whole turn of the
// list, its back breaker goes whatever its flag.
func (s *breakerSet) evict(l *entryList, now int64) bool {
	for turn := l.n; l.tail != nil; turn-- {
		e := l.tail
		switch {
		case s.listOf(e) != l:
			s.place(e, e.lastSeen)
		case turn > 0 && e.used.Load():
			e.used.Store(false)
			s.place(e, now)
		default:
			s.remove(e)
			return true
		}
	}
	return false
}

// remove deletes e and its aliases from the set; s.mu is held. The host's
// next attempt finds a new, closed breaker: when e was not closed, the
// observers and the logger are told of its change to closed (delivered by
// the next flush), and of nothing e's state machine does from now on.
func (s *breakerSet) remove(e *breakerEntry) {
	if e.list == nil {
		return
	}
	e.removed.Store(true)
	s.tell(e, gobreaker.StateClosed, time.Now())
	s.last.CompareAndSwap(e, nil)
	e.list.remove(e)
	s.table.deleteNode(&e.node)
	if e.aliases != nil {
		for _, k := range *e.aliases {
			s.table.delete(k)
		}
	}
}

// each calls fn for every breaker of the set, aliases excepted; s.mu is
// held.
func (s *breakerSet) each(fn func(*breakerEntry)) {
	for _, l := range []*entryList{&s.closed, &s.open} {
		for e := l.head; e != nil; {
			next := e.next
			fn(e)
			e = next
		}
	}
}

// changed records a state change of e, which has its state machine.
// gobreaker calls it under e's lock: it must not block nor call back into
// the breaker, so it only queues the change for flush.
func (s *breakerSet) changed(e *breakerEntry, to gobreaker.State) {
	m := e.m.Load()
	now := time.Now()
	since := int64(now.Sub(s.epoch))
	if to == gobreaker.StateClosed {
		// A new closed spell: a new window, in place before the state
		// says closed.
		w := new(closedWindow)
		w.reset(since, s.period)
		e.win.Store(w)
	} else {
		e.win.Store(nil)
	}
	e.state.Store(int32(to))
	if to == gobreaker.StateOpen {
		m.openedAt.Store(since)
	}
	// Keep the lists right: a change is an attempt's doing, so e is
	// recently used. gobreaker's lock is held; s.mu is never held while
	// calling into gobreaker, so the order is safe.
	s.mu.Lock()
	s.place(e, since)
	s.mu.Unlock()
	s.tell(e, to, now)
}

// tell queues the change of e to state to, at now, for flush to deliver,
// from the state the observers were last told of, unless that is to. Once
// e is removed from the set, only its removal tells (see remove): what its
// state machine does after, on behalf of attempts that found it before,
// is no longer the host's breaker.
func (s *breakerSet) tell(e *breakerEntry, to gobreaker.State, now time.Time) {
	m := e.m.Load()
	if m == nil || len(s.observers) == 0 && s.logger == nil {
		return // never tripped: closed, as the observers know it
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	from := m.told
	if from == to || e.removed.Load() && to != gobreaker.StateClosed {
		return
	}
	m.told = to
	if len(s.queue) < maxQueuedChanges {
		s.queue = append(s.queue, BreakerChange{Key: m.name, From: BreakerState(from), To: BreakerState(to), At: now})
	}
	s.pending.Store(true)
}

// flush delivers the queued state changes, in order, unless another
// goroutine is delivering them (possibly this one, when an observer uses
// the Transport): that one delivers them all before it stops.
func (s *breakerSet) flush(ctx context.Context) {
	for s.pending.Load() && s.delivering.CompareAndSwap(false, true) {
		s.deliverQueued(ctx)
	}
}

func (s *breakerSet) deliverQueued(ctx context.Context) {
	defer s.delivering.Store(false)
	for {
		s.qmu.Lock()
		batch := s.queue
		s.queue = nil
		s.pending.Store(false)
		s.qmu.Unlock()
		if len(batch) == 0 {
			return
		}
		for _, c := range batch {
			s.deliver(ctx, c)
		}
	}
}

// deliver reports one state change to the observers and the logger.
func (s *breakerSet) deliver(ctx context.Context, c BreakerChange) {
	for _, fn := range s.observers {
		fn(c)
	}
	if s.logger == nil {
		return
	}
	level := slog.LevelInfo
	if c.To == BreakerOpen {
		level = slog.LevelWarn
	}
	s.logger.LogAttrs(ctx, level, "resilient: breaker state change",
		slog.String("breaker", c.Key),
		slog.String("from", c.From.String()),
		slog.String("to", c.To.String()),
	)
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
// custom key, else scheme://host:port, bounded (see breakerKey.bounded).
func breakerName(k breakerKey) string {
	k = k.bounded()
	if k.scheme == "" {
		return k.host
	}
	port := defaultPort(k.scheme)
	if port == "" || hasPort(k.host) {
		return k.scheme + "://" + k.host
	}
	return k.scheme + "://" + k.host + port
}
