package resilient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
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

// breakerEntry is one breaker of a set.
type breakerEntry struct {
	cb   *gobreaker.TwoStepCircuitBreaker[struct{}]
	name string

	// used is set by the attempts and cleared by the sweeps, which then
	// record their time in lastSeen: a clock approximation of the time of
	// the last attempt, which costs an attempt no clock read.
	used atomic.Bool

	// Mirrors of the breaker's state, written by its OnStateChange and
	// read without its lock; times are nanoseconds since the set's epoch.
	state    atomic.Int32
	openedAt atomic.Int64

	// Guarded by the set's mu.
	key      breakerKey   // the canonical key
	aliases  []breakerKey // the other keys of the same breaker
	lastSeen int64        // the creation or the last sweep that found it used

	// The probes let through while half-open and not yet answered.
	pmu    sync.Mutex
	probes []*probe
}

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
type breakerSet struct {
	settings     gobreaker.Settings
	keyFn        func(*http.Request) string
	timeout      time.Duration // OpenTimeout
	probeTimeout time.Duration // ProbeTimeout
	idleAfter    time.Duration // Window + OpenTimeout
	max          int           // the hard limit: maxBreakers but in tests
	epoch        time.Time

	mu        sync.RWMutex
	m         map[breakerKey]*breakerEntry
	lastSweep int64

	observers []func(BreakerChange)
	logger    *slog.Logger

	// State changes are queued by OnStateChange, which gobreaker calls
	// under its lock, and delivered by flush once that lock is released.
	qmu        sync.Mutex
	queue      []BreakerChange
	pending    atomic.Bool // queue is not empty
	delivering atomic.Bool // a goroutine is delivering changes
}

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
	consecutive := uint32(min(bs.ConsecutiveFailures, math.MaxUint32))
	minRequests := uint32(min(bs.MinRequests, math.MaxUint32))
	ratio := bs.FailureRatio
	return &breakerSet{
		settings: gobreaker.Settings{
			MaxRequests:  uint32(min(bs.HalfOpenRequests, math.MaxUint32)),
			Interval:     bs.Window,
			BucketPeriod: max(bs.Window/breakerBuckets, 1),
			Timeout:      bs.OpenTimeout,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				if consecutive > 0 && c.ConsecutiveFailures >= consecutive {
					return true
				}
				n := uint64(c.TotalSuccesses) + uint64(c.TotalFailures)
				return n >= uint64(minRequests) && float64(c.TotalFailures) >= ratio*float64(n)
			},
			IsSuccessful: func(err error) bool { return err == nil },
			IsExcluded:   func(err error) bool { return err == errBreakerExcluded },
		},
		keyFn:        bs.Key,
		timeout:      bs.OpenTimeout,
		probeTimeout: bs.ProbeTimeout,
		idleAfter:    bs.Window + bs.OpenTimeout,
		max:          maxBreakers,
		epoch:        time.Now(),
		m:            make(map[breakerKey]*breakerEntry),
		observers:    observers,
		logger:       logger,
	}
}

// addProbe records a probe e let through while half-open, done being its
// report function.
func (s *breakerSet) addProbe(e *breakerEntry, done func(error)) *probe {
	pr := &probe{done: done, start: s.now()}
	e.pmu.Lock()
	e.probes = append(e.probes, pr)
	e.pmu.Unlock()
	return pr
}

// dropProbe forgets a probe whose outcome was reported.
func (s *breakerSet) dropProbe(e *breakerEntry, pr *probe) {
	e.pmu.Lock()
	defer e.pmu.Unlock()
	for i, p := range e.probes {
		if p == pr {
			e.probes = append(e.probes[:i], e.probes[i+1:]...)
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
	e.pmu.Lock()
	kept := e.probes[:0]
	for _, pr := range e.probes {
		if pr.start <= stale {
			released = append(released, pr)
		} else {
			kept = append(kept, pr)
		}
	}
	clear(e.probes[len(kept):])
	e.probes = kept
	e.pmu.Unlock()
	freed := false
	for _, pr := range released {
		if pr.reported.CompareAndSwap(false, true) {
			pr.done(errBreakerExcluded)
			freed = true
		}
	}
	return freed
}

// now returns the monotonic time since the set's epoch, in nanoseconds.
func (s *breakerSet) now() int64 { return int64(time.Since(s.epoch)) }

// len returns the number of keys in the set, aliases included.
func (s *breakerSet) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

// get returns the breaker of req, creating it when needed, or nil when req
// goes through without a breaker.
func (s *breakerSet) get(req *http.Request) *breakerEntry {
	var k breakerKey
	switch {
	case s.keyFn != nil:
		if k.host = s.keyFn(req); k.host == "" {
			return nil
		}
	case req.URL != nil:
		k = breakerKey{req.URL.Scheme, req.URL.Host}
	default:
		return nil
	}
	s.mu.RLock()
	e := s.m[k]
	s.mu.RUnlock()
	if e == nil {
		return s.insert(k)
	}
	if !e.used.Load() {
		e.used.Store(true)
	}
	return e
}

// insert returns the breaker of k, creating it unless another goroutine
// did, or adding k as an alias of the breaker of its canonical key.
func (s *breakerSet) insert(k breakerKey) *breakerEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[k]; e != nil {
		e.used.Store(true)
		return e
	}
	ck := k
	if s.keyFn == nil {
		ck.scheme = lowerASCII(k.scheme)
		ck.host = canonicalHost(ck.scheme, k.host)
	}
	need := 1
	if ck != k && s.m[ck] == nil {
		need = 2
	}
	now := s.now()
	if len(s.m)+need > s.max || now-s.lastSweep >= int64(s.idleAfter/2) {
		s.sweep(now, need)
	}
	e := s.m[ck]
	if e == nil {
		e = &breakerEntry{name: breakerName(ck), key: ck, lastSeen: now}
		st := s.settings
		st.Name = e.name
		st.OnStateChange = func(_ string, from, to gobreaker.State) { s.changed(e, from, to) }
		e.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](st)
		s.m[ck] = e
	} else {
		e.used.Store(true)
	}
	if ck != k {
		s.m[k] = e
		e.aliases = append(e.aliases, k)
	}
	return e
}

// sweep runs, with s.mu held, before an insertion of need keys that would
// pass the set's limit, or that comes (Window + OpenTimeout)/2 or more
// after the previous sweep. It records the time of the breakers used since
// the previous sweep (so "least recently used" is to the resolution of the
// sweeps) and removes the closed ones that have seen no attempt for longer
// than Window + OpenTimeout. When that leaves too little room, it removes
// the least recently used closed breakers down to 15/16 of the limit; and
// only when the closed ones are not enough, the least recently used open
// and half-open ones, down to the same mark. Removing in batches keeps the
// cost of a sweep amortized over the insertions that follow it.
func (s *breakerSet) sweep(now int64, need int) {
	s.lastSweep = now
	idle := now - int64(s.idleAfter)
	full := len(s.m)+need > s.max
	var closed, open []*breakerEntry
	if full {
		closed = make([]*breakerEntry, 0, len(s.m))
	}
	for k, e := range s.m {
		if k != e.key {
			continue // an alias
		}
		if e.used.Load() {
			e.used.Store(false)
			e.lastSeen = now
		}
		switch {
		case e.state.Load() != int32(gobreaker.StateClosed):
			if full {
				open = append(open, e)
			}
		case e.lastSeen < idle:
			s.remove(e)
		case full:
			closed = append(closed, e)
		}
	}
	if len(s.m)+need <= s.max {
		return
	}
	target := s.max - max(s.max/16, need)
	s.removeOldest(closed, len(s.m)-target)
	if len(s.m)+need > s.max {
		s.removeOldest(open, len(s.m)-target)
	}
}

// removeOldest removes the n least recently seen breakers of es, or all of
// them when there are fewer; s.mu is held.
func (s *breakerSet) removeOldest(es []*breakerEntry, n int) {
	if n >= len(es) {
		for _, e := range es {
			s.remove(e)
		}
		return
	}
	if n <= 0 {
		return
	}
	// Quickselect: move the n least recently seen to es[:n].
	lo, hi := 0, len(es)-1
	for lo < hi {
		p := es[lo+(hi-lo)/2].lastSeen
		i, j := lo, hi
		for i <= j {
			for es[i].lastSeen < p {
				i++
			}
			for es[j].lastSeen > p {
				j--
			}
			if i <= j {
				es[i], es[j] = es[j], es[i]
				i++
				j--
			}
		}
		switch {
		case n-1 <= j:
			hi = j
		case n-1 >= i:
			lo = i
		default:
			lo = hi
		}
	}
	for _, e := range es[:n] {
		s.remove(e)
	}
}

// remove deletes e and its aliases from the set; s.mu is held.
func (s *breakerSet) remove(e *breakerEntry) {
	delete(s.m, e.key)
	for _, k := range e.aliases {
		delete(s.m, k)
	}
}

// changed records a state change of e. gobreaker calls it under e's lock:
// it must not block nor call back into the breaker, so it only queues the
// change for flush.
func (s *breakerSet) changed(e *breakerEntry, from, to gobreaker.State) {
	now := time.Now()
	e.state.Store(int32(to))
	if to == gobreaker.StateOpen {
		e.openedAt.Store(int64(now.Sub(s.epoch)))
	}
	if len(s.observers) == 0 && s.logger == nil {
		return
	}
	s.qmu.Lock()
	if len(s.queue) < maxQueuedChanges {
		s.queue = append(s.queue, BreakerChange{Key: e.name, From: BreakerState(from), To: BreakerState(to), At: now})
	}
	s.pending.Store(true)
	s.qmu.Unlock()
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

// refusal returns the error of an attempt e refused with err.
func (s *breakerSet) refusal(e *breakerEntry, err error) error {
	if errors.Is(err, gobreaker.ErrTooManyRequests) {
		return fmt.Errorf("%w: %s: half-open, waiting for its probe", ErrCircuitOpen, e.name)
	}
	wait := time.Duration(e.openedAt.Load()-s.now()) + s.timeout
	// Round up to the millisecond: the probe is not due before.
	wait = max(wait+time.Millisecond-1, 0).Truncate(time.Millisecond)
	return fmt.Errorf("%w: %s: next probe in %v", ErrCircuitOpen, e.name, wait)
}

// breakerName returns the name of the breaker of k: the key itself for a
// custom key, else scheme://host:port.
func breakerName(k breakerKey) string {
	if k.scheme == "" {
		return k.host
	}
	port := defaultPort(k.scheme)
	if port == "" || hasPort(k.host) {
		return k.scheme + "://" + k.host
	}
	return k.scheme + "://" + k.host + port
}

// canonicalHost returns host lower-cased, without scheme's default port.
func canonicalHost(scheme, host string) string {
	host = lowerASCII(host)
	if port := defaultPort(scheme); port != "" {
		if h, ok := strings.CutSuffix(host, port); ok {
			return h
		}
	}
	// An empty port means the default one.
	if strings.HasSuffix(host, ":") && hasPort(host) {
		return host[:len(host)-1]
	}
	return host
}

// defaultPort returns the default port of scheme, colon included, or "".
func defaultPort(scheme string) string {
	switch scheme {
	case "https":
		return ":443"
	case "http":
		return ":80"
	}
	return ""
}

// hasPort reports whether host, as in URL.Host, ends with a port.
func hasPort(host string) bool {
	i := strings.LastIndexByte(host, ':')
	return i >= 0 && i > strings.LastIndexByte(host, ']')
}

// lowerASCII returns s with ASCII letters lower-cased; it allocates only
// when s has an upper-case letter.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
