package resilient

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Hedging sends a copy of an attempt that has not answered after a delay,
// to cut the slow tail of a host's latencies: the first answer wins, the
// other copies are canceled, and their responses closed. When the attempt
// itself fails, no new copy is sent (nor once the host answered it, or a
// copy sent, with an error status, whose body is still read for its
// envelope, nor once a copy sent failed: a next copy would be a retry
// without its backoff; a keyed write's 409, another copy holding the key,
// is no failure), and the copies in flight get one delay more to answer
// (not past the call's deadline, nor once its caller gave up); then they
// are canceled, and the attempt fails
// as it would have without them. When every copy failed, the answer that
// asks for the longest wait (a 429's Retry-After) decides the attempt, so
// that its retry waits as long as the host asked any copy to (a 503's
// Retry-After past WithMaxRetryAfter, which the call would not wait for,
// counts as no wait: it does not end the call).
//
// Only requests that are safe to send twice are hedged: GET, HEAD and
// OPTIONS, and writes that carry a key to a host the caller says
// deduplicates by key: named with WithKeyHonoringHosts, or under a key the
// caller set (not a host learned from its answers, which may stop
// deduplicating without saying so); not a request to switch protocols (an
// Upgrade header: a WebSocket's handshake) nor a CONNECT (a proxy's
// tunnel, an HTTP/2 extended CONNECT's WebSocket), keyed or not, whose
// answer is a connection of its own: a copy would open a second, a session
// the server sets up for nothing; and only when their body can be sent again
// concurrently: no body, GetBody, or a body captured as the attempt sent
// it (no GetBody, not over WithMaxBufferedBody), once the attempt has sent
// it whole (a body rewound by seeking, a file, is not). A GetBody of a body
// not in memory (see memoryBody) may rewind one source that every body it makes reads (a file
// seeked back to its start), which a plain client's GetBody may do: it is
// called only once the body was sent (a 307's). A copy calls it so too:
// only once the body made before, the attempt's or an earlier copy's, was
// read to its end (io.EOF: net/http reads past ContentLength bytes to check
// that the body ends there) or closed, or when its reader has not begun to
// read it (a connection still being dialed): the copy then takes it over
// (TestHedgingCopyTakesOverUnreadBody), and the attempt, should it get to
// send it once the copy's body was sent, sends a body of its own from
// GetBody, as a next copy would: a copy that read the body and then gets a
// 503 or hangs does not fail it (TestHedgingTakenOverBodyReadByCopyRenewed);
// a GetBody that fails then ends the call, as a retry's that fails does: no
// later copy or retry asks it again, and the call's error, GetBody's, says
// the error of the copy that sent the body too, when it failed (a reset).
// While the copy's body is still being sent, the attempt fails without
// reading the source, a failure that does not cut the copies' time to
// answer, nor stands for a copy's that fails after it (the call that ends
// there says the copy's: TestHedgingTakenOverAttemptFailsWithCopysError), unless the copy gave the body back before that Read: a copy
// that a layer refused, or whose request failed
// before its body was read (a refused dial), does, and the attempt sends
// its body as without hedging (TestHedgingRefusedCopyLeavesUnreadBody,
// TestHedgingFailedCopyLeavesUnreadBody); else the copy is not sent, as a
// copy of a captured body still being sent (TestHedgingCopyGetBodyAfterAttemptSentBody).
// A body in memory is none of this: copies read its bytes, not GetBody
// (see memoryBody). Every copy carries
// the same idempotency key, goes through the rate limiter, and spends one retry
// from the host's retry budget; none is sent while the host is paused
// after a 429 or its announced quota is spent (a copy waits for no reset:
// TestHedgingNoWaitForSpentQuota), its breaker is not closed, or it has no slot free
// (WithMaxInFlight) or no token of its pace (WithRateLimit) at once (a
// copy never waits for either), nor while a QuotaStore paces the quota the
// host announced, to this Transport or to another member of the fleet (the
// store held a token for an attempt to send later, within MaxBelievedReset
// and since the host's last ResetHost; a copy the store answers with a wait
// or no token is refused at once), for a store's token is never
// given back: each copy that lost would cost the fleet one; nor for a call
// allowed no retry (WithMaxRetries(0)), which is one request, nor once the caller gave up
// on the call or its deadline (the context's, WithMaxElapsed's) passed,
// whether or not the attempt has returned yet. A copy that never reaches the
// wire (refused by the rate limiter, the breaker or the limit of attempts
// in flight, declined by the base with http.ErrSkipAltProtocol, which
// stops no later copy, canceled while it waits for the rate limiter
// because another copy answered, whose body GetBody failed to make, or made only once
// the attempt was decided or the call ended, or whose captured body, or
// the body before that a GetBody of the caller's own may share, was still
// being sent) gives back what it spent, and is no hedge: it is
// not counted (Report.Hedges, Attempt.Hedges) nor numbered (the copies sent
// are hedges 1, 2, … in the order they reach the wire), but for one the
// base declines only after its attempt was decided, counted then as sent
// (see Report.Hedges). A copy sent whose
// body, from GetBody, broke before the server could act on it (a
// RequestError: the caller's mistake) gives back what it spent too, as an
// attempt's does, and counts as sent. A copy of a keyed
// write that gets no answer after it may have been sent (its connection
// lost, or a gateway's 502 or 504 that the server behind it did not
// answer: see noAnswerBehind) is an attempt lost, whichever copy's result the attempt returns:
// a 409 to a retry that follows is the server still holding the key, and
// is retried with the same key, as after an attempt lost. Hedges of a host
// are also bounded to one in twenty of its calls (plus ten), so that a
// host that slows down as a whole is not sent twice the load. Copies are paid for
// from the retry budget: a Transport without one (WithoutRetryBudget)
// sends none.
//
// With WithBufferedResponse, a copy that gets a success reads its body
// within its attempt, and answers once it has read it: a copy whose body
// breaks or stalls does not win, and the host's latencies include the
// reads.
//
// A host's hedge allowance and the latencies an adaptive Delay reads are
// kept with its retry budget: the address's, which the virtual hosts
// behind it share (see RetryBudget), as the load copies add is the
// server's the connection goes to. The hosts that find the table of
// retry budgets full share one budget (see RetryBudget), not their
// latencies: an adaptive Delay sends them no copy.
//
// The zero value hedges adaptively, at the host's recent latency at the
// 0.95 quantile, once the host has answered 20 times.
type Hedging struct {
	// Delay is how long an attempt may go unanswered before a copy is
	// sent, from when it is sent: its wait for the rate limiter or for a
	// slot of its host (WithMaxInFlight) does not count, and no copy is
	// sent while it waits. Zero means adaptive: the host's recent time
	// to response headers at Quantile, counted from the send too, and at
	// least 2ms; no copy is sent before the host has answered 20 times.
	// A fixed Delay below 1ms is taken for a units mistake (1, meant as a
	// second, is 1ns: a copy of nearly every request at once): New panics
	// on it; given per call (WithCallOptions), it counts as 1ms.
	Delay time.Duration

	// MaxHedges is how many copies an attempt may get, one Delay apart
	// (default 1).
	MaxHedges int

	// Quantile is the quantile of the host's latencies an adaptive Delay
	// waits for, in (0, 1) (default 0.95).
	Quantile float64
}

// Defaults and bounds of Hedging.
const (
	DefaultHedgeQuantile = 0.95
	minHedgeDelay        = 2 * time.Millisecond
	minHedgeSamples      = 20
	hedgeShare           = 0.05 // of a host's calls, at most, get a copy
	// hedgeBurst is the most copies a host's hedge allowance holds, and
	// what it starts with: slow answers come in clusters, and with room
	// for one copy a quarter of them would find the allowance spent (a
	// 2% slow tail keeps 0.5% of calls slow, and its p99.9 with them).
	hedgeBurst = 10
)

// WithHedging turns hedging on (see Hedging); it applies per call too (see
// WithCallOptions). It panics if a value is negative, or if Quantile is not
// in [0, 1).
func WithHedging(h Hedging) Option {
	mustNotBeNegative("WithHedging Delay", h.Delay)
	mustNotBeNegative("WithHedging MaxHedges", h.MaxHedges)
	if h.Quantile < 0 || h.Quantile >= 1 || math.IsNaN(h.Quantile) {
		panic(fmt.Sprintf("resilient: WithHedging Quantile: %v is not in [0, 1)", h.Quantile))
	}
	if h.MaxHedges == 0 {
		h.MaxHedges = 1
	}
	if h.Quantile == 0 {
		h.Quantile = DefaultHedgeQuantile
	}
	return func(c *config) { c.hedging = &h }
}

// WithoutHedging turns hedging off (the default), for instance for one
// call of a Transport that hedges.
func WithoutHedging() Option {
	return func(c *config) { c.hedging = nil }
}

// errHedgeLost is the cause of a copy canceled because another answered
// first.
var errHedgeLost = errors.New("resilient: another copy of the attempt answered first")

// hedgeable reports whether the call's attempts may be hedged.
func (c *call) hedgeable(req *http.Request) bool {
	if c.cfg.hedging == nil || c.cfg.maxRetries == 0 || c.t.budgets == nil {
		return false // a call allowed no retry is one request (WithMaxRetries)
	}
	if hasBody(req) && req.GetBody == nil && (c.capture == nil || c.capture.seeker != nil) {
		return false // a body rewound by seeking has one reader at a time
	}
	if c.hostBudget() == nil {
		return false // no budget to spend: a request without a host
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	case http.MethodConnect:
		// A tunnel (a proxy's, an HTTP/2 extended CONNECT's WebSocket):
		// its answer is a connection of its own, as an Upgrade's 101 is
		// (see switchesProtocols), keyed or not: a copy opens a second.
		return false
	}
	// A keyed write only on the caller's word that its host dedupes:
	// named, or its key set by the caller. A host learned from its
	// answers is not hedged to: a copy is a second send with no failure
	// to recover from, and a host that stopped deduplicating (rolled
	// back) says so in no answer, its copies canceled once one answers.
	return c.write && c.key != "" && (c.callerKey || c.t.keys.isNamed(c.req.URL.Scheme, c.req.URL.Host))
}

// hedgeDelay returns the wait before the first copy, or false when none is
// sent.
func (c *call) hedgeDelay(hb *hostBudget) (time.Duration, bool) {
	h := c.cfg.hedging
	if h.Delay > 0 {
		return h.Delay, true
	}
	if hb == &c.t.budgets.overflow {
		// The hosts beyond the table of budgets share one, not their
		// latencies: one host's would time another's copies.
		return 0, false
	}
	lat := hb.latencies()
	d, ok := lat.quantile(h.Quantile)
	return max(d, minHedgeDelay), ok
}

// hedgeAllowed reports whether a copy may be sent now, and spends what it
// costs: the host's breaker is closed, it is not paused, and its retry
// budget and hedge allowance pay for it.
func (c *call) hedgeAllowed(req *http.Request, hb *hostBudget) bool {
	t := c.t
	if t.breakers != nil {
		if e := t.breakers.get(req, nil); e != nil && e.state.Load() != int32(gobreaker.StateClosed) {
			return false
		}
	}
	if t.rl != nil && t.rl.paused(req) {
		return false
	}
	if t.bulkhead != nil && t.bulkhead.full(req) {
		return false // a copy does not wait for a slot (WithMaxInFlight)
	}
	if !hb.takeHedge() {
		return false
	}
	paid := false
	defer func() {
		if !paid {
			// No copy is sent: it costs nothing, also when a
			// SharedBudget's Withdraw panicked.
			hb.returnHedge()
		}
	}()
	paid = t.budgets.withdraw(hb, false)
	return paid
}

// live reports whether the call may still send a copy, due delay after the
// attempt it copies: its caller has not given up on it (see canceled), and
// its deadline, the context's or the budget's (WithMaxElapsed), leaves the
// copy what a retry after an attempt that took delay would need (see
// leastLeft): a copy left less would be cut before the host could answer
// it. The attempt itself fails at the deadline, but only once the base
// returns, which a base that does not watch its context may not do for a
// while.
func (c *call) live(delay time.Duration) bool {
	return !c.canceled() && (c.deadline.IsZero() || c.t.clock.now().Add(c.leastLeft(delay)).Before(c.deadline))
}

// paused reports whether req's partition is paused after a 429.
func (rl *rateLimiter) paused(req *http.Request) bool {
	var clock lazyNow
	return rl.pauseEnd(req, &clock, false).After(clock.get())
}

// takeHedge spends one copy of the host's hedge allowance.
func (b *hostBudget) takeHedge() bool {
	_, ok := takeTokens(&b.hedgeTokens, budgetUnit)
	return ok
}

// returnHedge gives back to the host's hedge allowance the copy that
// takeHedge spent, when that copy is not sent after all.
func (b *hostBudget) returnHedge() {
	addTokens(&b.hedgeTokens, budgetUnit, hedgeBurst*budgetUnit)
}

// depositHedge credits a call of the host to its hedge allowance, and
// reports whether the allowance was not full.
func (b *hostBudget) depositHedge() bool {
	const share, burst = hedgeShare * budgetUnit, hedgeBurst * budgetUnit
	_, changed := addTokens(&b.hedgeTokens, share, burst)
	return changed
}
