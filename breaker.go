package resilient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Defaults of BreakerSettings, as documented on its fields.
const (
	defaultBreakerFailureRatio     = 0.5
	defaultBreakerMinRequests      = 20
	defaultBreakerWindow           = 30 * time.Second
	defaultBreakerOpenTimeout      = 10 * time.Second
	defaultBreakerHalfOpenRequests = 1
)

const (
	// breakerBuckets is the number of buckets the rolling window is made of.
	breakerBuckets = 10

	// maxBreakers is the hard limit of the number of breakers a Transport
	// keeps; see breakerSet.sweep for what is removed when it is reached.
	maxBreakers = 4096

	// maxQueuedChanges bounds the state changes waiting to be delivered.
	maxQueuedChanges = 256
)

// BreakerSettings configures the per-host circuit breakers of a Transport,
// set with WithBreaker. A zero field means its default.
//
// A breaker counts the outcome of every attempt that it lets through. A
// failure is a Transient 5xx response other than 501 and 505, a network
// error, or an attempt that passed the limit set with WithAttemptTimeout.
// Throttled outcomes (429) and attempts ended by the caller's own context
// are not counted: a rate limit is not a sick server, and a caller giving
// up says nothing about the host. Requests that could never be sent (an
// unsupported scheme, an invalid header) are not counted either. Every other
// response, 404 and 408 included, is a success. Classes are the
// Transport's decision, a Classifier's included.
//
// A closed breaker trips (opens) when its rolling window holds at least
// MinRequests counted outcomes of which at least FailureRatio are failures,
// or, when ConsecutiveFailures is set, after that many failures in a row.
// An open breaker refuses attempts without touching the network for
// OpenTimeout, then becomes half-open: it lets HalfOpenRequests probes
// through and refuses the rest. When they all succeed it closes; when one
// fails it opens again for OpenTimeout.
type BreakerSettings struct {
	// ConsecutiveFailures, when positive, also trips a breaker after that
	// many failures in a row, whatever the window holds: a rule for
	// clients whose traffic to a host is too low to reach MinRequests.
	// Zero (the default) turns the rule off.
	ConsecutiveFailures int

	// FailureRatio is the share of failures among the counted outcomes of
	// the window, in (0, 1], at or above which a breaker trips (default
	// 0.5).
	FailureRatio float64

	// MinRequests is how many counted outcomes the window must hold before
	// FailureRatio applies (default 20).
	MinRequests int

	// Window is the length of the rolling window of outcomes (default
	// 30s). It rolls in tenths: outcomes leave it a tenth of Window at a
	// time.
	Window time.Duration

	// OpenTimeout is how long a tripped breaker refuses attempts before it
	// lets a probe through (default 10s).
	OpenTimeout time.Duration

	// HalfOpenRequests is how many probes a half-open breaker lets
	// through; all of them must succeed to close it (default 1).
	HalfOpenRequests int

	// Key returns the key of an attempt's request: requests with the same
	// key share one breaker. The default is the URL's scheme://host:port,
	// the port made explicit (":443" for https, ":80" for http) and the
	// host lower-cased. A request for which Key returns "" goes through
	// without a breaker. Key runs on every attempt and must be safe for
	// concurrent use.
	Key func(*http.Request) string
}

// WithBreaker sets the settings of the per-host circuit breakers, which are
// on by default with the defaults documented on BreakerSettings; zero
// fields take their default. It panics with a message naming the field if
// a value is negative or FailureRatio is above 1.
//
// While a host's breaker is open, its attempts fail at once without
// touching the network: a call whose first attempt is refused returns an
// error for which errors.Is(err, ErrCircuitOpen) holds, naming the key and
// the time until the next probe; a call whose retry is refused returns the
// response of its previous attempt.
//
// A Transport keeps at most 4096 breakers, so that calling any number of
// hosts takes bounded memory. When it creates one, it removes from time to
// time the breakers that are closed and have seen no attempt for longer
// than Window + OpenTimeout; and when the limit is reached, the least
// recently used closed breakers, down to 15/16 of the limit. Open and
// half-open breakers are removed, least recently used first, only when the
// closed ones are not enough to stay within the limit.
func WithBreaker(s BreakerSettings) Option {
	mustNotBeNegative("WithBreaker ConsecutiveFailures", s.ConsecutiveFailures)
	if s.FailureRatio < 0 || s.FailureRatio > 1 || math.IsNaN(s.FailureRatio) {
		panic(fmt.Sprintf("resilient: WithBreaker FailureRatio: %v is not in [0, 1]", s.FailureRatio))
	}
	mustNotBeNegative("WithBreaker MinRequests", s.MinRequests)
	mustNotBeNegative("WithBreaker Window", s.Window)
	mustNotBeNegative("WithBreaker OpenTimeout", s.OpenTimeout)
	mustNotBeNegative("WithBreaker HalfOpenRequests", s.HalfOpenRequests)
	return func(c *config) { c.breaker, c.noBreaker = s, false }
}

// WithoutBreaker turns the circuit breakers off: every attempt goes to the
// network, whatever the host's state.
func WithoutBreaker() Option {
	return func(c *config) { c.noBreaker = true }
}

// WithBreakerObserver adds fn to the functions called on every state change
// of a breaker. fn runs synchronously on the goroutine of an attempt of the
// Transport, outside of the breakers' locks, so it may use the Transport
// itself; it must not block for long. Changes are delivered in the order
// they happened. A nil fn is ignored.
func WithBreakerObserver(fn func(BreakerChange)) Option {
	return func(c *config) {
		if fn != nil {
			c.breakerObservers = append(c.breakerObservers, fn)
		}
	}
}

// BreakerState is the state of a circuit breaker.
type BreakerState int

// States of a circuit breaker. Their values mirror sony/gobreaker's State.
const (
	// BreakerClosed lets every attempt through and counts outcomes.
	BreakerClosed BreakerState = iota
	// BreakerHalfOpen lets a few probes through and refuses the rest.
	BreakerHalfOpen
	// BreakerOpen refuses every attempt until its open timeout ends.
	BreakerOpen
)

// String returns "closed", "half-open" or "open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "breakerstate(" + strconv.Itoa(int(s)) + ")"
}

// BreakerChange is a state change of one breaker, as given to the functions
// set with WithBreakerObserver and as logged with WithLogger.
type BreakerChange struct {
	Key      string       // the breaker's key, e.g. "https://api.example.com:443"
	From, To BreakerState // the states before and after the change
	At       time.Time    // when the change happened
}

// Outcomes reported to a breaker through the done function of Allow:
// nil is a success, errBreakerExcluded is not counted, any other error is
// a failure.
var (
	errBreakerFailure  = errors.New("resilient: breaker: failure")
	errBreakerExcluded = errors.New("resilient: breaker: excluded")
)

// breakerMiddleware returns the per-host circuit breaker of the chain, or
// nil when breakers are off.
func (t *Transport) breakerMiddleware() Middleware {
	if t.cfg.noBreaker {
		return nil
	}
	set := newBreakerSet(t.cfg.breaker, t.cfg.breakerObservers, t.cfg.logger)
	return func(next http.RoundTripper) http.RoundTripper {
		return &breakerTransport{next: next, set: set}
	}
}

// breakerTransport refuses attempts to hosts whose breaker is open and
// reports the outcome of the others to their breaker.
type breakerTransport struct {
	next http.RoundTripper
	set  *breakerSet
}

func (b *breakerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	e := b.set.get(req)
	if e == nil {
		return b.next.RoundTrip(req)
	}
	done, err := e.cb.Allow()
	b.set.flush(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, b.set.refusal(e, err)
	}
	reported := false
	defer func() {
		if !reported { // next panicked: free a half-open breaker's probe slot
			done(errBreakerFailure)
			b.set.flush(req.Context())
		}
	}()
	resp, err := b.next.RoundTrip(req)
	reported = true
	done(breakerOutcome(req, resp, err))
	b.set.flush(req.Context())
	return resp, err
}

// breakerOutcome maps an attempt's result to what its breaker counts.
func breakerOutcome(req *http.Request, resp *http.Response, err error) error {
	st := attemptOf(req.Context())
	if err != nil || resp == nil {
		if errors.Is(err, ErrAttemptTimeout) {
			return errBreakerFailure
		}
		if req.Context().Err() != nil {
			return errBreakerExcluded // the caller gave up
		}
		var cl Class
		var neverSent bool
		if st != nil && st.classified {
			cl, neverSent = st.class, st.neverSent
		} else {
			cl, neverSent = classifyErr(err)
		}
		switch {
		case cl == Success:
			return nil
		case cl == Throttled, cl == Permanent && neverSent:
			return errBreakerExcluded
		}
		return errBreakerFailure
	}
	var cl Class
	if st != nil && st.classified {
		cl = st.class
	} else {
		cl = statusClass(resp.StatusCode)
	}
	switch {
	case cl == Throttled:
		return errBreakerExcluded
	case cl == Transient && resp.StatusCode >= 500 &&
		resp.StatusCode != http.StatusNotImplemented &&
		resp.StatusCode != http.StatusHTTPVersionNotSupported:
		return errBreakerFailure
	}
	return nil
}

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
}

// breakerSet is the bounded set of breakers of a Transport, and the queue of
// their state changes waiting to be delivered.
type breakerSet struct {
	settings  gobreaker.Settings
	keyFn     func(*http.Request) string
	timeout   time.Duration // OpenTimeout
	idleAfter time.Duration // Window + OpenTimeout
	max       int           // the hard limit: maxBreakers but in tests
	epoch     time.Time

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
		keyFn:     bs.Key,
		timeout:   bs.OpenTimeout,
		idleAfter: bs.Window + bs.OpenTimeout,
		max:       maxBreakers,
		epoch:     time.Now(),
		m:         make(map[breakerKey]*breakerEntry),
		observers: observers,
		logger:    logger,
	}
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
