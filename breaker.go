package resilient

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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
	// keeps; see breakerSet.makeRoom for what is removed when it is
	// reached.
	maxBreakers = 4096

	// maxQueuedChanges bounds the state changes waiting to be delivered.
	maxQueuedChanges = 256
)

// BreakerSettings configures the per-host circuit breakers of a Transport,
// set with WithBreaker. A zero field means its default.
//
// A breaker counts the outcome of every attempt that it lets through. A
// failure is a 5xx response other than 501 and 505 (one classified
// Transient, or one that is Permanent by its status alone: 507, 508, 511,
// a CDN's 525, 526 and 530, 599; a status past 599 only when classified
// Transient), a network error, or an attempt that passed the
// limit set with WithAttemptTimeout or the end of the call's budget
// (WithMaxElapsed). A retryable 5xx (500, 502, 503, 504, a CDN's
// 520–524, 529) that an explicit decision made Permanent (its envelope's
// code or retryable flag, a vendor's hint, a Classifier) is the host's
// definitive answer, and a success. Throttled outcomes (429) and attempts ended by
// the caller's own context (or by the request's deprecated Cancel channel)
// are not counted: a rate limit is not a sick server, and a caller giving
// up says nothing about the host. Nor is an attempt cut by an attempt
// timeout or a budget that its call set tighter than the Transport's
// (WithCallOptions): that is the caller's choice too, and one caller's
// tight setting must not open a healthy host's breaker for every caller
// (a call's limit no tighter than the Transport's counts). Nor is an
// attempt cut by the call's budget after it waited, for its turn at the
// rate limiter (a pace, WithRateLimit's or the host's, or a pause) and for
// a slot of its host (WithMaxInFlight), as long as it then had on the
// wire, while the host answered the last attempt its breaker counted and
// no other such cut was excused since its last success: the time the
// queue took from it was not the host's to answer in (a host that never
// answers, its slots held by attempts it hangs, or each of its attempts
// held most of its budget by a busy pace, is counted all the same). Nor
// is an attempt cut by its deadline while the transport was waiting for the
// caller's request body, whose Read stalled (see RequestError): a host
// that stopped reading the body, or does not answer once it has it, still
// counts. Requests that could never be sent (an unsupported scheme, an
// invalid header, a host name that does not exist, an address no dial
// reaches, a proxy setting that does not parse, a certificate the client
// refuses, a proxy that refuses the tunnel, a connection the base's own
// Dialer.Control or TLS verify callback refuses) are not counted either,
// nor is any other of the caller's mistakes (a RequestError), whatever a
// Classifier decides of them. Nor is a dial that failed for want of a
// resource of this machine (no file descriptor left, no local port left
// to connect from), for the socket to the host or for the lookup of its
// name: it never reached the host, and a process short of descriptors
// for a moment must not lock its callers out of healthy hosts once they
// are back. Nor is a connection to the forward proxy that failed (refused,
// unreachable, its TLS handshake: net/http's "proxyconnect" error): the
// request never reached the host, and a proxy down for a moment must not
// open the breakers of every host called through it. (A proxy that does
// not answer, its dial or its tunnel hanging until the attempt timeout
// cuts it, still counts: the cut does not tell it from a host that
// hangs.) Nor is a lookup of the host's
// name that the resolver refused (no resolver listening at its address:
// a local stub restarting), which is this machine's resolver, not the
// host's; a lookup that timed out or that the resolver failed still
// counts (so does a refusal reported through cgo's resolver, which reads
// as any failure). Every other
// response, 404 and 408 included, is a success. Classes are the
// Transport's decision, a Classifier's included.
//
// A panic below the breaker (in the base RoundTripper or a Classifier) is
// not counted either: it is a bug of this process, not the host's answer;
// the slot the attempt held is released all the same.
//
// A closed breaker trips (opens) when its rolling window holds at least
// MinRequests counted outcomes of which at least FailureRatio are failures,
// or, when ConsecutiveFailures is set, after that many failures in a row
// within the window. A closed spell starts with no attempt in flight, and
// its quick outcomes come before its slow ones: for its first two Windows,
// the attempts it let through in its first Window and still in flight
// since an earlier tenth of it are outcomes to come, and the ratio does
// not trip the breaker while, were they all successes, the share of
// failures would stay under FailureRatio. A host that answers 200 in 25s
// to two calls in three and 500 at once to the third is not tripped by
// its quick failures before its first success lands; one that hangs
// some attempts for longer holds its breaker closed for two Windows at
// most. Once attempts of the spell were cut by their attempt timeout, or
// failed after two tenths of Window or more in flight, the attempts in
// flight weigh by the share of the host's answers in the window that were
// successes: a host that never answers trips as its first attempts time
// out, whatever Window, and one that hangs a rare attempt keeps the weight
// of its slow successes, however long the hang took to be cut. An attempt
// a panic below cut stays counted in flight, for those two Windows at
// most.
// An open breaker refuses attempts without touching the network for
// OpenTimeout, then becomes half-open: it lets HalfOpenRequests probes
// through and refuses the rest. When they all succeed it closes; when one
// fails it opens again for OpenTimeout. Half-open is bounded in time: a
// probe still unanswered after ProbeTimeout no longer holds its slot, so a
// probe that hangs (no attempt timeout, a server that never answers) cannot
// keep the host refused; the next attempt probes in its place. The late
// outcome of the stale probe counts only when it is a success: a host that
// answers slower than ProbeTimeout (a completion, a report) still closes
// its breaker, where steady traffic would otherwise replace each probe
// before it answered and keep the healthy host refused for ever.
type BreakerSettings struct {
	// ConsecutiveFailures, when positive, also trips a breaker after that
	// many failures in a row, whatever the ratio of the window: a rule for
	// clients whose traffic to a host is too low to reach MinRequests. A
	// failure counts in the run while it is in the window (see Window), as
	// gobreaker's: failures in a row spaced further apart than Window
	// never trip it. Zero (the default) turns the rule off.
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
	// time. An outcome counts in the tenth its attempt ended in, so that
	// slow outcomes weigh as much as quick ones: counted as of its start,
	// a failure that took 25s of a 30s window (an attempt timeout) stayed
	// in it 5s where a quick success stayed 30s, and a host that hangs
	// most attempts never tripped its breaker.
	Window time.Duration

	// OpenTimeout is how long a tripped breaker refuses attempts before it
	// lets a probe through (default 10s).
	OpenTimeout time.Duration

	// HalfOpenRequests is how many probes a half-open breaker lets
	// through; all of them must succeed to close it (default 1).
	HalfOpenRequests int

	// ProbeTimeout is how long a half-open breaker's probe may go
	// unanswered before it no longer holds its slot: the next attempt
	// may probe in its place, and the stale probe's outcome, when it
	// comes, is not counted unless it is a success (default:
	// OpenTimeout).
	//
	// Window, OpenTimeout and ProbeTimeout longer than 100 years count
	// as 100 years; below 1ms but not zero, WithBreaker panics (a units
	// mistake: Window: 30 is 30ns).
	ProbeTimeout time.Duration

	// Key returns the key of an attempt's request: requests with the same
	// key share one breaker. The default is the URL's scheme://host:port,
	// the port made explicit (":443" for https, ":80" for http), the
	// host lower-cased and without the final dot of a fully-qualified
	// name ("API.example.com." is "api.example.com"), with the host the
	// server sees: for a request whose Host header names another host
	// than its URL's (a virtual host behind an ingress or a gateway, a
	// server called by its IP address), that name
	// ("http://10.0.0.1:8080/v1" with Host "up.internal" is
	// "http://up.internal:80"; a Host that names the URL's host on
	// another port, or without it, is the URL's host), so that the virtual hosts behind one
	// address have breakers, WithMaxInFlight slots and rate-limit
	// partitions of their own, as they are servers of their own to their
	// callers; they share their address's retry budget, which bounds the
	// load on the server the connection goes to (see RetryBudget). A
	// custom Key keys the retry budget too. A request for which Key
	// returns "" goes through without a breaker (and with its address's
	// retry budget). Key runs on every attempt and must be safe for
	// concurrent use. The key appears in errors, BreakerChange and log
	// records: derive it from a credential only through a hash. A key
	// longer than 255 bytes is held, and shown, as its first bytes, "…"
	// and 32 hex digits of its SHA-256 (computed on each attempt): two
	// long keys that differ anywhere still have breakers of their own.
	//
	// Key may read the request's body through its GetBody. For a body in
	// memory (a *bytes.Reader, *bytes.Buffer or *strings.Reader, as
	// http.NewRequest's), that GetBody is the Transport's own, which
	// reads the bytes without moving the caller's reader. For any other
	// body it is the caller's, which Key may call while the transport
	// still sends the body an earlier call of it returned (to decide a
	// retry after an early answer, to launch a hedged copy): a GetBody
	// that seeks one source back corrupts that body. Such a key is best
	// read once per call, before the request reaches the Client, into
	// its context, as the examples' OpenAI recipe reads the model.
	Key func(*http.Request) string

	// IsFailure, when set, decides whether an attempt that reached the
	// host counts as a failure of its breaker. It receives the attempt's
	// response or its error (one of the two is nil), the envelope parsed
	// from an error response (nil for none), and def, the default
	// decision (see WithBreaker), and returns its own: an attempt it
	// calls a failure counts as one, a 2xx included; one it does not
	// counts as a success, except a throttled answer (a 429), which stays
	// uncounted, so that returning def changes nothing. It is not called
	// for what tells nothing of the host and is never counted: an
	// attempt the caller canceled, one cut by an attempt timeout or budget
	// its call set tighter than the Transport's, one cut by the call's
	// budget after it waited for its turn and a slot (WithRateLimit,
	// WithMaxInFlight) as long as it then had on the wire while its host
	// answers, a request whose own
	// fault kept it from being sent, a dial that failed for want of a
	// resource of this machine, a connection to the proxy that failed, a
	// lookup the resolver refused, a RoundTripper that broke its
	// contract, a panic below.
	// It runs on every attempt through a breaker, on the caller's
	// goroutine, and must be quick and safe for concurrent use; it must
	// not read or close the response's body, which is the caller's. A
	// panic in it goes on to the caller, the response closed.
	IsFailure func(resp *http.Response, apiErr *APIError, err error, def bool) bool
}

// WithBreaker sets the settings of the per-host circuit breakers, which are
// on by default with the defaults documented on BreakerSettings; zero
// fields take their default. It panics with a message naming the field if
// a value is negative, FailureRatio is above 1, or Window, OpenTimeout or
// ProbeTimeout is below 1ms but not zero: a units mistake (Window: 30 is
// 30ns, a window that forgets each outcome before the next, which never
// trips; OpenTimeout: 10, a breaker that refuses nothing).
//
// While a host's breaker is open, its attempts fail at once without
// touching the network: a call whose first attempt is refused returns an
// error for which errors.Is(err, ErrCircuitOpen) holds, naming the key and
// the time until the next probe (while half-open, the latest: when the
// oldest probe in flight stops holding its slot, see ProbeTimeout); a call
// whose retry is refused returns the response of its previous attempt. A
// retry the breaker would refuse after its wait (the breaker open past the
// end of the backoff or of the server's Retry-After) is refused at once:
// the call does not wait for nothing, and spends no retry budget (the retry
// is paid for first, and given back what it paid when it is refused; a host
// whose budget is spent ends the call with StopRetryBudget). A retry that the
// rate limiter then holds until the breaker lets it through as a probe is
// sent as any retry, paid for.
//
// A Transport keeps at most 4096 breakers, so that calling any number of
// hosts takes bounded memory. When it creates one, it removes from time to
// time the breakers that are closed and have seen no attempt for longer
// than Window + OpenTimeout; and when the limit is reached, the open and
// half-open breakers that have seen no attempt for that long (their hosts
// no longer called) are removed, then the least recently used closed
// breaker makes room for the new one. Without one,
// the other spellings of hosts (aliases, see below) make room first: a
// spelling dropped finds its host's breaker again on its next attempt.
// Other open and half-open breakers are removed, least recently used
// first, only when no closed breaker nor alias is left. Another spelling of a host
// whose breaker is kept (see BreakerSettings.Key) takes one of the 4096
// places too, as an alias; when none is left, it takes the place of a closed breaker of
// another host, and, without one, goes through the host's breaker without
// a place of its own: a host's spellings never remove its breaker, nor an
// open one. An attempt longer than Window through a closed breaker so
// removed counts, when it ends, in its host's breaker. While a breaker is
// closed, an attempt through it takes no lock.
func WithBreaker(s BreakerSettings) Option {
	mustNotBeNegative("WithBreaker ConsecutiveFailures", s.ConsecutiveFailures)
	if s.FailureRatio < 0 || s.FailureRatio > 1 || math.IsNaN(s.FailureRatio) {
		panic(fmt.Sprintf("resilient: WithBreaker FailureRatio: %v is not in [0, 1]", s.FailureRatio))
	}
	mustNotBeNegative("WithBreaker MinRequests", s.MinRequests)
	mustNotBeNegative("WithBreaker Window", s.Window)
	mustNotBeNegative("WithBreaker OpenTimeout", s.OpenTimeout)
	mustNotBeNegative("WithBreaker HalfOpenRequests", s.HalfOpenRequests)
	mustNotBeNegative("WithBreaker ProbeTimeout", s.ProbeTimeout)
	mustNotBeBelowFloor("WithBreaker Window", s.Window)
	mustNotBeBelowFloor("WithBreaker OpenTimeout", s.OpenTimeout)
	mustNotBeBelowFloor("WithBreaker ProbeTimeout", s.ProbeTimeout)
	return func(c *config) {
		perTransport(c, "WithBreaker")
		c.breaker, c.noBreaker = s, false
	}
}

// WithoutBreaker turns the circuit breakers off: every attempt goes to the
// network, whatever the host's state.
func WithoutBreaker() Option {
	return func(c *config) {
		perTransport(c, "WithoutBreaker")
		c.noBreaker = true
	}
}

// WithBreakerObserver adds fn to the functions called on every state change
// of a breaker. fn runs synchronously on the goroutine of an attempt of the
// Transport (or of ResetHost, for the breakers it removes, once the host is
// reset and before the calls waiting for it wake), outside of the
// breakers' locks and, with WithMaxInFlight, once
// the attempt has given its slot back, so it may use the Transport itself,
// to call the host of the change included; it must not block for long.
// Changes are delivered in the order they happened. A breaker removed while
// open or half-open (by ResetHost, or evicted when the Transport keeps
// 4096) is reported as changed to closed: the host's next attempt finds a
// new, closed breaker; what the removed one does after, for attempts that
// found it before, is not reported. Changes wait for the next attempt of
// the Transport to be delivered; beyond 256 waiting at once (breakers of
// as many hosts changing with no attempt between), later ones are dropped,
// so that a storm cannot grow the queue without bound. A nil fn is
// ignored. An fn that panics takes its panic to the caller of the attempt
// that delivered the change, once the other functions and the logger were
// told of it; the changes after that one wait for the next attempt, as if
// just queued.
func WithBreakerObserver(fn func(BreakerChange)) Option {
	return func(c *config) {
		perTransport(c, "WithBreakerObserver")
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
	Key      string       // the breaker's key, e.g. "https://api.example.com:443"; a credential in a parameter after the host is REDACTED ("https://api.example.com;jsessionid=REDACTED:443")
	From, To BreakerState // the states before and after the change
	At       time.Time    // when the change happened
}

// Outcomes reported to a breaker through the done function of Allow:
// nil is a success, errBreakerExcluded and errBreakerThrottled are not
// counted, any other error is a failure. errBreakerThrottled is a
// throttled answer, which BreakerSettings.IsFailure may count.
var (
	errBreakerFailure   = errors.New("resilient: breaker: failure")
	errBreakerExcluded  = errors.New("resilient: breaker: excluded")
	errBreakerThrottled = errors.New("resilient: breaker: throttled")
)

// breakerMiddleware returns the per-host circuit breaker of the chain, or
// nil when breakers are off.
func (t *Transport) breakerMiddleware() Middleware {
	if t.cfg.noBreaker {
		return nil
	}
	set := newBreakerSet(t.cfg.breaker, t.cfg.breakerObservers, t.cfg.logger)
	t.breakers = set // for ResetHost
	// Made after the limit of attempts in flight, above the breakers in
	// the chain, which delivers their changes then.
	set.deliverAbove = t.bulkhead != nil
	return func(next http.RoundTripper) http.RoundTripper {
		return &breakerTransport{next: hopTo(next), set: set}
	}
}

// breakerTransport refuses attempts to hosts whose breaker is open and
// reports the outcome of the others to their breaker.
type breakerTransport struct {
	next hop
	set  *breakerSet
}

func (b *breakerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return b.roundTripAttempt(req, nil)
}

func (b *breakerTransport) roundTripAttempt(req *http.Request, st *attemptState) (*http.Response, error) {
	e := b.set.get(req, st)
	if e == nil {
		return b.next.roundTrip(req, st)
	}
	if w := e.win.Load(); w != nil {
		return b.closedAttempt(e, w, req, st)
	}
	m := e.m.Load() // made when the breaker tripped
	done, err := m.cb.Allow()
	if err == gobreaker.ErrTooManyRequests && b.set.releaseStaleProbes(e) {
		done, err = m.cb.Allow()
	}
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		b.deliver(req.Context(), nil)
		return nil, b.set.refusal(m, err)
	}
	if w := e.win.Load(); w != nil {
		// The breaker closed since the attempt looked: count it in the
		// closed spell's window instead.
		done(errBreakerExcluded)
		b.deliver(req.Context(), nil)
		return b.closedAttempt(e, w, req, st)
	}
	// A probe of a half-open breaker is tracked, so that one that hangs
	// can be released.
	var pr *probe
	if e.state.Load() == int32(gobreaker.StateHalfOpen) {
		pr = b.set.addProbe(e, done)
	}
	reported := false
	defer func() {
		if !reported {
			// next or IsFailure panicked, or an observer told of the
			// change that Allow made: release the slot (a half-open
			// breaker's probe) without counting the attempt, and let
			// the panic go on.
			b.report(e, pr, done, errBreakerExcluded)
			b.deliver(req.Context(), nil)
		}
	}()
	// The changes are delivered once the slot is released on every path:
	// an observer runs the caller's code, which may panic.
	b.deliver(req.Context(), nil)
	resp, err := b.next.roundTrip(req, st)
	outcome := b.set.outcome(st, req, resp, err, nil) // IsFailure may panic
	reported = true
	b.report(e, pr, done, outcome)
	b.deliver(req.Context(), resp)
	return resp, err
}

// closedAttempt sends an attempt through a closed breaker, w being the
// window of its closed spell: a success is counted without a lock; a
// failure too, and goes to gobreaker only when it trips the breaker. An
// attempt longer than the window whose breaker the set removed meanwhile
// counts in the host's breaker (see breakerSet.rehome). A panic below
// counts nothing and holds no slot; an attempt that began in the spell's
// first Window stays counted in flight (see closedWindow.inFlightWord),
// which weighs against a trip until the spell is two Windows old at most:
// a deferred call would cost every attempt.
func (b *breakerTransport) closedAttempt(e *breakerEntry, w *closedWindow, req *http.Request, st *attemptState) (*http.Response, error) {
	start := b.set.clock(st)
	age := w.age(start)
	var p *atomic.Int64 // in flight until its outcome is known
	if age < breakerBuckets {
		p = w.inFlightWord(st, age)
		p.Add(1)
	}
	resp, err := b.next.roundTrip(req, st)
	o := b.set.outcome(st, req, resp, err, w)
	if p != nil {
		p.Add(-1) // before the outcome counts
	}
	switch o {
	case nil:
		if w.success(st, age, w.age(b.set.now())) && e.removed.Load() {
			if _, w := b.set.rehome(e, w); w != nil {
				now := w.age(b.set.now())
				w.success(st, now, now)
			}
		}
	case errBreakerFailure:
		b.set.failure(e, w, age, start, attemptTimedOut(err))
	}
	if b.set.pending.Load() {
		// The change this attempt made (a trip), or changes left
		// waiting (an observer panicked on one before them): any
		// attempt delivers them, a success too.
		b.deliver(req.Context(), resp)
	}
	return resp, err
}

// deliver delivers the queued state changes after a step of an attempt
// that got resp (nil for none), as flushClosing does; unless the limit of
// attempts in flight is above the breakers (WithMaxInFlight), which
// delivers them once the attempt has given its slot back (see
// breakerSet.deliverAbove).
func (b *breakerTransport) deliver(ctx context.Context, resp *http.Response) {
	switch {
	case b.set.deliverAbove:
	case resp == nil:
		b.set.flush(ctx)
	default:
		b.set.flushClosing(ctx, resp)
	}
}

// flushClosing delivers the queued state changes, as flush does, after an
// attempt that got resp (nil for none): an observer that panics takes
// resp from the caller, and its body is closed on the way out (see
// closeOnPanic). The attempt's deadline stops first, as when resp is
// handed over: resp is in (the Transport has read what it reads of it
// within the attempt), and the observers' time, which may be a call to the
// host, is not the attempt's to be cut by, nor its body's.
func (s *breakerSet) flushClosing(ctx context.Context, resp *http.Response) {
	if resp != nil && s.pending.Load() {
		if db, ok := resp.Body.(*deadlineBody); ok {
			db.keep()
		}
	}
	done := false
	defer closeOnPanic(resp, &done)
	s.flush(ctx)
	done = true
}

// report gives an attempt's outcome to its breaker. The outcome of a probe
// that has been released as stale (see breakerSet.releaseStaleProbes)
// counts only when it is a success: its slot went to another probe, and a
// failure or a hang is that one's to tell; but a host that answers slower
// than ProbeTimeout would see each probe replaced before it answered, and
// its breaker, its successes dropped, would never close. gobreaker drops
// the outcome when the breaker has changed state since the probe went.
func (b *breakerTransport) report(e *breakerEntry, pr *probe, done func(error), outcome error) {
	if pr == nil {
		done(outcome)
		return
	}
	if pr.reported.CompareAndSwap(false, true) {
		done(outcome)
		b.set.dropProbe(e, pr)
		return
	}
	if outcome == nil {
		done(nil) // released as stale: its slot was freed, its success still counts
	}
}

// outcome returns what the breaker counts of an attempt's result: the
// default (attemptOutcome), judged by BreakerSettings.IsFailure when it is
// set and the attempt reached the host.
//
// w is the window of the closed spell the attempt counts in, nil when the
// breaker is open or half-open: a cut by the call's budget of an attempt
// that queued for its turn or its slot (see queueCut) is not counted
// while the host answered the last attempt its breaker counted.
func (s *breakerSet) outcome(st *attemptState, req *http.Request, resp *http.Response, err error, w *closedWindow) error {
	o := attemptOutcome(st, req, resp, err)
	if o == errBreakerFailure && w != nil && w.consecutive.Load() == 0 && queueCut(st, err) && w.consecutive.CompareAndSwap(0, queueCutExcused) {
		// The host answers: the time the queue took from the attempt
		// was spent on answers to the host's other callers, and a host
		// slower than what the queue left is not a sick one. One whose
		// last counted attempt failed (a hang cut, its slot held by
		// attempts it never answered) is judged by this one too: else
		// each attempt of a host that never answers, queued behind the
		// one before it, would reach the wire with what is left of its
		// budget, less than it waited, and the breaker would never open.
		// So is a second queue cut with no success of the host between
		// (the mark queueCutExcused, which a success clears): a host
		// that answered and then died, every attempt of which waits
		// most of its budget for its turn of a busy pace or for a slot,
		// would else have each cut excused, none counted, and never
		// trip (TestBreakerPacedHostThatDiesTrips).
		o = errBreakerExcluded
	}
	if s.isFailure == nil || o == errBreakerExcluded {
		return o
	}
	var apiErr *APIError
	if st != nil {
		apiErr = st.apiErr
	}
	judged := false
	defer func() {
		if !judged && resp != nil {
			resp.Body.Close() // IsFailure panicked: the response goes nowhere
		}
	}()
	failure := s.isFailure(resp, apiErr, err, o == errBreakerFailure)
	judged = true
	switch {
	case failure:
		return errBreakerFailure
	case o == errBreakerThrottled:
		return o
	}
	return nil
}

// queueCut reports whether err, the error of the attempt of st, is a cut
// by the call's budget of an attempt that had waited, for its turn at the
// rate limiter (a pace, a pause) and for a slot of its host
// (WithMaxInFlight), as long as it then had on the wire. (st.start moved
// on by the waits: since then is the attempt's time on the wire.) A turn's
// wait is the queue's as a slot's is: a pace of one request every 9s let
// an attempt of a 10s budget go with 1s left, and a host answering in 2s
// had its breaker opened.
func queueCut(st *attemptState, err error) bool {
	if st == nil {
		return false
	}
	q := st.queued()
	return q > 0 && errors.Is(err, errBudgetSpent) && q >= time.Since(st.start)
}

// attemptTimedOut reports whether err, the error of an attempt its
// breaker counts as a failure, is a cut by the Transport's attempt timeout
// (not by the call's budget, whose cut of an attempt tells nothing of how
// long the host's other attempts may take). It runs on failures only.
func attemptTimedOut(err error) bool {
	return err != nil && errors.Is(err, ErrAttemptTimeout) && !errors.Is(err, errBudgetSpent)
}

// localResourceError reports whether err, an attempt's error, is a dial
// that failed for want of a resource of this machine: no file descriptor
// left for its socket (EMFILE, ENFILE), or no local address or port left
// to connect from (EADDRNOTAVAIL); the dial to the host's address, or the
// lookup of its name, whose own socket is then the first that fails. A
// *net.DNSError keeps the errno of its socket as text only (net's own
// words, in which no DNS server has a say): "dial udp 10.0.0.53:53:
// socket: too many open files", or the errno's text alone from the cgo
// resolver. The request never reached the host, and the host is no less
// healthy for it. It runs on errors only. On Windows, whose sockets fail
// with WSA codes these errnos do not match, it reports nothing.
func localResourceError(err error) bool {
	localResourceErrnos := [...]syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.EADDRNOTAVAIL}
	for _, errno := range localResourceErrnos {
		if errors.Is(err, errno) {
			return true
		}
	}
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || dnsErr.IsNotFound {
		return false
	}
	for _, errno := range localResourceErrnos {
		if text := errno.Error(); dnsErr.Err == text || strings.HasSuffix(dnsErr.Err, ": "+text) {
			return true
		}
	}
	return false
}

// proxyConnectError reports whether err, an attempt's error, is net/http's
// for a connection to the forward proxy that failed, its dial or its TLS
// handshake (a *net.OpError whose Op is "proxyconnect"): the request never
// reached the proxy, let alone the host, which is no less healthy for it,
// and a proxy down for a moment must not open the breakers of every host
// called through it. It runs on errors only.
func proxyConnectError(err error) bool {
	var op *net.OpError
	for errors.As(err, &op) {
		if op.Op == "proxyconnect" {
			return true
		}
		err = op.Err
	}
	return false
}

// resolverRefused reports whether err, an attempt's error, is a lookup of
// the host's name whose query the resolver refused at its address
// (ECONNREFUSED: no resolver listens there, a local stub, systemd-resolved
// or a cluster's node-local cache, restarting). The resolver is the one
// this machine is configured to ask, never the host's: a query it refused
// says nothing of the host, and a resolver down for a moment must not open
// the breakers of every host called. A *net.DNSError keeps the errno as
// text only ("read udp 127.0.0.1:41234->127.0.0.53:53: read: connection
// refused"), net's own words, as localResourceError reads them; a lookup
// that timed out, or that the resolver answered with a failure (SERVFAIL:
// the host's own name servers may be down), still counts. It runs on
// errors only.
func resolverRefused(err error) bool {
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || dnsErr.IsNotFound || dnsErr.IsTimeout {
		return false
	}
	text := syscall.ECONNREFUSED.Error()
	return dnsErr.Err == text || strings.HasSuffix(dnsErr.Err, ": "+text)
}

// attemptOutcome maps an attempt's result, classified in st when st is not
// nil, to what its breaker counts by default.
func attemptOutcome(st *attemptState, req *http.Request, resp *http.Response, err error) error {
	if err != nil || resp == nil {
		if err == nil || err == errNilResponse || errors.Is(err, http.ErrSkipAltProtocol) {
			return errBreakerExcluded // a broken or declining RoundTripper says nothing of the host
		}
		if errors.Is(err, ErrAttemptTimeout) {
			if errors.Is(err, errCallersLimit) {
				return errBreakerExcluded // the caller's own limit, as its deadline
			}
			if errors.As(err, new(*RequestError)) {
				return errBreakerExcluded // the caller's body stalled (see bodyWatch)
			}
			return errBreakerFailure
		}
		if callerGaveUp(req.Context(), cancelOf(req)) {
			return errBreakerExcluded // the caller gave up
		}
		if localResourceError(err) {
			return errBreakerExcluded // this machine ran short, not the host
		}
		if proxyConnectError(err) || resolverRefused(err) {
			return errBreakerExcluded // the proxy or the resolver failed, not the host
		}
		var cl Class
		var neverSent bool
		if st != nil && st.classified {
			cl, neverSent = st.class, st.neverSent
		} else {
			cl, neverSent = classifyErr(err)
		}
		switch {
		case errors.As(err, new(*RequestError)):
			// The caller's mistake counts against nothing, whatever
			// its class (a Classifier that retries every error
			// retries it): it says nothing of the host.
			return errBreakerExcluded
		case cl == Success:
			return nil
		case cl == Throttled:
			return errBreakerThrottled
		case cl == Permanent && neverSent:
			return errBreakerExcluded // never left this process (a bad certificate, no such host)
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
		return errBreakerThrottled
	case resp.StatusCode < 500 ||
		resp.StatusCode == http.StatusNotImplemented ||
		resp.StatusCode == http.StatusHTTPVersionNotSupported:
		return nil
	case cl == Transient:
		return errBreakerFailure
	case cl == Permanent && resp.StatusCode < 600 && statusClass(resp.StatusCode) == Permanent:
		// A 5xx that is not retried by its status alone (507, 508,
		// 511, a CDN's 525, 526 and 530, 599) is still the host
		// failing: only an explicit decision (an envelope's code or
		// retryable flag, a vendor's hint, a Classifier) that makes a
		// retryable 5xx Permanent turns it into the host's definitive
		// answer. A status past the 5xx (LinkedIn's 999 refusal of a
		// client taken for a bot) is no server failure, unless classified
		// Transient.
		return errBreakerFailure
	}
	return nil
}
