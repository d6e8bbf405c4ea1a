package resilient

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/textproto"
	"time"
)

// Attempt describes one attempt of a call, as given to the functions set
// with WithObserver and as logged with WithLogger. It never holds a secret:
// no query string, no body, no credential header, no error details.
type Attempt struct {
	Method string
	Host   string // host[:port] of the request URL
	Path   string // never includes the query string

	Number      int // 1 for the first attempt
	MaxAttempts int // 1 + the configured retries

	StatusCode     int    // 0 when no response
	Code           string // the error envelope's code; "" when none
	RequestID      string // the server's request id, from the envelope or a header
	IdempotencyKey string // the call's idempotency key; "" when none

	Err      error         // the attempt's error, if any
	Duration time.Duration // this attempt's time to response headers or error, local waits included
	Delay    time.Duration // the wait chosen before the next attempt; 0 if there is none

	Class      Class         // the attempt's classification
	Outcome    Outcome       // what happened, for logs and metrics
	Retry      bool          // another attempt follows
	RetryAfter time.Duration // the server's Retry-After (or rate-limit reset on a 429); 0 when none
	RateLimit  RateLimitInfo // the rate-limit headers of the response
	LocalWait  time.Duration // time the attempt waited for the client-side rate limiter
	StopReason StopReason    // why no attempt follows although the outcome was retryable; "" otherwise
}

// StopReason says why a call ended after an attempt whose outcome could
// have been retried.
type StopReason string

// Reasons for not retrying a retryable outcome.
const (
	// StopUnsafeWrite: the attempt was a write that may have been
	// processed, to a host not known to deduplicate writes by key (see
	// WithKeyHonoringHosts); sending it again could perform it twice.
	StopUnsafeWrite StopReason = "unsafe_write"
	// StopMaxAttempts: the attempt was the last one WithMaxRetries allows.
	StopMaxAttempts StopReason = "max_attempts"
	// StopDeadline: the wait before the next attempt would pass the call's
	// budget (WithMaxElapsed) or the context's deadline.
	StopDeadline StopReason = "deadline"
	// StopRetryAfterTooLong: the server asked for a wait longer than
	// WithMaxRetryAfter allows.
	StopRetryAfterTooLong StopReason = "retry_after_too_long"
	// StopBodyNotReplayable: the request body cannot be sent again.
	StopBodyNotReplayable StopReason = "body_not_replayable"
	// StopCanceled: the request's context ended.
	StopCanceled StopReason = "canceled"
	// StopRetryBudget: the host's retry budget is spent (see RetryBudget).
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
	OutcomeCanceled    Outcome = "canceled"             // the caller's context ended
)

// WithLogger logs one record per attempt to l, and one per breaker state
// change. Levels: a first-try success at Debug, a success after retries at
// Info, an attempt that will be retried at Warn, a final failure at Error.
// Attributes: method, host, path, attempt, max_attempts, status, code,
// request_id, idempotency_key, ratelimit_limit, ratelimit_remaining,
// ratelimit_reset, outcome, delay, duration, local_wait and error. Records
// never carry the query string, bodies, credential headers or error details.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		perTransport(c, "WithLogger")
		c.logger = l
	}
}

// WithAttemptHeader makes every attempt carry a header named name whose
// value is "n/max", e.g. "2/6" for the first retry of six attempts at most,
// so that the server can tell retries apart (default: off). It panics on an
// empty name.
func WithAttemptHeader(name string) Option {
	if name == "" {
		panic("resilient: WithAttemptHeader: empty header name")
	}
	return func(c *config) { c.attemptHeader = textproto.CanonicalMIMEHeaderKey(name) }
}

// outcomeOf names what happened to an attempt.
func outcomeOf(ctx context.Context, st *attemptState, err error) Outcome {
	switch {
	case err != nil && errors.Is(err, ErrCircuitOpen):
		return OutcomeCircuitOpen
	case err != nil && errors.Is(err, ErrRateLimited):
		return OutcomeRateLimited
	case err != nil && ctx.Err() != nil:
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

// observe reports an attempt to the observers and the logger.
func (t *Transport) observe(c *call, areq *http.Request, st *attemptState, resp *http.Response, err error, dur, delay time.Duration, retry bool) {
	if !t.observed {
		return
	}
	a := Attempt{
		Method:         c.req.Method,
		Host:           c.req.URL.Host,
		Path:           c.req.URL.Path,
		Number:         st.number,
		MaxAttempts:    st.maxAttempts,
		Code:           st.code,
		RequestID:      st.requestID,
		IdempotencyKey: c.key,
		Err:            err,
		Duration:       dur,
		Delay:          delay,
		Class:          st.class,
		Outcome:        outcomeOf(c.ctx, st, err),
		Retry:          retry,
		RateLimit:      st.rate,
		LocalWait:      st.localWait,
		StopReason:     st.stop,
	}
	if a.Method == "" {
		a.Method = http.MethodGet
	}
	if st.hasRetryAfter {
		a.RetryAfter = st.retryAfter
	}
	if resp != nil {
		a.StatusCode = resp.StatusCode
	}
	for _, fn := range t.cfg.observers {
		fn(a)
	}
	if t.cfg.logger != nil {
		logAttempt(c.ctx, t.cfg.logger, &a)
	}
}

// levelOf is the log level of an attempt's record.
func levelOf(a *Attempt) slog.Level {
	switch {
	case a.Retry:
		return slog.LevelWarn
	case a.Outcome == OutcomeSuccess && a.Number == 1:
		return slog.LevelDebug
	case a.Outcome == OutcomeSuccess:
		return slog.LevelInfo
	}
	return slog.LevelError
}

// logAttempt writes the record of one attempt.
func logAttempt(ctx context.Context, l *slog.Logger, a *Attempt) {
	level := levelOf(a)
	if !l.Enabled(ctx, level) {
		return
	}
	attrs := [...]slog.Attr{
		slog.String("method", a.Method),
		slog.String("host", a.Host),
		slog.String("path", a.Path),
		slog.Int("attempt", a.Number),
		slog.Int("max_attempts", a.MaxAttempts),
		slog.Int("status", a.StatusCode),
		slog.String("code", a.Code),
		slog.String("request_id", a.RequestID),
		slog.String("idempotency_key", a.IdempotencyKey),
		slog.Int("ratelimit_limit", a.RateLimit.Limit),
		slog.Int("ratelimit_remaining", a.RateLimit.Remaining),
		slog.Time("ratelimit_reset", a.RateLimit.Reset),
		slog.String("outcome", string(a.Outcome)),
		slog.Duration("delay", a.Delay),
		slog.Duration("duration", a.Duration),
		slog.Duration("local_wait", a.LocalWait),
		slog.String("error", redactErr(a.Err)),
		{}, // stop_reason, when there is one
	}
	n := len(attrs) - 1
	if a.StopReason != "" {
		attrs[n] = slog.String("stop_reason", string(a.StopReason))
		n++
	}
	msg := "resilient: attempt"
	switch level {
	case slog.LevelWarn:
		msg = "resilient: attempt failed, retrying"
	case slog.LevelError:
		msg = "resilient: call failed"
	case slog.LevelInfo:
		msg = "resilient: call succeeded after retries"
	}
	l.LogAttrs(ctx, level, msg, attrs[:n]...)
}
