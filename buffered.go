package resilient

import (
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"
)

// WithBufferedResponse makes the Transport read the body of a successful
// response itself, up to max bytes, before it returns the response, so
// that a body cut on its way (a connection reset, an unexpected EOF, a
// body shorter than its Content-Length, a body that stalls past the
// attempt's deadline) is retried as a connection lost before the headers
// is, instead of reaching the caller as an error of its Read. It applies
// per call too (see WithCallOptions). Zero, the default, turns it off:
// the body is handed over as it arrives, and a call that succeeds costs
// nothing more. It panics if max is negative.
//
// A response is read so only when it is a success (a status from 200 to
// 399 the Classifier's default takes for one: not a 101, whose body is the
// upgraded connection, nor a 204, a 304, the answer to a HEAD or a body of
// known length 0, which have nothing to read, nor a redirect http.Client
// follows, a 301, 302, 303, 307 or 308 with a Location, whose body it
// discards whatever its end, nor a stream of events, a
// Content-Type of text/event-stream or application/x-ndjson, whose events
// are the caller's as they come: an LLM's tokens would wait for the last,
// and a cut would start the stream again) and when a failure of its
// body could be retried: its request may be sent again (a GET, HEAD,
// OPTIONS, TRACE, PUT or DELETE, or a write the write rule resends after
// an ambiguous failure: one with a key to a host that deduplicates by
// key), its body can be replayed (a body without GetBody, captured as it
// is sent, still fits WithMaxBufferedBody when the response comes), and
// the attempt is not the last one WithMaxRetries allows. Any other
// response is handed over as it arrives, as without the option: reading
// it first would only delay the caller.
//
// The body is read within the attempt, under its deadline: the earliest of
// the attempt timeout (WithAttemptTimeout), what remains of the call's
// budget (WithMaxElapsed) and the context's deadline; without any of
// them, as long as the caller would wait for it. A base's body that the
// deadline's cut of the attempt's context does not reach (one that blocks
// or drips whatever its request's context says) is closed under the read
// half a second after the attempt timeout or the call's budget ends; under
// the context's deadline alone (earlier than either, or neither set), the
// Transport arms no timer, and such a body is read until it ends. A body
// that ends within
// max bytes is handed to the caller in memory: reading its bytes never
// touches the network, and an HTTP/1 connection has been released. An
// HTTP/2 body of known length ends with its last byte: the end of an
// HTTP/2 stream, which a server sends once its handler returns, maybe long
// after, is not waited for, and is the caller's to read (its Close ends
// the stream, which stays open until then): a Read past the body's bytes
// waits for that end, as without the option, and fails as a plain
// client's would (the caller's context canceled, say), where net/http
// fills in the trailers (resp.Trailer), declared or not
// (http.TrailerPrefix). A read that fails
// (any error but io.EOF, the deadline included) makes the attempt a
// failure of the kind of its error, a Transient network error or attempt
// timeout as a rule, with no response: it is recorded so for observers,
// the logger, the Tracer and the Report, counted as a failure by the
// host's breaker (a timeout or a lost connection, as before the headers),
// and retried by the retry loop under its rules (backoff, budget, retry
// budget, the write rule); a call that ends on it (its retry refused, its
// retry budget spent) fails with its error, never with the response of an
// earlier attempt, which the cut one followed. The rate limiter still
// learns the quota the response's headers announced. A body that arrived
// but does not decode (gzip's or zlib's header or checksum refused, a
// corrupt deflate stream: a server that names a Content-Encoding it did
// not apply) is no cut: every retry would get the same bytes. The response
// is returned as without the option, a success, its body the bytes
// decoded, then the decoder's error. A body longer than max (known from its
// Content-Length, or found so once max bytes were read) is not protected:
// the caller gets the bytes read followed by the rest of the original
// body, read from the network under no deadline of the attempt, whose
// errors are the caller's as without the option.
//
// What it costs, for a response it reads: the body's bytes in memory (at
// most max+1 per attempt in flight, and per hedged copy: each copy that
// answers reads its own, the first to end wins, see WithHedging), two
// allocations (more for a body over 1 MiB or of unknown length, whose
// buffer grows as it comes, doubling, no larger than its Content-Length:
// a server's Content-Length is not trusted with more), and the time to
// read the body before RoundTrip returns. A
// body that takes longer than the attempt's deadline to arrive is cut
// there and retried: give a call that downloads a large body a budget
// (WithMaxElapsed) or an attempt timeout that fits it. The limit of
// attempts in flight (WithMaxInFlight) holds the attempt's slot while it
// reads, and an attempt's Duration (see Attempt) and its Tracer span
// include the read.
func WithBufferedResponse(max int64) Option {
	mustNotBeNegative("WithBufferedResponse", max)
	return func(c *config) { c.maxBufferedResponse = max }
}

// responseBuffer returns how much of the body of attempt n's success is
// read within the attempt (see WithBufferedResponse): 0 when the option is
// off or when no retry could follow the failure of that body: the request
// may not be sent again, its body cannot be replayed, or the attempt is
// the last one. With the option off it reads one field.
func (c *call) responseBuffer(n, maxAttempts int, body *replayBody) int64 {
	max := c.cfg.maxBufferedResponse
	if max == 0 || n >= maxAttempts || c.write && !c.resendable() || !body.replayable() {
		return 0
	}
	return max
}

// bufferable reports whether the body of resp, the answer to req, is read
// within attempt st, whose bufferMax is set: a success with a body to
// read, of a length not known to pass bufferMax, to a request whose body
// can still be replayed. It decides by the status, as the Classifier's
// default does, so that the Tracer, which ends its attempt's span once the
// body was read (see tracerTransport), knows it before the classifier has
// decided.
func bufferable(req *http.Request, resp *http.Response, st *attemptState) bool {
	max := st.bufferMax
	switch {
	case resp.StatusCode < 200 || resp.StatusCode >= 400:
		// An error, or informational: a 101's body is the upgraded
		// connection, which must stay an io.ReadWriteCloser.
	case resp.StatusCode == http.StatusNoContent, resp.StatusCode == http.StatusNotModified:
	case isFollowedRedirect(resp):
		// http.Client reads at most 2 KiB of its body, whatever error
		// ends it, and follows the Location: a cut there is no failure
		// of the call, and retrying it would cost attempts, waits and
		// breaker failures a plain client never pays.
	case req.Method == http.MethodHead:
	case resp.Body == nil, resp.Body == http.NoBody, resp.ContentLength == 0:
	case resp.ContentLength > max:
		// Longer than what may be kept: handed over as it arrives.
	case st.capture != nil && !st.capture.readWhole():
		// The request's body outgrew what can be replayed as it was
		// sent: no retry could follow a cut. Or it is still being sent:
		// the server answered before it ended (early, or both ways at
		// once, as HTTP/2 lets it: an echo, a stream), and the body of
		// its answer may wait for what the caller writes once
		// RoundTrip has returned, as a plain client's would.
	case isStream(resp.Header):
		// Its events are the caller's as they come.
	default:
		return true
	}
	return false
}

// isFollowedRedirect reports whether resp is a redirect http.Client
// follows (unless its CheckRedirect says otherwise): a 301, 302, 303, 307
// or 308 with a Location.
func isFollowedRedirect(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return resp.Header.Get("Location") != ""
	}
	return false
}

// isStream reports whether a response with header h is a stream of events
// the caller reads as they come (an LLM's tokens, a feed): its Content-Type
// is text/event-stream (server-sent events) or application/x-ndjson.
func isStream(h http.Header) bool {
	v := h["Content-Type"]
	if len(v) == 0 {
		return false
	}
	t, _, _ := strings.Cut(v[0], ";")
	t = strings.TrimSpace(t)
	return strings.EqualFold(t, "text/event-stream") || strings.EqualFold(t, "application/x-ndjson")
}

// buffered classifies an attempt whose success may be read within the
// attempt (st.bufferMax > 0): it reads the body of resp when bufferable,
// then classifies the result, the body's error in place of the response
// when the read failed, and ends the Tracer's span of the attempt when it
// waited for the read.
func (c *classifier) buffered(req *http.Request, st *attemptState, resp *http.Response, err error) (*http.Response, error) {
	end := st.traceEnd
	st.traceEnd = nil
	if end != nil {
		ended := false
		defer func() {
			if !ended { // a Read of the body or a Classifier panicked
				end(nil, errPanicked)
			}
		}()
		resp, err = c.bufferAndClassify(req, st, resp, err)
		ended = true
		if err != nil && st.cut != nil {
			// The body broke on its way: the response's status
			// code was received all the same (see Tracer).
			end(st.cut, err)
			return resp, err
		}
		endClosing(end, resp, err)
		return resp, err
	}
	return c.bufferAndClassify(req, st, resp, err)
}

func (c *classifier) bufferAndClassify(req *http.Request, st *attemptState, resp *http.Response, err error) (*http.Response, error) {
	if resp == nil || !bufferable(req, resp, st) {
		c.classify(st, req, resp, err, time.Now)
		return resp, err
	}
	cut := resp
	resp, err = bufferBody(resp, st)
	if err != nil {
		// The attempt's error, redacted with its request as the base's
		// are (see roundTripAttempt): a cause or a server's text that
		// the read's error quotes may hold the request's own secrets.
		err = redactRequestError(err, req)
	}
	c.classify(st, req, resp, err, time.Now)
	if err != nil {
		// The server answered: the request left, and may have been
		// processed. The response is kept for its headers, which the
		// rate limiter reads, and its request id.
		st.neverSent = false
		st.cut = cut
		if c.observed {
			st.requestID = headerRequestID(cut.Header)
		}
	}
	return resp, err
}

// bufferBody reads the body of resp, a success of attempt st, into memory,
// up to st.bufferMax bytes. A body that ends there is closed and replaced
// by the bytes read; a longer one is replaced by the bytes read followed by
// the rest of it. When the read fails, the body is closed and bufferBody
// returns the error instead of the response, unless the body does not
// decode (see undecodable): the response is returned, its body the bytes
// decoded, then the decoder's error, as from the base. The read is bounded by the
// attempt's deadline, whose context the base watches; once the body is
// whole, that deadline no longer applies.
func bufferBody(resp *http.Response, st *attemptState) (*http.Response, error) {
	limit := st.bufferMax
	if limit < math.MaxInt64 {
		limit++ // one byte past max tells a longer body from one of max bytes
	}
	// A read the attempt's context does not cut (a base's body that no
	// context reaches) is cut by closing the body once the deadline fired,
	// as the peek's and the drain's are (see beginRead).
	db := st.armed
	guarded := db != nil && db.beginRead(resp.Body)
	if db != nil && !guarded && db.state.Load() == deadlineFired {
		// The deadline fired before the read began (a base that
		// answered past it): the attempt timed out, as one whose
		// deadline fires as its headers arrive does (see handOver). Its
		// body, which may stall whatever its context says, is not read.
		resp.Body.Close()
		return nil, db.cause()
	}
	data, eof, err := readPrefix(resp.Body, resp.ContentLength, limit, endsAtLength(resp))
	if guarded {
		if db.endRead() {
			// The body was closed under the read: the attempt's
			// deadline cut it, a timeout, as the read it cuts through
			// the context fails. The read's own error tells only of
			// that Close ("read on closed body").
			return nil, fmt.Errorf("resilient: reading the body of a %d response: %w", resp.StatusCode, db.cause())
		}
	}
	if err == nil && eof && resp.ContentLength > int64(len(data)) {
		// net/http says so itself; another RoundTripper may not.
		err = io.ErrUnexpectedEOF
	}
	if err != nil && undecodable(err) {
		// The body came as the server encoded it, and does not decode
		// (a Content-Encoding it did not apply, a corrupt stream): every
		// retry would get the same bytes. It is the server's answer, as
		// a plain client gets it: the bytes decoded, then the error. No
		// byte of it is read any more: the deadline may not cut it, as
		// a whole body (below).
		if db != nil {
			db.keep()
		}
		resp.Body.Close()
		resp.Body = &prefixBody{prefix: data, rest: resp.Body, err: err, shut: true}
		return resp, nil
	}
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("resilient: reading the body of a %d response: %w", resp.StatusCode, err)
	}
	if !eof {
		// Longer than max: the caller reads the rest as it comes.
		resp.Body = &prefixBody{prefix: data, rest: resp.Body}
		return resp, nil
	}
	if db != nil {
		// The body is whole: the deadline that bounded its read may
		// not cut the answer on its way to the caller, nor while the
		// original is closed (a base's Close may take its time: a
		// cache that stores the body, a span exported as it ends).
		db.keep()
	}
	if endsAtLength(resp) && int64(len(data)) == resp.ContentLength {
		// An HTTP/2 body whose bytes all came, short of its stream's
		// end: net/http fills in the trailers, declared (resp.Trailer)
		// or not (http.TrailerPrefix), as the body's Read returns
		// io.EOF there, which may come long after. Its end is the
		// caller's to read, as without the option.
		resp.Body = &prefixBody{prefix: data, rest: resp.Body, whole: true}
		return resp, nil
	}
	resp.Body.Close() // kept as rest, closed: a Read after Close is its own
	resp.Body = &prefixBody{prefix: data, rest: resp.Body, eof: true, shut: true}
	return resp, nil
}

// undecodable reports whether err, the error of a read of a response's
// body, is a decoder's refusal of the bytes the server sent (gzip's, which
// net/http applies to a body it asked for compressed, or zlib's or
// flate's, which a base may apply): not a body cut on its way, which ends
// in io.ErrUnexpectedEOF or the connection's error.
func undecodable(err error) bool {
	return errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) ||
		errors.Is(err, zlib.ErrHeader) || errors.Is(err, zlib.ErrChecksum) || errors.Is(err, zlib.ErrDictionary) ||
		errors.As(err, new(flate.CorruptInputError))
}
