package resilient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Transport is an http.RoundTripper that makes calls to flaky, rate-limited
// APIs survive. For each call it stamps an idempotency key on writes, then
// runs attempts through a chain of middlewares (rate limiter, circuit
// breaker, attempt timeout, the base RoundTripper, classification) and
// retries Transient and Throttled outcomes with capped, jittered backoff,
// honoring Retry-After:
//
//	caller ── http.Client ── Transport.RoundTrip
//	                           ├─ idempotency   one key per call, the same on every attempt
//	                           ├─ retry loop    budget, backoff, Retry-After
//	                           │    per attempt:
//	                           │    ├─ rate limit   wait for the partition's turn
//	                           │    ├─ breaker      refuse at once while the host is open
//	                           │    ├─ attempt timeout (optional)
//	                           │    ├─ base RoundTripper
//	                           │    └─ classify     Success / Transient / Throttled / Permanent
//	                           └─ observer + slog  one record per attempt
//
// RoundTrip follows the http.RoundTripper contract: it never modifies the
// caller's request (an attempt that must differ from it, by its body or
// its headers, is a copy), it always closes the request body, it returns a
// response with a nil error whatever its status (the last attempt's, with
// its body readable), and an error, never with a response, only when no
// attempt produced one that can be returned.
//
// Responses it retries past are drained (at most 64 KiB) and closed so that
// their connections are reused. Waits end early when the request's context
// is done, and a wait that would pass the context's deadline or the call's
// budget is not started: the last result is returned instead.
//
// The zero Transport behaves as New(nil): http.DefaultTransport with the
// default options. A Transport is safe for concurrent use by multiple
// goroutines and starts no goroutine per request.
type Transport struct {
	cfg      config
	base     http.RoundTripper
	inner    http.RoundTripper // the per-attempt chain
	cls      *classifier
	observed bool // an observer or a logger wants each Attempt

	// The shared state of the chain's layers, for ResetHost: nil when the
	// layer is off.
	rl       *rateLimiter
	breakers *breakerSet

	zeroOnce sync.Once  // the zero Transport builds zeroImpl on first use
	zeroImpl *Transport // New(nil), for the zero Transport

	// states recycles the attempt states of finished calls: no layer keeps
	// one past its call, so a call's state goes back when RoundTrip returns.
	states sync.Pool
}

// A Middleware wraps a RoundTripper with one concern of the chain.
type Middleware func(http.RoundTripper) http.RoundTripper

// Chain returns base wrapped in mws, mws[0] being the outermost: a request
// goes through mws[0], then mws[1], …, then base. Nil middlewares are
// skipped. A nil base means http.DefaultTransport.
func Chain(base http.RoundTripper, mws ...Middleware) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	rt := base
	for i := len(mws) - 1; i >= 0; i-- {
		if mws[i] != nil {
			rt = mws[i](rt)
		}
	}
	return rt
}

// New returns a Transport that sends attempts through base; a nil base
// means http.DefaultTransport. It panics on an invalid option value, such
// as a negative duration.
func New(base http.RoundTripper, opts ...Option) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	t := &Transport{cfg: cfg, base: base, observed: len(cfg.observers) > 0 || cfg.logger != nil}
	t.cls = &classifier{
		codes:    newCodeTable(cfg.codes),
		custom:   cfg.classifier,
		maxPeek:  cfg.maxPeek,
		observed: t.observed,
	}
	t.inner = Chain(base,
		t.rateLimitMiddleware(),
		t.breakerMiddleware(),
		timeoutMiddleware(cfg.attemptTimeout),
		func(next http.RoundTripper) http.RoundTripper { t.cls.next = next; return t.cls },
	)
	return t
}

// NewClient returns an http.Client whose Transport is New(nil, opts...).
func NewClient(opts ...Option) *http.Client {
	return &http.Client{Transport: New(nil, opts...)}
}

// CloseIdleConnections closes the idle connections of the base
// RoundTripper, when it has such a method, so that
// http.Client.CloseIdleConnections reaches it. The Transport itself never
// calls it.
func (t *Transport) CloseIdleConnections() {
	base := t.base
	if base == nil { // the zero Transport
		base = http.DefaultTransport
	}
	if c, ok := base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// maxDrain bounds how much of a response retried past is read so that its
// connection can be reused; a longer body is closed unread.
const maxDrain = 64 << 10

// RoundTrip sends req, retrying as configured. See Transport for the rules.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.inner == nil {
		t.zeroOnce.Do(func() { t.zeroImpl = New(nil) })
		return t.zeroImpl.RoundTrip(req)
	}
	var body replayBody
	body.init(req, t.cfg.maxBufferedBody)
	defer body.close()
	if req.URL == nil {
		return nil, errors.New("resilient: nil Request.URL")
	}
	c := call{t: t, req: req, ctx: req.Context(), start: time.Now()}
	c.key, c.stampKey = t.idempotencyKey(req)
	c.safe = isIdempotentMethod(req.Method) || c.key != ""
	c.setDeadline()
	maxAttempts := t.cfg.maxRetries + 1

	if c.ctx.Err() != nil {
		// Done before the first attempt: no layer of the chain is called,
		// and the deferred close releases the body.
		return nil, &Error{Method: req.Method, URL: redactURL(req.URL), Attempts: 0, Err: context.Cause(c.ctx)}
	}

	var held *http.Response // the last response retried past, kept for give-up
	reqBody, sameBody := body.first()
	st, _ := t.states.Get().(*attemptState) // reset for each attempt
	if st == nil {
		st = new(attemptState)
	}
	defer t.putState(st)
	for n := 1; ; n++ {
		*st = attemptState{number: n, maxAttempts: maxAttempts, deadline: c.deadline, rate: RateLimitInfo{Limit: -1, Remaining: -1}}
		areq := c.attemptRequest(n, maxAttempts, reqBody, sameBody && n == 1)

		t0 := c.start
		if n > 1 {
			t0 = time.Now()
		}
		resp, err := roundTripNext(t.inner, areq, st)
		var dur time.Duration
		if t.observed {
			dur = time.Since(t0)
		}
		if err != nil && resp != nil {
			// A broken RoundTripper; the contract allows only one of them.
			resp.Body.Close()
			resp = nil
		}
		if err == nil && resp == nil {
			err = errors.New("resilient: RoundTripper returned a nil response and a nil error")
		}
		if !st.classified {
			t.cls.classify(st, resp, err, time.Now)
		}

		delay, retry := c.decide(n, maxAttempts, st, resp, err, &body)
		if retry {
			var berr error
			if reqBody, berr = body.next(); berr != nil {
				// Give up with what the attempt produced; without a
				// response, say why no retry followed.
				retry, delay = false, 0
				if resp == nil {
					err = fmt.Errorf("%w; %w", err, berr)
				}
			}
		}
		t.observe(&c, areq, st, resp, err, dur, delay, retry)

		if !retry {
			if resp == nil && held != nil && refusedLocally(err) {
				// A retry refused locally (breaker open, rate limited):
				// return what the last attempt produced. A network
				// error, even one that proves the request never left
				// (a refused dial), is returned as an *Error.
				return held, nil
			}
			if held != nil {
				held.Body.Close()
			}
			if resp != nil {
				return resp, nil
			}
			return nil, &Error{Method: req.Method, URL: redactURL(req.URL), Attempts: n, Err: err}
		}
		if resp != nil {
			if held != nil {
				held.Body.Close()
			}
			held = holdResponse(resp)
		}
		if delay > 0 {
			if err := sleep(c.ctx, delay); err != nil {
				if reqBody != nil {
					reqBody.Close()
				}
				if held != nil {
					held.Body.Close()
				}
				return nil, &Error{Method: req.Method, URL: redactURL(req.URL), Attempts: n, Err: err}
			}
		}
	}
}

// putState returns a finished call's attempt state to the pool, cleared so
// that it holds no response data.
func (t *Transport) putState(st *attemptState) {
	*st = attemptState{}
	t.states.Put(st)
}

// call is the state of one RoundTrip.
type call struct {
	t        *Transport
	req      *http.Request
	ctx      context.Context
	start    time.Time
	deadline time.Time // the earlier of the context's deadline and start+maxElapsed; zero for none
	key      string    // the idempotency key of this call; "" for none
	stampKey bool      // key must be set on each attempt (the caller did not set the header)
	keyRetry bool      // a key-required answer was already retried with a new key
	safe     bool      // the call may be repeated: an idempotent method, or a key
	header   http.Header
	bo       *expBackoff
}

func (c *call) setDeadline() {
	if c.t.cfg.maxElapsed > 0 {
		c.deadline = c.start.Add(c.t.cfg.maxElapsed)
	}
	if d, ok := c.ctx.Deadline(); ok && (c.deadline.IsZero() || d.Before(c.deadline)) {
		c.deadline = d
	}
}

// attemptRequest returns the request of attempt n: the caller's own when
// the attempt sends it unchanged (its first attempt, with its own body and
// headers), else a copy with the attempt's body and headers. The caller's
// request is never modified.
func (c *call) attemptRequest(n, maxAttempts int, body io.ReadCloser, callerBody bool) *http.Request {
	h := c.headers(n, maxAttempts)
	if h == nil && callerBody {
		return c.req
	}
	areq := new(http.Request)
	*areq = *c.req
	areq.Body = body
	if h != nil {
		areq.Header = h
	}
	return areq
}

// headers returns the attempt's own header map when it must differ from the
// caller's (an idempotency key to stamp, or the attempt header), else nil.
func (c *call) headers(n, maxAttempts int) http.Header {
	if c.stampKey && c.header == nil {
		c.header = c.req.Header.Clone()
		if c.header == nil {
			c.header = make(http.Header, 1)
		}
		c.header.Set(c.t.cfg.idempotencyHeader, c.key)
	}
	h := c.header
	if name := c.t.cfg.attemptHeader; name != "" {
		if h == nil {
			h = c.req.Header
		}
		h = h.Clone()
		if h == nil {
			h = make(http.Header, 1)
		}
		h.Set(name, strconv.Itoa(n)+"/"+strconv.Itoa(maxAttempts))
	}
	return h
}

// decide returns whether attempt n is followed by another, and the wait
// before it.
func (c *call) decide(n, maxAttempts int, st *attemptState, resp *http.Response, err error, body *replayBody) (time.Duration, bool) {
	if c.ctx.Err() != nil || n >= maxAttempts {
		return 0, false
	}
	if resp != nil && c.needsKey(st) {
		// The server requires a key this call lacked: add one and retry
		// once, at once. This is the only case a Permanent outcome is
		// retried.
		c.key, c.stampKey, c.keyRetry, c.safe = newIdempotencyKey(), true, true, true
		c.header = nil
		return 0, body.replayable()
	}
	if !st.class.Retryable() {
		return 0, false
	}
	if !c.safe {
		// A write without a key must not reach the server twice: retry
		// it only when it provably never left, or the server refused it
		// with 429 before processing it.
		if !(resp != nil && resp.StatusCode == http.StatusTooManyRequests) && !(err != nil && st.neverSent) {
			return 0, false
		}
	}
	if !body.replayable() {
		return 0, false
	}
	if c.bo == nil {
		c.bo = &expBackoff{base: c.t.cfg.backoffBase, maxDelay: c.t.cfg.backoffMax, rand: c.t.cfg.rand}
	}
	delay := c.bo.NextBackOff()
	if st.hasRetryAfter {
		if st.retryAfter > c.t.cfg.maxRetryAfter {
			return 0, false
		}
		delay = st.retryAfter + retryAfterSpread(st.retryAfter, c.t.cfg.rand)
	}
	if !c.deadline.IsZero() && time.Now().Add(delay).After(c.deadline) {
		return 0, false
	}
	return delay, true
}

// refusedLocally reports whether err is a layer of the chain refusing an
// attempt without touching the network.
func refusedLocally(err error) bool {
	return errors.Is(err, ErrCircuitOpen) || errors.Is(err, ErrRateLimited)
}

// sleep waits for d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-timer.C:
		return nil
	}
}

// holdResponse keeps resp for a give-up that may follow: it reads at most
// maxDrain bytes of its body into memory and closes the original, so that
// the connection is reused. A longer body is cut there, and reading past
// the cut returns an error.
func holdResponse(resp *http.Response) *http.Response {
	var data []byte
	eof := false
	if pb, ok := resp.Body.(*prefixBody); ok && pb.eof && pb.err == nil {
		data, eof = pb.prefix, true
	} else {
		var err error
		data, eof, err = readPrefix(resp.Body, resp.ContentLength, maxDrain)
		if err != nil {
			eof = false
		}
	}
	resp.Body.Close()
	var rest io.Reader = bytes.NewReader(data)
	if !eof {
		rest = io.MultiReader(rest, errReader{errBodyTruncated})
	}
	resp.Body = io.NopCloser(rest)
	return resp
}

// errBodyTruncated is returned by the body of a response the Transport held
// after retrying past it, beyond the part it kept.
var errBodyTruncated = errors.New("resilient: response body truncated after a retry")

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
