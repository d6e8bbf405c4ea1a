package resilient

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// This file holds the drain of a response the retry loop retries past, kept
// for a give-up that may follow.

// maxDrain bounds how much of a response retried past is kept, and read so
// that its connection can be reused (and a byte more, which tells a longer
// body from one of maxDrain bytes); a longer body is closed unread.
const maxDrain = 64 << 10

// holdResponse keeps resp for a give-up that may follow: it reads at most
// maxDrain bytes of its body into memory, for at most maxReadWait (and not
// past the attempt's deadline), and closes the original, so that the
// connection is reused. A longer or slower body is cut there, and reading
// past the cut returns an error: errBodyTruncated, wrapping the error of
// a body that broke before the cut. An HTTP/2 body of known length ends
// with its last byte (see readPrefix): the end of its stream is not
// waited for, unless its server declared trailers, which come with it. A
// body already read whole within the attempt (WithBufferedResponse,
// bounded by its limit) is kept whole, its end read as above: it is in
// memory already, and a cut would free none of it. A Read after Close
// fails as the original's.
func holdResponse(resp *http.Response) *http.Response {
	if resp.Body == http.NoBody {
		return resp // nothing to read: http.NoBody, as from the base
	}
	var data []byte
	eof := false
	var cut error   // the error that cut the read, if any
	closed := false // the cut closed the body (see abortAfter)
	inner := resp.Body
	if c, ok := inner.(*cancelOnClose); ok {
		inner = c.ReadCloser // a hedged attempt's answer (see settle)
	}
	wait := maxReadWait
	if db, ok := inner.(*deadlineBody); ok {
		inner = db.rc
		wait = drainWait(db, wait)
	}
	if pb, ok := inner.(*prefixBody); ok && (pb.eof || pb.whole) && pb.err == nil {
		data, eof = pb.prefix, true
		if pb.whole && resp.Trailer != nil {
			// Its end is still to be read, and its server declared
			// trailers, which come with it: read it, cut as below,
			// through the Transport's wrappers (a timeout, not the
			// original closed under them).
			stop := abortAfter(resp.Body, nil, drainWait(pb.rest, wait))
			_, _, cut = readPrefix(pb.rest, 0, 1, false)
			closed = stop()
		}
	} else {
		stop := abortAfter(resp.Body, nil, wait)
		// A body whose server declared trailers is read to its end,
		// where net/http fills in their values: the response may be
		// the call's answer on a give-up.
		data, eof, cut = readPrefix(resp.Body, resp.ContentLength, maxDrain+1, endsAtLength(resp) && resp.Trailer == nil)
		closed = stop()
		if cut != nil {
			eof = false
		}
		if len(data) > maxDrain {
			data, eof = data[:maxDrain], false
		}
	}
	if !closed {
		resp.Body.Close()
	}
	held := &prefixBody{prefix: data, rest: resp.Body, eof: eof, shut: true}
	switch {
	case cut != nil:
		// The body broke before the Transport let go of it: its
		// error, as the caller would have read it (io.ErrUnexpectedEOF
		// for a body cut short of its length).
		held.err = fmt.Errorf("%w: %w", errBodyTruncated, cut)
	case !eof:
		held.err = errBodyTruncated
	}
	resp.Body = held // a Read after Close is the original's, closed
	return resp
}

// drainWait returns how long the drain may read body, at most wait: not
// past the deadline of an attempt whose timer stopped before the drain
// (for breaker observers' time, see flushClosing, as its body was read
// whole within the attempt, see bufferBody, or as the answer was handed
// over, a success a Classifier retries): the drain still ends there.
func drainWait(body io.Reader, wait time.Duration) time.Duration {
	if db, ok := body.(*deadlineBody); ok && db.state.Load() == deadlineKept && db.watch != nil {
		return max(min(wait, time.Until(db.deadline())), 0)
	}
	return wait
}

// errBodyTruncated is returned by the body of a response the Transport held
// after retrying past it, beyond the part it kept.
var errBodyTruncated = errors.New("resilient: response body truncated after a retry")
