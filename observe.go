package resilient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"time"

	"github.com/resilienthttp/resilient/internal/redact"
)

// Attempt describes one attempt of a call, as given to the functions set
// with WithObserver and as logged with WithLogger. It never holds a secret:
// no query string, no body, no credential header, no error details; the
// message of Err has the URLs it quotes redacted (see Error); Code and
// RequestID, which come from the server, have the caller's credentials
// they echo and the tokens they hold REDACTED (see APIError), their control
// characters replaced by spaces, and are cut past 128 bytes; Method, Host
// and Path have their control characters replaced by spaces too.
type Attempt struct {
	Method string // the request's method; GET for an empty one, as net/http sends it
	Host   string // host[:port] of the request URL, as spelled; a name past 255 bytes is cut there (a redirect may name any), the port kept; user information put in it by hand is REDACTED ("REDACTED@api.example.com"), as is a credential in a parameter after it ("api.example.com;jsessionid=REDACTED")
	Path   string // never includes the query string; a credential in it (a webhook's token, or one the caller sent before a redirect that led here) is REDACTED; cut at 8 KiB, at a character's boundary

	Number      int // 1 for the first attempt
	MaxAttempts int // 1 + the configured retries

	StatusCode     int    // 0 when no response
	Code           string // the error envelope's code; "" when none
	RequestID      string // the server's request id, from the envelope or a header
	IdempotencyKey string // the call's idempotency key, made safe as Method is and cut past 1 KiB (the request carries it unchanged); "" when none

	Err      error         // the attempt's error, if any; its message redacted, its chain intact
	Duration time.Duration // this attempt's time to response headers or error, local waits included, and to the end of a body read within it: an error response's envelope (WithMaxPeek), a buffered body (WithBufferedResponse), the drain of a response retried past (up to 64 KiB, 2s)
	Delay    time.Duration // the wait chosen before the next attempt; 0 if there is none

	Class      Class         // the attempt's classification
	Outcome    Outcome       // what happened, for logs and metrics
	Retry      bool          // another attempt is to follow, after Delay: none does when the call ends during that wait (its context done, or its deadline reached, the time the observers and the logger took included)
	RetryAfter time.Duration // the server's Retry-After (or rate-limit reset on a 429); 0 when none
	RateLimit  RateLimitInfo // the rate-limit headers of the response, as the rate limiter read them; on a throttled answer or a 503 with a Retry-After, Reset is when that wait ends (the Retry-After wins over a reset header), also without rate-limit headers; unknown (Limit and Remaining -1, Reset zero) under WithoutRateLimit and for a partition WithRateLimitKey exempts, which the limiter does not read
	LocalWait  time.Duration // time the attempt waited for the client-side rate limiter; when a hedged copy decided it (Hedge), the attempt's own wait before it was sent and the copy's
	SlotWait   time.Duration // time the attempt waited for a slot of its host (WithMaxInFlight), also when none came in time; when a hedged copy decided it, the attempt's and the copy's, as LocalWait
	StopReason StopReason    // why no attempt follows although the outcome was retryable (or a key-required answer, retried once with a key); "" otherwise
	Hedge      int           // 0 when the attempt itself answered, n when the n-th hedged copy of it sent did
	Hedges     int           // hedged copies of this attempt sent (see WithHedging and Report.Hedges)
}

// StopReason says why a call ended after an attempt whose outcome could
// have been retried.
type StopReason string

// Reasons for not retrying a retryable outcome.
const (
	// StopUnsafeWrite: the attempt was a write that may have been
	// processed, to a host not known to deduplicate writes by key (see
	// WithKeyHonoringHosts); sending it again could perform it twice. Or
	// one the host processed, as an answer carrying a Postato platform
	// error says, whatever its retryable flag: sent again under its key,
	// it gets that answer again.
	StopUnsafeWrite StopReason = "unsafe_write"
	// StopMaxAttempts: the attempt was the last one WithMaxRetries allows.
	StopMaxAttempts StopReason = "max_attempts"
	// StopDeadline: the wait before the next attempt would pass the call's
	// budget (WithMaxElapsed) or the context's deadline; for a write not
	// resent after an ambiguous failure (see WithKeyHonoringHosts), it
	// would leave less time than the host took to answer the attempt. A
	// hop of a redirect that the hops before it left no budget ends with
	// it too, before any attempt, as does a call whose budget
	// WithMaxElapsedSpent spent whole (its Report's Outcome is then
	// OutcomeCanceled, with no attempt of its own, as under a passed
	// deadline). An attempt cut by a per-call attempt timeout given below
	// 1ms, which counts as 1ms (see WithAttemptTimeout), ends the call
	// with it too: each retry would be cut alike.
	StopDeadline StopReason = "deadline"
	// StopRetryAfterTooLong: the server asked for a wait longer than
	// WithMaxRetryAfter allows.
	StopRetryAfterTooLong StopReason = "retry_after_too_long"
	// StopBodyNotReplayable: the request body cannot be sent again; also
	// given to a Permanent answer that requires an idempotency key, which
	// the Transport would have retried once with one.
	StopBodyNotReplayable StopReason = "body_not_replayable"
	// StopCanceled: the request's context ended.
	StopCanceled StopReason = "canceled"
	// StopBackOff: the BackOff set with WithBackOff returned backoff.Stop.
	StopBackOff StopReason = "backoff_stop"
	// StopRetryBudget: the host's retry budget is spent (see RetryBudget);
	// also given to a Permanent answer that requires an idempotency key,
	// whose retry with one the budget refused.
	StopRetryBudget StopReason = "retry_budget"
)

// Outcome names what happened to an attempt.
type Outcome string

// Outcomes of an attempt.
const (
	OutcomeSuccess     Outcome = "success"
	OutcomeTransient   Outcome = "transient"
	OutcomeThrottled   Outcome = "throttled"
	OutcomePermanent   Outcome = "permanent"
	OutcomeCircuitOpen Outcome = "circuit_open"         // refused by the open breaker
	OutcomeRateLimited Outcome = "rate_limited_locally" // refused by the client-side rate limiter
	// OutcomeTooManyInFlight: refused by the host's limit of attempts in
	// flight (WithMaxInFlight), without touching the network.
	OutcomeTooManyInFlight Outcome = "too_many_in_flight"
	OutcomeCanceled        Outcome = "canceled" // the caller's context ended
)

// WithLogger logs one record per attempt to l, and one per breaker state
// change. A call whose context ends while it waits to retry gets one more,
// so that its last record does not say "retrying": of its last attempt's
// number, with stop_reason canceled and, as its duration, the part of the
// wait that passed. A hedged copy whose base (or GetBody) panicked after
// another copy decided the attempt, which no caller waits for, gets one at
// Error ("resilient: a hedged copy panicked after another decided the
// attempt"), its panic attribute made safe as an error's text is.
// Levels:
//
//   - Debug: a success at the first attempt; a call whose base declined
//     it (http.ErrSkipAltProtocol: an alternate protocol's RoundTripper,
//     see Transport), returned as it is for the http.Transport above to
//     send the request itself ("resilient: the base declined the
//     request, for net/http to send it itself");
//   - Info: a success after retries; a final answer of the API that is an
//     error of the request (a Permanent response below 500 but 408 and
//     429, such as 400, 404 or 409: the API's answer, not a failed call);
//     a call the caller canceled (its context, or the request's Cancel
//     channel closed), also as a retryable answer came, whose retry the
//     cancel ended;
//   - Warn: an attempt that will be retried;
//   - Error: a failed call: a final 5xx, 408 or 429 (also one the server
//     says not to retry), a network error, an attempt timeout, a
//     deadline (the context's, or http.Client's Timeout, which closes the
//     Cancel channel at the deadline it sets), a refusal by the breaker,
//     the rate limiter or the limit of attempts in flight
//     (WithMaxInFlight).
//
// Attributes: method, host, path, attempt, max_attempts and outcome always;
// status, code, request_id, idempotency_key, ratelimit_limit,
// ratelimit_remaining, ratelimit_reset, retry_after, delay, local_wait,
// slot_wait, error, stop_reason, hedges and hedge only when known (a status when there
// was a response, a delay when another attempt follows, hedges when copies
// of the attempt were sent, hedge when one of them answered, …); duration
// always. Records never carry the query string, bodies, credential headers
// or error details, and the server's code and request id are made safe as
// in Attempt.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		perTransport(c, "WithLogger")
		c.logger = l
	}
}

// WithAttemptHeader makes every attempt carry a header named name whose
// value is "n/max", e.g. "2/6" for the first retry of six attempts at most,
// so that the server can tell retries apart (default: off). It panics on an
// empty name, on a name that is not a valid header name, and on a header
// that carries idempotency keys (Idempotency-Key, X-Idempotency-Key, or
// the one set with WithIdempotencyHeader, which New checks): the same
// "1/6" on every call's first attempt would be a key, shared by writes
// that differ; and on a header that carries credentials or that net/http
// writes itself (Authorization, Cookie, Content-Type, Host, …). Set per call (WithCallOptions) on the Transport's key
// header, it is not sent: the key is.
func WithAttemptHeader(name string) Option {
	if name == "" {
		panic("resilient: WithAttemptHeader: empty header name")
	}
	if !isToken(name) {
		panic(fmt.Sprintf("resilient: WithAttemptHeader: invalid header name %q", name))
	}
	name = textproto.CanonicalMIMEHeaderKey(name)
	if name == DefaultIdempotencyHeader || name == "X-Idempotency-Key" {
		panic(fmt.Sprintf("resilient: WithAttemptHeader: %s carries idempotency keys", name))
	}
	if why := reservedHeader(name); why != "" {
		panic(fmt.Sprintf("resilient: WithAttemptHeader: %s %s", name, why))
	}
	return func(c *config) { c.attemptHeader = name }
}

// outcomeOf names what happened to an attempt.
func outcomeOf(c *call, st *attemptState, err error) Outcome {
	switch {
	case err != nil && errors.Is(err, ErrCircuitOpen):
		return OutcomeCircuitOpen
	case err != nil && errors.Is(err, ErrRateLimited):
		return OutcomeRateLimited
	case err != nil && errors.Is(err, ErrTooManyInFlight):
		return OutcomeTooManyInFlight
	case err != nil && c.canceled():
		return OutcomeCanceled
	}
	switch st.class {
	case Success:
		return OutcomeSuccess
	case Transient:
		return OutcomeTransient
	case Throttled:
		return OutcomeThrottled
	}
	return OutcomePermanent
}

// observe reports an attempt, sent with the idempotency key key ("" for
// none), to the observers and the logger. A record that no one gets (the
// logger alone, at a level it does not write) is not built: redaction runs
// only for what is recorded.
func (t *Transport) observe(c *call, key string, st *attemptState, resp *http.Response, err error, dur, delay time.Duration, retry bool) {
	if !t.observed {
		return
	}
	done := false
	defer closeOnPanic(resp, &done)
	outcome := outcomeOf(c, st, err)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	l := t.cfg.logger
	var level slog.Level
	var msg string
	if l != nil {
		level, msg = levelOf(c.ctx, cancelOf(c.req), retry, outcome, st.stop, st.number, status, err)
		if c.declined {
			level, msg = declinedLevel, declinedMessage
		}
		if !l.Enabled(c.ctx, level) {
			l = nil
		}
	}
	if l == nil && len(t.cfg.observers) == 0 && len(t.cfg.ctxObservers) == 0 && t.cfg.tracer == nil {
		done = true
		return
	}
	a := c.attempt(key, st.number, st.maxAttempts, err, dur)
	a.Code = serverText(st.code, c.req, maxErrorToken)
	a.RequestID = serverText(st.requestID, c.req, maxErrorToken)
	a.Delay = delay
	a.Class = st.class
	a.Outcome = outcome
	a.Retry = retry
	a.RateLimit = st.rate
	a.LocalWait = st.localWait
	a.SlotWait = st.slotWait
	a.StopReason = st.stop
	a.Hedge, a.Hedges = st.hedge, st.hedges
	if st.hasRetryAfter {
		a.RetryAfter = st.retryAfter
	}
	a.StatusCode = status
	for _, fn := range t.cfg.observers {
		fn(a)
	}
	for _, fn := range t.cfg.ctxObservers {
		fn(c.ctx, a)
	}
	if tr := t.cfg.tracer; tr != nil {
		tr.Attempt(c.ctx, a)
	}
	if l != nil {
		writeAttempt(c.ctx, l, level, msg, &a)
	}
	done = true
}

// closeOnPanic closes the body of resp, an attempt's response (nil for
// none), unless *done. It is deferred around the functions a caller plugs
// in (observers, the logger, a Tracer, a Classifier): one that panics takes
// resp from the caller, who never sees it, and its connection would leak.
func closeOnPanic(resp *http.Response, done *bool) {
	if !*done && resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
}

// logCanceledWait writes the record of a call whose context ended (with
// err) while it waited, for wait, to retry its attempt n, sent with the
// idempotency key key ("" for none): the call's last record would
// otherwise say "retrying", of a retry that never came. It is a record of
// attempt n with outcome canceled and stop_reason canceled, its duration
// the part of the wait that passed, and the attempt's key; observers,
// which count attempts, get none.
func (t *Transport) logCanceledWait(c *call, key string, n, maxAttempts int, err error, wait time.Duration) {
	if t.cfg.logger == nil {
		return
	}
	a := c.attempt(key, n, maxAttempts, err, wait)
	a.Outcome, a.StopReason = OutcomeCanceled, StopCanceled
	a.RateLimit = RateLimitInfo{Limit: -1, Remaining: -1}
	logAttempt(c.ctx, cancelOf(c.req), t.cfg.logger, &a)
}

// attempt returns the record of the call's attempt n of maxAttempts, sent
// with the idempotency key key ("" for none), which ended with err after
// dur, as far as the call knows it.
func (c *call) attempt(key string, n, maxAttempts int, err error, dur time.Duration) Attempt {
	_, host := urlKey(c.req.URL.Scheme, c.req.URL.Host)
	return Attempt{
		Method:      safeText(methodOf(c.req), maxErrorToken),
		Host:        safeText(redact.HostParams(host), redact.MaxHost+maxKeyPort),
		Path:        safeText(recordedPath(c.req), redact.MaxPath),
		Number:      n,
		MaxAttempts: maxAttempts,
		// The caller's key may be its own client's (a gateway
		// forwards it): made safe as the method is, it can neither
		// split nor reorder a log line, nor flood every record of the
		// call.
		IdempotencyKey: safeText(key, maxErrorText),
		Err:            redactRequestError(err, c.req),
		Duration:       dur,
	}
}

// methodOf returns the method of req as net/http sends it: GET for an
// empty one.
func methodOf(req *http.Request) string {
	if req.Method == "" {
		return http.MethodGet
	}
	return req.Method
}

// levelOf is the log level of the record of attempt number, and its
// message: retry says that another attempt follows, outcome, stop, status
// (0 for no response) and err (nil for none, redacted or not) are the
// attempt's; ctx is the call's context and cancel its request's Cancel
// channel.
func levelOf(ctx context.Context, cancel <-chan struct{}, retry bool, outcome Outcome, stop StopReason, number, status int, err error) (slog.Level, string) {
	switch {
	case retry:
		return slog.LevelWarn, "resilient: attempt failed, retrying"
	case outcome == OutcomeSuccess && number == 1:
		return slog.LevelDebug, "resilient: attempt"
	case outcome == OutcomeSuccess:
		return slog.LevelInfo, "resilient: call succeeded after retries"
	case outcome == OutcomePermanent && status > 0 && status < 500 &&
		status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
		// The API answered: the request is wrong (404, 409, 422, …),
		// not the call. A 408 or a 429 not to be retried (the server's
		// X-Should-Retry: false, a Classifier's word) is a failed call
		// all the same: a timeout, a throttle.
		return slog.LevelInfo, "resilient: call answered with an error"
	case (outcome == OutcomeCanceled || stop == StopCanceled) && callerCanceled(ctx, cancel, err):
		// The caller canceled it: during an attempt, or as a retryable
		// answer came, whose retry it then ended (the call returns
		// that answer, or its error, as the cancel found it).
		return slog.LevelInfo, "resilient: call canceled"
	}
	return slog.LevelError, "resilient: call failed"
}

// callerCanceled reports whether a call that its caller gave up on (see
// callerGaveUp) was canceled rather than ended by a deadline: its
// context canceled (with a cause of its own, context.WithCancelCause,
// too), or its request's Cancel channel (cancel) closed before the
// context's deadline. http.Client closes that channel at its Timeout,
// which it also sets as the context's deadline: that is a timeout, as the
// context's deadline is. err is the attempt's error, nil for none.
func callerCanceled(ctx context.Context, cancel <-chan struct{}, err error) bool {
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		return true
	case ctx.Err() != nil || !errors.Is(err, errRequestCanceled) && !isClosed(cancel):
		return false
	}
	d, ok := ctx.Deadline()
	return !ok || time.Now().Before(d)
}

// logAttempt writes the record of one attempt, if l writes its level;
// cancel is the request's Cancel channel.
func logAttempt(ctx context.Context, cancel <-chan struct{}, l *slog.Logger, a *Attempt) {
	level, msg := levelOf(ctx, cancel, a.Retry, a.Outcome, a.StopReason, a.Number, a.StatusCode, a.Err)
	if l.Enabled(ctx, level) {
		writeAttempt(ctx, l, level, msg, a)
	}
}

// writeAttempt writes the record of one attempt, at level with msg (see
// levelOf). Values that are unknown (no response, no code, no announced
// quota, no wait) are left out.
func writeAttempt(ctx context.Context, l *slog.Logger, level slog.Level, msg string, a *Attempt) {
	var buf [21]slog.Attr
	attrs := append(buf[:0],
		slog.String("method", a.Method),
		slog.String("host", a.Host),
		slog.String("path", a.Path),
		slog.Int("attempt", a.Number),
		slog.Int("max_attempts", a.MaxAttempts),
	)
	if a.StatusCode != 0 {
		attrs = append(attrs, slog.Int("status", a.StatusCode))
	}
	if a.Code != "" {
		attrs = append(attrs, slog.String("code", a.Code))
	}
	if a.RequestID != "" {
		attrs = append(attrs, slog.String("request_id", a.RequestID))
	}
	if a.IdempotencyKey != "" {
		attrs = append(attrs, slog.String("idempotency_key", a.IdempotencyKey))
	}
	if a.RateLimit.Limit >= 0 {
		attrs = append(attrs, slog.Int("ratelimit_limit", a.RateLimit.Limit))
	}
	if a.RateLimit.Remaining >= 0 {
		attrs = append(attrs, slog.Int("ratelimit_remaining", a.RateLimit.Remaining))
	}
	if !a.RateLimit.Reset.IsZero() {
		attrs = append(attrs, slog.Time("ratelimit_reset", a.RateLimit.Reset))
	}
	attrs = append(attrs, slog.String("outcome", string(a.Outcome)))
	if a.RetryAfter > 0 {
		attrs = append(attrs, slog.Duration("retry_after", a.RetryAfter))
	}
	if a.Retry {
		attrs = append(attrs, slog.Duration("delay", a.Delay))
	}
	attrs = append(attrs, slog.Duration("duration", a.Duration))
	if a.LocalWait > 0 {
		attrs = append(attrs, slog.Duration("local_wait", a.LocalWait))
	}
	if a.SlotWait > 0 {
		attrs = append(attrs, slog.Duration("slot_wait", a.SlotWait))
	}
	if a.Err != nil {
		attrs = append(attrs, slog.String("error", redactErr(a.Err)))
	}
	if a.StopReason != "" {
		attrs = append(attrs, slog.String("stop_reason", string(a.StopReason)))
	}
	if a.Hedges > 0 {
		attrs = append(attrs, slog.Int("hedges", a.Hedges))
	}
	if a.Hedge > 0 {
		attrs = append(attrs, slog.Int("hedge", a.Hedge))
	}
	l.LogAttrs(ctx, level, msg, attrs...)
}
