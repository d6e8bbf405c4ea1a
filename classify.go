package resilient

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"time"
)

// Class is the decision about one attempt's result.
type Class int

const (
	// Success means the call is done: a response below 400. 3xx responses
	// are successes too: they are never retried.
	Success Class = iota
	// Transient means a retry with backoff can help: 408, 500, 502, 503,
	// 504, 529, a CDN's 520–524 (the origin behind it failed, could not
	// be reached or did not answer in time), a retryable envelope code or
	// a network error.
	Transient
	// Throttled means the server asked the client to slow down: retry
	// after the server's wait (Retry-After or the rate-limit reset).
	Throttled
	// Permanent means a retry cannot help until something is fixed.
	Permanent
)

// String returns the class's lower-case name, as used in log records.
func (c Class) String() string {
	switch c {
	case Success:
		return "success"
	case Transient:
		return "transient"
	case Throttled:
		return "throttled"
	case Permanent:
		return "permanent"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Retryable reports whether the class may be retried.
func (c Class) Retryable() bool { return c == Transient || c == Throttled }

// A Classifier decides the class of one attempt. It is called once per
// attempt with the response (nil on a network error), the parsed error
// (nil for a response below 400; without a recognized envelope, it holds
// the status and the request id of the headers only), the network error
// (nil when there is a response) and def, the default decision, vendor
// hints (Stripe-Should-Retry, X-Should-Retry) included: a Classifier
// decides after them. Returning def keeps the default; a Classifier that
// handles only some cases composes with the default by returning def for
// the others:
//
//	resilient.WithClassifier(func(resp *http.Response, e *resilient.APIError, err error, def resilient.Class) resilient.Class {
//		if resp != nil && resp.StatusCode == http.StatusConflict {
//			return resilient.Transient // this API's 409 means "try again"
//		}
//		return def
//	})
//
// A response below 400 that the Classifier makes Transient or Throttled (a
// 202 that says "come back later") is retried after its Retry-After, as an
// error response is.
//
// The method-safety rule still applies to what the Classifier decides: a
// write without an idempotency key is not retried after it may have been
// sent, whatever its class.
//
// A value that is none of the four classes (Class(9)) counts as
// Permanent, for the retry, the breaker and the observers alike.
type Classifier func(resp *http.Response, apiErr *APIError, err error, def Class) Class

// WithClassifier replaces the decision with c, which receives the default
// decision and may keep it. A nil c restores the default.
func WithClassifier(c Classifier) Option {
	return func(cfg *config) { cfg.classifier = c }
}

// WithCodes adds envelope codes to the built-in tables, or overrides their
// class. Codes are matched exactly, except that an entry for one of the
// common throttling codes of DefaultCodes, under any of its spellings,
// also applies to the spellings it matches (any case, '-' for '_') that
// have no entry of their own; the spelling DefaultCodes lists wins over
// the others. WithCodes copies codes. It panics on a class that is not
// one of the four (Class(9) was taken for Permanent), and on an empty
// code, which no envelope has: one without a code is classified by its
// status.
func WithCodes(codes map[string]Class) Option {
	for code, cl := range codes {
		if code == "" {
			panic(fmt.Sprintf("resilient: WithCodes: empty code (class %v): no envelope has one", cl))
		}
		if cl < Success || cl > Permanent {
			panic(fmt.Sprintf("resilient: WithCodes: code %q: %v is not Success, Transient, Throttled or Permanent", code, cl))
		}
	}
	cp := maps.Clone(codes)
	return func(c *config) {
		perTransport(c, "WithCodes")
		if c.codes == nil {
			c.codes = make(map[string]Class, len(cp))
		}
		maps.Copy(c.codes, cp)
	}
}

// WithMaxPeek sets how much of an error body is read to find its envelope
// (default 64 KiB). A body that came compressed (a Content-Encoding of
// gzip or deflate that net/http left in place) is parsed as it decodes, at
// most n bytes of it too. The caller still reads every byte of the body,
// as it came: the bytes read, then the rest. The read is bounded in time
// too, by the attempt's deadline (WithAttemptTimeout, WithMaxElapsed, the
// context's) and by 2 s: a body still arriving after 1 s (a server that sends it
// slowly) is handed over as it is, the envelope read from the bytes that
// came, and the caller reads the rest as it arrives; one whose read
// stalls until 2 s have passed is cut there (a body that the attempt's
// context does not reach, a base's own, by closing it half a second
// later), and yields the bytes read, then the error that cut it. Zero
// turns envelope parsing off: responses are classified without their
// envelope, by their status and headers (the vendors' retry hints,
// Retry-After, the rate-limit headers).
// It panics if n is negative.
func WithMaxPeek(n int64) Option {
	mustNotBeNegative("WithMaxPeek", n)
	return func(c *config) {
		perTransport(c, "WithMaxPeek")
		c.maxPeek = n
	}
}

// classifier is the innermost middleware: it classifies each attempt's
// result once and records it in the attempt's state.
type classifier struct {
	next     hop
	codes    codeTable
	custom   Classifier
	maxPeek  int64
	observed bool // someone reads request ids of successes
	// resets says that the Transport has no rate limiter: the classifier
	// reads a throttled answer's quota reset for its retry's wait, which
	// the limiter sets otherwise (see rateLimitTransport.learn).
	resets  bool
	parsers []RateLimitParser // WithRateLimitParser, for resets
	// base is the Transport's base, whose configuration tells a
	// callback of the caller's that refused a connection (see
	// callbackFault).
	base http.RoundTripper
}

func (c *classifier) RoundTrip(req *http.Request) (*http.Response, error) {
	return c.roundTripAttempt(req, nil)
}

func (c *classifier) roundTripAttempt(req *http.Request, st *attemptState) (*http.Response, error) {
	if st != nil && st.run != nil {
		// A hedged attempt, about to be sent: its copies' delay runs
		// from now. A hedged copy: numbered among those sent, or not
		// sent at all once its attempt is decided.
		if err := st.run.wire(st); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	if st != nil {
		st.reached = true
	}
	resp, err := saneResult(c.next.roundTrip(req, st))
	if st != nil {
		st.noteDecline(err) // before a Classifier, which may panic
	}
	if st != nil && req.Body != nil && declinedUnsent(st) {
		// A retry or a hedged copy the base declined: its body, the
		// Transport's replay (never the caller's own body, but for a
		// hop's first attempt the call does not hand back, see
		// attemptState.marked), is sent by no one, and closed here, as
		// a layer that refuses an attempt closes it.
		req.Body.Close()
	}
	if err != nil {
		err = requestFault(req, err)
		if re := callbackFault(c.base, req, err); re != nil {
			err = re
		}
		err = redactRequestError(err, req) // before any layer records it
	}
	if st != nil {
		if st.bufferMax > 0 {
			return c.buffered(req, st, resp, err) // WithBufferedResponse
		}
		c.classify(st, req, resp, err, time.Now)
	}
	return resp, err
}

// errNilResponse replaces the nil error of a RoundTripper that returned
// neither a response nor an error.
var errNilResponse = errors.New("resilient: RoundTripper returned a nil response and a nil error")

// saneResult enforces the RoundTripper contract on what the base returned,
// so that every layer above sees exactly one of a response and an error, and
// a response with a body: a response returned with an error is closed and
// dropped, a nil response with a nil error becomes errNilResponse, and a nil
// Body becomes http.NoBody (as http.Client does).
func saneResult(resp *http.Response, err error) (*http.Response, error) {
	switch {
	case err != nil:
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		return nil, err
	case resp == nil:
		return nil, errNilResponse
	case resp.Body == nil:
		resp.Body = http.NoBody
	}
	return resp, nil
}

// classify fills st from the result of the attempt that sent req.
func (c *classifier) classify(st *attemptState, req *http.Request, resp *http.Response, err error, now func() time.Time) {
	st.classified = true
	custom := c.custom
	if st.callCfg != nil {
		custom = st.callCfg.classifier // WithCallOptions may change it
	}
	if err != nil || resp == nil {
		st.class, st.neverSent = classifyErr(err)
		if st.neverSent && !proxyFuncOf(c.base) && urlParseError(err) {
			// A URL that does not parse, from a base with no Proxy func
			// of net/http's Transport to have parsed it: a Location or
			// a Link of the server's, say, that the caller's base
			// parsed after it sent the request. Nothing proves it unsent.
			st.neverSent = false
		}
		if st.class == Permanent && !st.neverSent && !st.cutRetried && cutHeaders(err) {
			st.class, st.cutRetried = Transient, true
		}
		if custom != nil {
			st.class = callClassifier(custom, nil, nil, err, st.class)
		}
		return
	}
	if resp.StatusCode < 400 {
		st.class = Success
		if c.observed {
			st.requestID = headerRequestID(resp.Header)
		}
		if custom != nil {
			st.class = callClassifier(custom, resp, nil, nil, Success)
			if st.class.Retryable() {
				// A success the Classifier retries (a 202 "come back
				// later"): its retry waits for the server's word, as
				// an error's does.
				st.retryAfter, st.hasRetryAfter = serverWait(resp.StatusCode, resp.Header, st.class, now)
				c.announcedReset(st, resp, now)
			}
		}
		return
	}
	var env envelope
	parsed := false
	if c.maxPeek > 0 {
		if !st.start.IsZero() {
			st.answeredAfter = max(now().Sub(st.start), 1) // before the body is read (see latencySince)
		}
		if st.run != nil && (st.hedge == 0 || !st.run.keyed || resp.StatusCode != http.StatusConflict) {
			// The host answered the hedged attempt, or a copy of it: no
			// copy is sent while its body is read (see
			// hedgeRun.answered). A keyed write's 409 to a copy is
			// another copy holding the key, no failure (see finish).
			st.run.answered()
		}
		env, parsed = peekEnvelopeWithin(resp, c.maxPeek, st.armed)
		st.peekCut = peekTimedOut(resp, st.armed)
	}
	if resp.StatusCode == http.StatusForbidden {
		// A 403 is a rate limit's by its headers (see rateLimited403),
		// which a response built by hand below the Transport may spell
		// otherwise: read them as net/http would have spelled them, its
		// request id among them, even when its Retry-After, which
		// retryAfterHeader reads under any spelling, makes it a rate
		// limit's already.
		canonicalRateHeaders(resp)
	}
	st.class = decide(resp.StatusCode, resp.Header, &env, parsed, c.codes.lookup)
	st.retryAfter, st.hasRetryAfter = serverWait(resp.StatusCode, resp.Header, st.class, now)
	st.apiErr = newAPIError(resp, req, &env, parsed, st.class, st.retryAfter)
	st.noRetry = saidNoRetry(resp.Header, &env, parsed)
	st.platform = parsed && env.platform
	if st.lost && !st.class.Retryable() && !st.platform && keyHeld(resp.StatusCode, st.apiErr) && !st.noRetry {
		// The key is held by an earlier attempt of the call (see
		// keyHeld), unless the server said not to retry: its word is
		// the strongest (see decide). A Postato platform error is the
		// social network's verdict on a post the host took and
		// finished, the key's stored answer: its code is the
		// platform's, no key in flight.
		st.class, st.apiErr.Retryable = Transient, true
	}
	st.code = st.apiErr.Code
	st.requestID = st.apiErr.RequestID
	if custom != nil {
		st.class = callClassifier(custom, resp, st.apiErr, nil, st.class)
		st.apiErr.Retryable = st.class.Retryable()
	}
	c.announcedReset(st, resp, now)
}

// announcedReset makes the retry of a throttled attempt st without a
// Retry-After wait for the quota reset its response announced, when the
// Transport has no rate limiter to set it (see resets).
func (c *classifier) announcedReset(st *attemptState, resp *http.Response, now func() time.Time) {
	if c.resets && st.class == Throttled && !st.hasRetryAfter {
		waitForAnnouncedReset(st, resp, c.parsers, now())
	}
}

// callClassifier returns custom's class for an attempt's response or
// error: Permanent for a value that is none of the four classes (see
// Classifier); when custom panics, the response's body, if any, is closed
// on the way out (see closeOnPanic).
func callClassifier(custom Classifier, resp *http.Response, apiErr *APIError, err error, def Class) Class {
	done := false
	defer closeOnPanic(resp, &done)
	cl := custom(resp, apiErr, err, def)
	done = true
	if cl < Success || cl > Permanent {
		return Permanent
	}
	return cl
}

// decide applies the precedence, from the strongest:
//
//  1. a vendor's retry hint (Stripe-Should-Retry, X-Should-Retry): false
//     is Permanent, true Transient (Throttled stays Throttled, whatever
//     the envelope's flag says);
//  2. without a hint, the envelope's retryable flag, likewise;
//  3. a 429 is Throttled, whatever its code;
//  4. a known code, but a Postato platform error's: the social network's
//     code ("Posts that fail at the social network surface as post.failed
//     with a structured error"), a platform's throttle (RATE_LIMITED)
//     included, is no word of the host's on the request, which it took;
//     Postato says to trust the error's retryable flag instead;
//  5. a 403 with Retry-After or X-RateLimit-Remaining: 0 (beside a limit
//     that is not 0) is Throttled (GitHub's rate limits), but not one
//     that carries a Postato platform error: the host took the post and
//     answers with the social network's verdict on it, whatever quota its
//     headers report, and such a write is not resent as one a rate limit
//     refused unprocessed;
//  6. the status.
func decide(status int, h http.Header, env *envelope, parsed bool, lookup func(string) (Class, bool)) Class {
	cl := statusClass(status)
	if status == http.StatusForbidden && rateLimited403(h) && !(parsed && env.platform) {
		cl = Throttled
	}
	if parsed && !env.platform {
		if known, ok := lookup(env.code); ok {
			cl = known
		} else if known, ok := lookup(env.reason); ok {
			// A Google error whose status names no class
			// (PERMISSION_DENIED): its reason may.
			cl = known
		}
	}
	if status == http.StatusTooManyRequests {
		cl = Throttled // whatever its code: the server asked for a pause
	}
	if hint := retryHint(h); hint >= 0 {
		// The hint outranks the envelope's flag: it applies to the
		// class the flag would have changed, so that a 429 whose
		// envelope says false and whose hint says true stays
		// Throttled, waiting for its quota as any 429 does, instead
		// of becoming Transient by way of Permanent.
		return applyRetryable(cl, hint)
	}
	if parsed {
		cl = applyRetryable(cl, env.retryable)
	}
	return cl
}

// saidNoRetry reports whether the server said not to retry its answer, h
// its headers and env its envelope (parsed says whether it was one), read
// by decide's precedence, the strongest words first: a vendor's retry hint
// of false, or, without a hint, the envelope's retryable flag of false (a
// hint of true outranks the envelope's false). No rule that retries an
// answer decide made Permanent (a key held, a key required) overrules
// them.
func saidNoRetry(h http.Header, env *envelope, parsed bool) bool {
	if hint := retryHint(h); hint >= 0 {
		return hint == 0
	}
	return parsed && env.retryable == 0
}

// applyRetryable applies an explicit answer to "retry this?" (1 yes, 0 no,
// -1 not said) to cl.
func applyRetryable(cl Class, retryable int8) Class {
	switch retryable {
	case 1:
		if cl != Throttled {
			cl = Transient
		}
	case 0:
		cl = Permanent
	}
	return cl
}

// statusOverloaded is the status Anthropic's API answers when it is
// overloaded ("overloaded_error"): not a standard status, and a passing one.
const statusOverloaded = 529

// statusClass is the decision by status alone.
func statusClass(status int) Class {
	switch {
	case status < 400:
		return Success
	case status == http.StatusTooManyRequests:
		return Throttled
	case status == http.StatusRequestTimeout,
		status == http.StatusInternalServerError,
		status == http.StatusBadGateway,
		status == http.StatusServiceUnavailable,
		status == http.StatusGatewayTimeout,
		status == statusOverloaded:
		return Transient
	case status >= 520 && status <= 524:
		// A CDN's (Cloudflare's) word that the origin behind it failed
		// (520), refused the connection (521), did not accept it in time
		// (522), could not be reached (523) or did not answer in time
		// (524): a 502 or a 504 by another number. Its 525, 526 and 530
		// (the TLS handshake with the origin failed, the origin's
		// certificate is invalid, an error of the origin's DNS or
		// tunnel) wait for a fix of the origin's configuration, as a
		// handshake the host itself refuses does (see classifyErr):
		// Permanent, which the breaker still counts as the host failing.
		return Transient
	}
	return Permanent
}
