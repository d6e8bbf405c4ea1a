package resilient

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/resilienthttp/resilient/internal/redact"
)

// This file holds the caller's mistakes: faults of a request itself, which
// no retry can mend.

// RequestError is the error of an attempt that failed because of its request
// itself, not of the server or the network: its body's Read or Close
// (which net/http calls once it read the body to its end) failed, its
// body's length differs from its ContentLength, its body stalled (the
// attempt's deadline, its attempt timeout or the call's budget, cut it
// while the transport was waiting in the body's Read: the error then says
// "request body stalled" and wraps the deadline's, ErrAttemptTimeout, so
// that it is still a timeout), or a header, a trailer, the method or the
// URL is invalid (or missing: a nil URL or Header, refused before any
// attempt, see refuseUnsendable), or the Got1xxResponse hook of the httptrace.ClientTrace
// in its context returned an error (net/http then fails the request with
// that error inside its own, to which the RequestError unwraps: errors.Is
// finds the hook's error over HTTP/2 too), or a callback of the base's
// refused the connection: the Control or ControlContext of a net.Dialer it
// dials with, or the VerifyPeerCertificate or VerifyConnection of its
// TLSClientConfig (see callbackFault; the error then says "resilient: the
// caller's … callback refused the connection" and errors.Is finds the
// callback's error). Such a call fails at once, with
// the cause, and counts against nothing (no breaker failure, no retry
// budget): sending it again would fail the same way. When it is a retry's that fails before
// the server could act on it (its body, from GetBody, shorter than its
// ContentLength, or its Read failing), the call returns the response of
// the attempt before, if any, as when GetBody returns an error. A body
// whose Read or Close fails, or whose Read stalls, only once its
// ContentLength bytes were read, or that is longer than its ContentLength,
// is no such body: net/http has written the whole request first, and the
// server may have acted on it. Nor is one of unknown length whose Read or
// Close fails, or whose Read stalls, once bytes of it were read: it may
// have failed where it ends.
type RequestError struct {
	Err error // the cause: the body's Read error, net/http's refusal, …

	// ofBody says that the cause is the request's body (see bodyFault),
	// which net/http reads only as it writes the request: the host may
	// have its header (see bodyBroke).
	ofBody bool
}

// Error returns "resilient: invalid request: " and the cause, or, for a
// connection a callback of the caller's refused, "resilient: the caller's
// … callback refused the connection: " and the callback's error as net or
// crypto/tls returned it.
func (e *RequestError) Error() string {
	if r, ok := e.Err.(*callbackRefusal); ok {
		return "resilient: " + r.Error()
	}
	return "resilient: invalid request: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *RequestError) Unwrap() error { return e.Err }

// Timeout reports whether the cause is, or wraps, an error whose Timeout
// method returns true (a body whose Read timed out, os.ErrDeadlineExceeded;
// a stalled body's ErrAttemptTimeout), as Error's Timeout does: a caller
// that takes the RequestError out of a call's error, or out of an Attempt,
// tells a timeout as net/http's users do. RequestError has no Temporary
// method: the request itself is at fault, and sending it again fails alike.
func (e *RequestError) Timeout() bool { return isTimeout(e.Err) }

// refuseUnsendable refuses req, which has no URL or no Header (a Request
// literal sent through RoundTrip itself: http.Client gives every request a
// Header), as http.Transport refuses it before it looks at anything else:
// whatever its method, with no attempt (nothing sent, no key stamped,
// nothing counted), its body closed, in net/http's words ("http: nil
// Request.URL", "http: nil Request.Header"). An attempt of a write, a copy
// of the request with a Header of its own for its key, would otherwise be
// sent where the plain transport refuses it.
func refuseUnsendable(req *http.Request) error {
	if req.Body != nil {
		req.Body.Close()
	}
	if r := callValuesOf(req.Context()).report; r != nil {
		r.fill(req, Report{Outcome: OutcomePermanent}) // no attempt
	}
	if req.URL == nil {
		return &RequestError{Err: errors.New("http: nil Request.URL")}
	}
	return &RequestError{Err: errors.New("http: nil Request.Header")}
}

// checkedBody is a request body handed to an attempt as it is: it turns
// the body's own failures (a Read error, a length that differs from the
// request's ContentLength) into *RequestError, so that they are told
// apart from the network's. It also tells when its reader is done with
// it (see sent): the request's GetBody, which may rewind the source it
// reads (a careless GetBody that seeks one file back), is called for a
// retry or a hedged copy only then.
type checkedBody struct {
	rc   io.ReadCloser
	want int64
	// replay is the length this body, of unknown length and from
	// GetBody, must have, exactly or at least (see replayLen): that of
	// the body made before it (see replayLength), checked as a ContentLength is (see
	// checkReplayLength); zero for none. Set as the body is made, or, for
	// an attempt's body renewed, under its run's getMu before its Read
	// reads the renewal (see hedgeRun.renew).
	replay replayLen
	read   atomic.Int64 // read by a Close that may run beside a Read (see Close)
	// head is the first bytes read of the body, up to its length, which
	// a body from GetBody made after it must begin with (see
	// replayLength): the first read of them (see noteHead).
	head   [replayHead]byte
	watch  bodyWatch
	closed atomic.Bool // Close closes rc once: a layer that closed it may panic, and the retry loop close it again
	ended  atomic.Bool // a Read returned io.EOF: the body was read to its end (see closeFault, sent)
	// detached says that a retry's body from GetBody took the source
	// over (see detach): a Read fails.
	detached atomic.Bool
	// use says whether a Read began (bodyRead) or a hedged copy took the
	// body over before any did (bodyTaken: see takeOverUnread; bodyLost
	// once a Read found it taken, when the copy can no longer give it
	// back: see giveBack); zero for neither.
	use atomic.Int32
	// took is the body, an attempt's or an earlier copy's, that this
	// body of a hedged copy took over before it was read (see
	// hedgeRun.nextBody); nil for none.
	took *checkedBody
	// by is the run of the hedged copy that took this body over before
	// it was read (see takeOverUnread): a Read that finds the body taken
	// waits for the copy's GetBody, and takes it back from a copy that
	// has not begun to read its own (see hedgeRun.reclaim); nil for none,
	// and again once the copy gave it back (see hedgeRun.giveBack).
	by     atomic.Pointer[hedgeRun]
	failed atomic.Pointer[RequestError] // what Close returned, when rc's Close failed (see closeFault)
	// cut is what a Read returns once the body is detached by the end of
	// the attempt's context while it waited for a copy's GetBody (see
	// waitForCopy), or by its renewal's GetBody that failed (see
	// hedgeRun.renew); nil for errBodyDetached.
	cut atomic.Pointer[error]
	// idle is closed once the body is sent, for a wait for it (see
	// waitSent); nil when none waits.
	idle atomic.Pointer[chan struct{}]
	// fresh is the body from GetBody that the attempt's Read reads in
	// place of rc, once a copy that took rc over had read its own (see
	// hedgeRun.renew); nil for none, and again once Close took it.
	fresh atomic.Pointer[renewedBody]
}

// Values of checkedBody.use.
const (
	bodyRead  = 1 // a Read began
	bodyTaken = 2 // a hedged copy took the body over before any Read began
	bodyLost  = 3 // taken over, and a Read found it so: it fails for good
	bodyHeld  = 4 // a hedged copy's, from GetBody, no Read began: not to be taken over
	// bodyRenewing and bodyRenewed: taken over, and its Read, once the
	// copy's body was sent, calls GetBody (renewing), and reads the body
	// it made (renewed: see fresh).
	bodyRenewing = 5
	bodyRenewed  = 6
)

func (b *checkedBody) Read(p []byte) (int, error) {
	running := b.watch.begin()
	rc := b.rc
	if b.use.Load() != bodyRead {
		if running, rc = b.beginRead(running); rc == nil {
			return 0, errBodyDetached
		}
	}
	if b.ended.Load() || b.closed.Load() || b.detached.Load() {
		// Done with (see sent): a Read after its end, its Close or its
		// detach does not read rc, which a body from GetBody may read
		// now.
		b.watch.reading.Store(false)
		b.wake()
		switch {
		case b.detached.Load():
			if err := b.cut.Load(); err != nil {
				return 0, *err
			}
			return 0, errBodyDetached
		case b.closed.Load():
			return 0, errBodyClosed
		}
		return 0, io.EOF
	}
	n, err := rc.Read(p)
	// Counted, and its first bytes noted, before the Read ends (see
	// watch.end): a look at the body sent (see sent) sees all of it read
	// (see replayLength).
	if n > 0 && n <= len(p) && b.want <= 0 && !b.noteHead(p[:n], b.read.Load()) {
		// Not the body before it: none of these bytes is passed on.
		read := b.read.Load()
		n, err = 0, bodyFault(0, read, &replayLengthError{want: b.replay, read: read, head: true})
		if b.use.Load() == bodyRenewed {
			err = b.renewalFault(err)
		}
	} else if b.replay.n > 0 {
		err = checkReplayLength(b.replay, b.read.Add(int64(n)), err)
		if err != nil && err != io.EOF && b.use.Load() == bodyRenewed {
			err = b.renewalFault(err)
		}
	} else {
		err = checkLength(b.want, b.read.Add(int64(n)), err)
	}
	b.watch.end(running)
	if err == io.EOF {
		b.ended.Store(true)
	}
	b.wake()
	return n, err
}

// beginRead marks that a Read began, unless a hedged copy took the body
// over before (see takeOverUnread) and began to read its own: the body is
// then detached, for good (see giveBack), and the Read fails without
// reading rc. A copy that has not begun to read its body (its dial hangs)
// gives this one back (see hedgeRun.reclaim). While the copy's GetBody
// runs, the Read waits for it to return (a GetBody that fails gives the
// body back, unless the retry loop took the run's body meanwhile), at
// most until the attempt's context is done (its deadline, the call's
// budget, the attempt decided, the caller gone: see waitForCopy). A copy
// that has read its own body, when it was sent (read to its end, or
// closed), leaves the source to this Read, which then reads a body of its
// own from GetBody (see hedgeRun.renew). It returns what watch.begin
// returned for the Read going on, and what the Read reads: rc, the body
// from GetBody, or nil while another Read makes that body (two Reads at
// once), which fails.
func (b *checkedBody) beginRead(running bool) (bool, io.ReadCloser) {
	for {
		switch b.use.Load() {
		case bodyRead:
			return running, b.rc
		case bodyLost:
			// Whoever lost it detaches it next (see hedgeRun.reclaim,
			// giveBack): a Read between the two must not read rc.
			b.detached.Store(true)
			return running, b.rc
		case bodyTaken:
			if run := b.by.Load(); run != nil {
				ok, getting := run.reclaim(b)
				if ok {
					return running, b.rc
				}
				if getting != nil {
					if !b.waitForCopy(run, getting) && b.use.CompareAndSwap(bodyTaken, bodyLost) {
						b.cutBy(run.attemptCtx)
						b.detached.Store(true)
						return running, b.rc
					}
					// Woken, or the body given back meanwhile: in a
					// Read again before it looks, for a retry that
					// detaches the body waits for a Read that reads
					// rc (see sent).
					running = b.watch.begin()
					continue
				}
				if run.renew(b) {
					running = b.watch.begin() // past GetBody: in a Read again
					continue
				}
			}
			if b.use.CompareAndSwap(bodyTaken, bodyLost) {
				b.detached.Store(true)
				return running, b.rc
			}
		case bodyRenewing:
			return running, nil
		case bodyRenewed:
			if f := b.fresh.Load(); f != nil {
				return running, f.rc
			}
			return running, b.rc // closed (see Close): the Read does not read it
		case bodyHeld:
			if b.use.CompareAndSwap(bodyHeld, bodyRead) {
				return running, b.rc
			}
		default:
			if b.use.CompareAndSwap(0, bodyRead) {
				return running, b.rc
			}
		}
	}
}

// waitForCopy waits for getting, closed once the GetBody of run's copy
// that took this body over returns, and reports whether it was: at most
// until the attempt's context is done, or its deadline (see bodyWatch.db)
// fires. The Read is not in progress meanwhile: the wait is the
// Transport's, not the caller's body's, and a deadline that cuts it is no
// stall of the body (see bodyWatch). A Read cut by the end of the
// attempt's context (the caller's cancel) fails with its cause
// (TestHedgingTakenOverBodyWaitCanceled).
func (b *checkedBody) waitForCopy(run *hedgeRun, getting <-chan struct{}) bool {
	b.watch.reading.Store(false)
	var cut <-chan struct{}
	if db := b.watch.db.Load(); db != nil {
		cut = db.ctx.Done()
	}
	select {
	case <-getting:
		return true
	case <-cut:
	case <-run.attemptCtx.Done():
	}
	return false
}

// Close closes the body, once. Its error fails the attempt as net/http's
// transport returns it (a plain client fails so too): a *RequestError
// (see bodyFault).
func (b *checkedBody) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	defer b.wake()
	if b.fresh.Load() != nil {
		return b.closeRenewed()
	}
	if err := b.rc.Close(); err != nil {
		re := bodyFault(b.want, b.read.Load(), err)
		b.failed.Store(re)
		return re
	}
	return nil
}

// closeFault returns the *RequestError that the Close of body, an
// attempt's request body as the retry loop wraps it, returned when the
// caller's body's Close failed; else nil. net/http's HTTP/1 client fails
// the request with that error as it closes the connection, and the read
// that the closing cuts may answer first ("use of closed network
// connection", or "io: read/write on closed pipe" over net.Pipe: see
// closedHere): the attempt failed because of the body all the same.
// A Close that failed before the body's end was read (its ContentLength
// bytes, or, of a body of unknown length, its io.EOF) followed another
// failure (net/http closes a body early only once its write failed, a
// connection reset mid-body): that failure is the network's, not the
// body's.
func closeFault(body io.ReadCloser) *RequestError {
	var re *RequestError
	var want, read int64
	switch b := body.(type) {
	case *checkedBody:
		if re = b.failed.Load(); re != nil && b.want <= 0 && !b.ended.Load() {
			return nil // closed before its end
		}
		want, read = b.want, b.read.Load()
	case *captureReader:
		if re = b.failed.Load(); re != nil {
			b.c.mu.Lock()
			want, read = b.c.want, b.pos
			if want <= 0 {
				// Its source is closed only once read to its end
				// (see captureReader.Close): c.read bytes long.
				want = b.c.read
			}
			b.c.mu.Unlock()
		}
	}
	if re == nil || want > 0 && read < want {
		return nil
	}
	return re
}

// bodyWatch tells whether the caller's request body held up its attempt:
// whether a Read of it was in progress when the attempt's deadline fired
// (see attemptDeadline). The transport was then waiting for the caller's
// body, which stalled (a pipe whose writer is slow, a proxy forwarding a
// slow client's upload), not for the host: the attempt fails with a
// *RequestError, which no breaker counts and no retry follows. A transport
// blocked writing to its connection (a host that stopped reading) or
// waiting for the answer is not in a Read: that cut is the host's. A
// retry's reader of a captured body that waits for an earlier attempt's
// Read of the caller's source, still blocked in it, is in a Read too. It
// costs a request without a body nothing, and one with a body a few
// atomic operations per Read.
type bodyWatch struct {
	db      atomic.Pointer[deadlineBody] // the attempt's deadline; nil for none
	reading atomic.Bool                  // a Read is in progress
	stalled atomic.Bool                  // a Read was in progress when the deadline fired
}

// begin is called as a Read begins; it reports whether the attempt's
// deadline was still running then.
func (w *bodyWatch) begin() bool {
	w.reading.Store(true)
	db := w.db.Load()
	if db == nil {
		return false
	}
	s := db.state.Load()
	return s == deadlineRunning || s == deadlineReading
}

// end is called as a Read ends, running being what begin returned.
// It marks the stall before it clears reading, and heldUp reads them in
// the other order: a Read that ends as heldUp looks (HTTP/2's client
// closes the body as its RoundTrip returns) is seen by one or the other.
func (w *bodyWatch) end(running bool) {
	if running {
		if s := w.db.Load().state.Load(); s == deadlineFired || s == deadlineFiredReading {
			w.stalled.Store(true)
		}
	}
	w.reading.Store(false)
}

// cut reports whether the attempt's deadline has ended its context.
func (w *bodyWatch) cut() bool {
	db := w.db.Load()
	return db != nil && db.ctx.Err() != nil
}

// heldUp reports whether a Read of the body was in progress when the
// attempt's deadline fired: one that spanned it (net/http's HTTP/1 client
// waits for the Read to end before its RoundTrip returns), or one still in
// progress (its HTTP/2 client does not wait).
func (w *bodyWatch) heldUp() bool {
	return w.reading.Load() || w.stalled.Load() // in this order: see end
}

// watchOf returns the watch of an attempt's request body, when it is the
// caller's body as the retry loop wraps it; else nil.
func watchOf(body io.ReadCloser) *bodyWatch {
	switch b := body.(type) {
	case *checkedBody:
		return &b.watch
	case *captureReader:
		return &b.watch
	}
	return nil
}

// errBodyStalled is the mark of an attempt cut by its deadline while its
// request body's Read was in progress (see bodyWatch).
var errBodyStalled = errors.New("request body stalled")

// bodyStalled returns the *RequestError of an attempt cut by its deadline,
// with err, while a Read of its request body, body, was in progress (see
// bodyWatch). A Read past the body's ContentLength bytes (net/http's HTTP/1
// client reads past them once it has written them) stalled with the whole
// request sent (see bodyFault).
func bodyStalled(body io.ReadCloser, err error) *RequestError {
	err = fmt.Errorf("%w: %w", errBodyStalled, err)
	switch b := body.(type) {
	case *checkedBody:
		return bodyFault(b.want, b.read.Load(), err)
	case *captureReader:
		b.c.mu.Lock()
		read := b.pos
		b.c.mu.Unlock()
		return bodyFault(b.c.want, read, err)
	}
	return &RequestError{Err: err, ofBody: true}
}

// checkLength returns the error of a Read of a body of which read bytes
// were read, which returned err (io.EOF at its end): a *RequestError when
// err is the body's own failure (see bodyFault), or when the body is not
// want bytes long; want 0 or less is unknown. Else err.
func checkLength(want, read int64, err error) error {
	if err != nil && err != io.EOF {
		return bodyFault(want, read, err)
	}
	if want <= 0 {
		return err
	}
	switch {
	case read > want:
		return &RequestError{Err: longerBodyError{want}, ofBody: true}
	case err == io.EOF && read < want:
		return &RequestError{Err: fmt.Errorf("http: ContentLength=%d with Body length %d", want, read), ofBody: true}
	}
	return err
}

// checkReplayLength is checkLength for a body of unknown length from
// GetBody that must be want long, the length of the body made before it
// (see checkedBody.replayLength). A body that is not fails as bodyFault
// words the failure of a body of unknown length: sent chunked, as it is
// read, it may have been acted on once bytes of it were read (a record a
// line long, a JSON value), and not before.
func checkReplayLength(want replayLen, read int64, err error) error {
	if err != nil && err != io.EOF {
		return bodyFault(0, read, err)
	}
	if !want.least && read > want.n || err == io.EOF && read < want.n {
		return bodyFault(0, read, &replayLengthError{want: want, read: read})
	}
	return err
}

// replayLengthError is the error of a body of unknown length from GetBody
// that is not as long as the body made before it, want (see
// checkReplayLength), or, head set, does not begin with the bytes it
// began with (see checkedBody.noteHead): read is what was read of it, up
// to the Read that passed want, or to its end, or that read other bytes.
// It names no ContentLength: the caller set none.
type replayLengthError struct {
	want replayLen
	read int64
	head bool // it does not begin as the body before it did (see noteHead)
}

func (e *replayLengthError) Error() string {
	switch {
	case e.head:
		return "Request.GetBody's body, of unknown length, does not begin with the bytes the body sent before it began with"
	case e.want.least:
		return fmt.Sprintf("Request.GetBody's body, of unknown length, ended after %d bytes, where %d bytes of the body sent before it were read", e.read, e.want.n)
	case e.read > e.want.n:
		return fmt.Sprintf("Request.GetBody's body, of unknown length, is longer than the %d bytes of the body sent before it", e.want.n)
	}
	return fmt.Sprintf("Request.GetBody's body, of unknown length, ended after %d bytes, where the body sent before it had %d", e.read, e.want.n)
}

// bodyFault returns the *RequestError of a body whose Read or Close failed
// with err once read bytes of it were read, want being its request's
// ContentLength (0 or less: unknown). A body that failed only once its want
// bytes were read (its Read at the end, in place of io.EOF: a checksum
// that does not match, a pipe closed with an error after its last byte; or
// its Close) was sent whole: net/http writes the bytes declared before it
// reads past them and closes the body, and the server may act on them (see
// mayHaveBeenSent). So may have been one of unknown length that failed once
// bytes of it were read: it may have failed where it ends, and net/http
// sends each of its chunks as it reads it, which a server acts on once it
// has what it expects (a JSON decoder, a value read whole) before the body
// ends.
func bodyFault(want, read int64, err error) *RequestError {
	if read > 0 && (want <= 0 || read >= want) {
		return &RequestError{Err: &wholeBodyError{err}, ofBody: true}
	}
	return &RequestError{Err: err, ofBody: true}
}

// bodyBroke reports whether err is the *RequestError of a request whose
// body failed (see bodyFault): net/http reads a body only as it writes the
// request, after its header, which it sends before the body over HTTP/2,
// and over HTTP/1 once its buffer is full. The host may have got the
// request, cut short, and counted it against its quota.
func bodyBroke(err error) bool {
	var re *RequestError
	return errors.As(err, &re) && re.ofBody
}

// wholeBodyError is err, the failure of a body once its request's
// ContentLength bytes were read (see bodyFault).
type wholeBodyError struct{ err error }

func (e *wholeBodyError) Error() string { return e.err.Error() }
func (e *wholeBodyError) Unwrap() error { return e.err }

// longerBodyError is the error of a body longer than its request's
// ContentLength, want.
type longerBodyError struct{ want int64 }

func (e longerBodyError) Error() string {
	return fmt.Sprintf("http: ContentLength=%d with a longer Body", e.want)
}

// mayHaveBeenSent reports whether the request of e may have reached the
// server whole: its body was longer than its ContentLength, or failed (its
// Read or its Close) only once its ContentLength bytes were read, and
// net/http writes the bytes declared before it reads past them (over
// HTTP/2 too, before it resets the stream) and closes the body; or its
// body, of unknown length, failed once bytes of it were read (see
// bodyFault); or a hook of the caller's ClientTrace stopped it once it was
// sent (see got1xxFault). Any other fault of a request is found before a
// byte of it is sent, or leaves the server a request cut short.
func (e *RequestError) mayHaveBeenSent() bool {
	var lb longerBodyError
	return errors.As(e.Err, &lb) || errors.As(e.Err, new(*wholeBodyError)) || errors.As(e.Err, new(*hookError)) ||
		strings.Contains(e.Err.Error(), "http2: request body larger than specified content length")
}

// requestFault returns err as a *RequestError when the attempt failed
// because of the request itself: already one (its body), or a request that
// net/http cannot send (an invalid method, header or trailer name or value,
// a URL without a host or with a control character in its query, a scheme
// the base does not speak, a nil Header, a ContentLength without a body, a
// header HTTP/2 cannot carry, a path HTTP/2 cannot carry (one without its
// leading slash), a trailer no request may declare (Content-Length,
// Transfer-Encoding, Trailer: found by its name too, whatever net/http
// reports, when HTTP/1 would send the body chunked), a body longer than
// its ContentLength over HTTP/2, an invalid Host through a proxy, a host
// that cannot be split from its port, or a port out of range or 0), or a
// request the Got1xxResponse hook of the caller's ClientTrace stopped with
// an error (see got1xxFault). It
// looks at the request only after a failure, so that a success costs
// nothing; err is returned unchanged otherwise. net/http's messages are read without
// the strings they quote (see unquoted): a server's words there (a
// header's value) are no refusal of net/http's, and an answer so quoted
// is the server's, not the caller's mistake.
func requestFault(req *http.Request, err error) error {
	if _, ok := err.(*RequestError); ok {
		return err
	}
	if closedHere(err) {
		if re := closeFault(req.Body); re != nil {
			return re
		}
	}
	if why := invalidRequest(req); why != "" {
		return &RequestError{Err: fmt.Errorf("%s: %w", why, err)}
	}
	msg := unquoted(err.Error())
	if req.Header == nil && strings.Contains(msg, "nil Request.Header") {
		// A Request literal sent through RoundTrip itself (http.Client
		// gives a request a Header): net/http refuses it.
		return &RequestError{Err: err}
	}
	if req.Body == nil && req.ContentLength != 0 && (strings.Contains(msg, "with nil Body") || closedHere(err)) {
		// A ContentLength without a body: net/http refuses to send it
		// over HTTP/1 (over HTTP/2 it sends no body, and no error). It
		// refuses it on a connection it has, which it then closes: the
		// read that the closing cuts may answer first ("use of closed
		// network connection", about one time in 2,000 over loopback).
		return &RequestError{Err: err}
	}
	for _, s := range h2RequestFaults {
		if strings.Contains(msg, s) {
			return &RequestError{Err: err}
		}
	}
	if strings.Contains(msg, "unsupported protocol scheme") || strings.Contains(msg, "http: no Host in request URL") {
		// A URL whose scheme the base does not speak (ftp://, a
		// scheme-relative URL), or without a host though the request's
		// Host names one (net/http dials the URL's): it refuses it
		// before it dials.
		return &RequestError{Err: err}
	}
	if strings.Contains(msg, "invalid Trailer key") {
		// A trailer no request may declare (Content-Length,
		// Transfer-Encoding, Trailer): net/http refuses the request as
		// it writes its header, over HTTP/1 (a body of unknown length,
		// sent chunked) and HTTP/2, before the header ends.
		return &RequestError{Err: err}
	}
	if req.Trailer != nil {
		if k := reservedTrailer(req.Trailer); k != "" {
			if c := sentChunked(req); c == chunkedSurely || c == chunkedMaybe && closedHere(err) {
				// The same refusal, whatever net/http reports: over
				// HTTP/1 it closes the connection as it refuses to
				// write the request, and the read that the closing
				// cuts may answer first ("use of closed network
				// connection"); over HTTP/2 it refuses any such
				// trailer. A body HTTP/1 sends chunked only if it is
				// not empty (see sentChunked) is refused only then.
				return &RequestError{Err: fmt.Errorf("invalid Trailer key %q: %w", k, err)}
			}
		}
	}
	if strings.Contains(msg, "http: invalid Host header") {
		// An invalid Host: net/http sends it empty to a server, but
		// refuses to send it to a proxy.
		return &RequestError{Err: err}
	}
	if errors.Is(err, net.ErrClosed) && !validHost(req) {
		// The same refusal, as net/http may report it: it closes the
		// connection to the proxy as it refuses to write the request,
		// and the read that the closing cuts can answer first.
		return &RequestError{Err: fmt.Errorf("invalid Host header: %w", err)}
	}
	var ae *net.AddrError
	if errors.As(err, &ae) && (isSplitHostPortFault(ae.Err) || ae.Err == "invalid port") {
		// A host net/http cannot split from its port (a URL set by
		// hand with a stray bracket), or a port out of range
		// (:99999): its dial fails before it starts.
		return &RequestError{Err: err}
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" && oe.Addr != nil {
		if _, port, e := net.SplitHostPort(oe.Addr.String()); e == nil && port == "0" {
			// A dial to port 0 (http://host:0/), which no server
			// listens on: refused every time, as a plain client
			// finds at once.
			return &RequestError{Err: err}
		}
	}
	if re := got1xxFault(req, err); re != nil {
		return re
	}
	return err
}

// closedHere reports whether err is the error of a read or write on a
// connection this side closed, as net/http's HTTP/1 client reports the
// read that its own closing of the connection cut when that read answers
// first: net.ErrClosed ("use of closed network connection") over a
// network connection, io.ErrClosedPipe ("io: read/write on closed pipe")
// over net.Pipe, the connection of resilienttest.NewPipeServer and of
// in-memory dialers. It is called only after a failure.
func closedHere(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe)
}

// reservedTrailer returns the name, in canonical form, of a trailer in h
// that no request may declare, as net/http refuses it (Content-Length,
// Transfer-Encoding, Trailer), or "".
func reservedTrailer(h http.Header) string {
	for name := range h {
		switch k := http.CanonicalHeaderKey(name); k {
		case "Content-Length", "Transfer-Encoding", "Trailer":
			return k
		}
	}
	return ""
}

// Whether net/http's HTTP/1 client sends a request's body chunked, and
// writes its trailers then (see sentChunked).
const (
	chunkedNever  = iota // a body of known length, or none
	chunkedMaybe         // a body of unknown length net/http probes first
	chunkedSurely        // a body of unknown length, or one sent chunked by hand
)

// sentChunked says whether net/http's HTTP/1 client sends the body of req
// chunked, as its transfer writer decides: a body of unknown length
// (ContentLength 0 or less, not http.NoBody), or any body with a
// TransferEncoding of chunked. It sends a body of unknown length of a
// method that usually has none (GET, HEAD, DELETE, OPTIONS, PROPFIND,
// SEARCH) chunked only when its first Read yields a byte, or none in
// 200ms, and a CONNECT's never.
func sentChunked(req *http.Request) int {
	if req.Body == nil {
		return chunkedNever
	}
	if len(req.TransferEncoding) > 0 {
		if req.TransferEncoding[0] == "chunked" {
			return chunkedSurely
		}
		return chunkedNever
	}
	if req.Body == http.NoBody || req.ContentLength > 0 {
		return chunkedNever
	}
	switch req.Method {
	case "CONNECT":
		return chunkedNever
	case "", "GET", "HEAD", "DELETE", "OPTIONS", "PROPFIND", "SEARCH":
		return chunkedMaybe
	}
	return chunkedSurely
}

// validHost reports whether the Host req is sent with (req.Host, else its
// URL's) is one net/http writes as it is (see redact.ValidHost).
func validHost(req *http.Request) bool {
	h := req.Host
	if h == "" && req.URL != nil {
		h = req.URL.Host
	}
	return redact.ValidHost(h)
}

// isSplitHostPortFault reports whether why is the message of
// net.SplitHostPort for an address it cannot split.
func isSplitHostPortFault(why string) bool {
	switch why {
	case "missing port in address", "too many colons in address",
		"missing ']' in address", "unexpected '[' in address", "unexpected ']' in address":
		return true
	}
	return false
}

// h2RequestFaults are net/http's messages for the requests its HTTP/2
// client refuses to send (its errors are unexported): request headers that
// are valid over HTTP/1 (an invalid Host is sent empty there), and a path
// without its leading slash (a URL whose Path or Opaque was set by hand),
// which HTTP/1 sends as it is, so that invalidRequest does not refuse them,
// and a body longer than its ContentLength. A header list larger than the
// server accepts is refused again whatever the retry. A body longer than
// its ContentLength is caught by checkedBody and captureReader too, but the
// HTTP/2 client checks the length itself and returns its own error instead
// of their *RequestError.
var h2RequestFaults = [...]string{
	"http2: invalid Connection request header",
	"http2: invalid Upgrade request header",
	"http2: invalid Transfer-Encoding request header",
	"http2: invalid Host header",
	"http2: request header list larger than peer's advertised limit",
	"http2: request body larger than specified content length",
	"http2: invalid request :path",
}

// invalidRequest says what makes req impossible to send, or "".
func invalidRequest(req *http.Request) string {
	if req.Method != "" && !isToken(req.Method) {
		return fmt.Sprintf("invalid method %q", req.Method)
	}
	if req.URL == nil || (req.URL.Host == "" && req.Host == "") {
		return "no Host in request URL"
	}
	if hasCTL(req.URL.RequestURI()) {
		// net/http writes the query (and an opaque URL) as it is, and
		// refuses a control character in it.
		return "control character in the request URL"
	}
	if why := invalidFields(req.Header, "header"); why != "" {
		return why
	}
	return invalidFields(req.Trailer, "trailer")
}

// invalidFields says which field of h, the request's header or trailer
// (what), cannot be sent, or "".
func invalidFields(h http.Header, what string) string {
	for name, vs := range h {
		if !isToken(name) {
			return fmt.Sprintf("invalid %s field name %q", what, name)
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return fmt.Sprintf("invalid %s field value for %q", what, name)
			}
		}
	}
	return ""
}

// isToken reports whether s is an RFC 9110 token, as header names and
// methods must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || c <= ' ' || c == 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// reservedHeader returns why a header named name (in canonical form) may
// not carry what an option writes into every request, or "" when it may:
// it carries a credential, which the option's value would replace and
// which would be reported as that value, or it describes the message or
// its connection, which net/http writes itself.
func reservedHeader(name string) string {
	if keys := keyHeaders(); slices.Contains(keys[:], name) {
		// The common ones (see keyHeaders): overwritten by a count or a
		// key, the caller's credential would be lost, and reported.
		return "carries credentials"
	}
	switch name {
	case "Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "X-Amz-Security-Token":
		// As those, and AWS's session token.
		return "carries credentials"
	case "Host", "Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding",
		"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Expect":
		return "describes the request's message or connection"
	}
	return ""
}

// hasCTL reports whether s holds an ASCII control character, tab
// included, as net/http refuses in a request line.
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// validHeaderValue reports whether v may be sent as a header value: no
// control character but horizontal tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
