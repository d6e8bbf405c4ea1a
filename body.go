package resilient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// errBodyNotReplayable is returned by replayBody.next when the request body
// cannot be sent again.
var errBodyNotReplayable = errors.New("resilient: request body cannot be replayed")

// errBodyDetached is returned to a reader of an attempt's body once a later
// attempt took over the body.
var errBodyDetached = errors.New("resilient: request body read after a newer attempt started")

// errBodyClosed is returned to a reader of an attempt's body after its
// Close, when no later attempt took over the body.
var errBodyClosed = errors.New("resilient: request body read after Close")

// replayBody hands out the request body of each attempt of one RoundTrip.
//
// The first attempt gets the caller's body itself. Later attempts get a body
// from GetBody when the request has one. Otherwise a body that can seek (an
// *os.File of a regular file) is rewound to where the call found it, and
// any other body is captured while it is sent, up to a limit, and later
// attempts read the captured prefix followed by whatever the earlier
// attempts left unread; once more than the limit has been read, the body
// cannot be replayed.
type replayBody struct {
	req  *http.Request
	cap  *captureBody // nil unless the body is captured
	sent bool         // the caller's body (or its capture wrapper) went to an attempt
	// mem is the body in memory of a request with a GetBody, replayed
	// from its bytes (see memoryBody); zero for none.
	mem memoryBody
	// last is the body of the attempt before, or of its hedged copy made
	// last (see hedgeRun.sealBody), when the request has a GetBody and
	// its body is not in memory: a retry's GetBody, which may rewind the
	// source that body reads, waits for its reader (see next).
	last *checkedBody
}

// init prepares the replay of req's body: from its bytes when it is in
// memory and the request has a GetBody, recorded in mem (see memoryBody),
// copied for a retry when it is at most memLimit bytes long; when the
// request has no GetBody, by seeking when the body can seek from where it
// stands, else by capturing at most limit bytes. A zero replayBody from a
// request without a body hands out nil bodies.
func (b *replayBody) init(req *http.Request, limit, memLimit int64) {
	b.req = req
	if hasBody(req) && req.GetBody != nil && b.mem.init(req.Body, req.ContentLength, memLimit) {
		return
	}
	if hasBody(req) && req.GetBody == nil {
		b.cap = &captureBody{src: req.Body, limit: limit, want: req.ContentLength}
		if s, ok := req.Body.(io.Seeker); ok {
			// A file that is not a regular one (a pipe, a terminal)
			// fails here and is captured.
			if origin, err := s.Seek(0, io.SeekCurrent); err == nil {
				b.cap.seeker, b.cap.origin = s, origin
				return
			}
		}
		if req.ContentLength > 0 && req.ContentLength <= limit {
			// The caller's ContentLength may be wrong: the buffer grows
			// past DefaultMaxBufferedBody only as the bytes come.
			b.cap.buf = make([]byte, 0, min(req.ContentLength, DefaultMaxBufferedBody))
		}
	}
}

func hasBody(req *http.Request) bool {
	return req.Body != nil && req.Body != http.NoBody
}

// first returns the body of the first attempt, and whether it is the
// caller's body itself: so it is when it is in memory and replayed from its
// bytes (see memoryBody), which no retry rewinds under the attempt's
// reader. Any other body from a request with a GetBody is watched (see
// checkedBody): a retry's GetBody waits for its reader (see next).
func (b *replayBody) first() (io.ReadCloser, bool) {
	if !hasBody(b.req) {
		return b.req.Body, true
	}
	b.sent = true
	if b.cap != nil {
		return b.cap.reader(), false
	}
	if b.mem.ok() {
		return b.req.Body, true
	}
	b.last = &checkedBody{rc: b.req.Body, want: b.req.ContentLength}
	return b.last, false
}

// next returns the body of a later attempt, or an error when the body
// cannot be replayed: also when the caller's GetBody failed as it renewed
// the body of the attempt before, which a hedged copy had taken over (see
// hedgeRun.renew), whose error it returns, and GetBody is not called again. A body replayed by seeking waits for an earlier
// attempt's read of it to end, at most until ctx is done, cancel is closed
// or deadline passes (zero for none): see captureBody.rewind. So does a
// body from the caller's GetBody, which may rewind the one source the
// earlier attempt's transport still reads (an answer that came before the
// body was sent: net/http sends it on, and closes it, in a goroutine of
// its own): the earlier attempt's body is detached, and GetBody called
// once a Read of it in progress ends. A body in memory is a copy of its
// bytes (see memoryBody), made at once; GetBody is not called.
func (b *replayBody) next(ctx context.Context, cancel <-chan struct{}, deadline time.Time) (io.ReadCloser, error) {
	if !hasBody(b.req) {
		return b.req.Body, nil
	}
	if b.cap != nil {
		return b.cap.replay(ctx, cancel, deadline)
	}
	if b.mem.ok() {
		return b.mem.reader()
	}
	if b.sharesSource() {
		b.last.detach()
		if err := b.last.waitSent(ctx, cancel, deadline); err != nil {
			return nil, fmt.Errorf("%w: waiting for an earlier attempt's read of it: %w", errBodyNotReplayable, err)
		}
	}
	if b.last != nil {
		if err := b.last.renewFailed(); err != nil {
			// GetBody failed as it renewed a hedged attempt's body:
			// it is not asked again, as after a retry's that fails.
			return nil, err
		}
	}
	body, err := getBody(b.req)
	if err != nil {
		return nil, notReplayable(err)
	}
	// The next retry's GetBody may rewind this body's source: it waits
	// for its reader, even in memory (see first).
	b.last = &checkedBody{rc: body, want: b.req.ContentLength, replay: b.last.replayLength()}
	return b.last, nil
}

// replayLength returns the length a body of unknown length from GetBody
// made after b, the body made before it (the attempt's, a retry's or a
// hedged copy's; nil for none), must have: that of b once its reader read
// it to its end, else the one b had to have itself (see replay), passed
// on from body to body, whether the body before was read or not; none
// known (zero), and none for a request with a ContentLength, which
// net/http checks. A body whose reader stopped before its end (an answer
// that came first: HTTP/2 stops sending a body once the response ends
// the stream) is at least as long as what was read of it: so must the
// next be, when no exact length is known. A careless GetBody that hands
// out the body an attempt already sent (req.Body itself, or its one
// reader wrapped anew), drained, would have a retry or a hedged copy send
// an empty body, or what the attempt left of it (an empty PUT, or its
// tail, which the server stores) where a plain client sends the caller's
// bytes once: checked against that length (see checkReplayLength), it
// fails as a body cut short instead.
//
// A length does not tell the tail a careless GetBody hands out of a body
// read in part from the whole body, when it is as long as what was read:
// a large PUT whose transport read a window's worth of it before a 503
// (TestGetBodyAfterABodyReadInPartBeginsAsIt). The body made after b
// must also begin with the bytes b, or the body before it, began with
// (see noteHead): a tail does not, unless the body repeats itself there.
func (b *checkedBody) replayLength() replayLen {
	if b == nil || b.want > 0 {
		return replayLen{}
	}
	r := b.replay
	if b.ended.Load() {
		r.n, r.least = b.read.Load(), false
	} else if read := b.read.Load(); read > r.n && (r.least || r.n == 0) {
		r.n, r.least = read, true
	}
	// Read before the count that says so (see noteHead), and checked
	// against the bytes before b's: b's own, when more, are theirs too.
	if h := int(min(b.read.Load(), replayHead)); h > r.headN {
		copy(r.head[:h], b.head[:h])
		r.headN = h
	}
	return r
}

// replayHead is how many of a body's first bytes the body from GetBody
// made after it must begin with (see replayLen).
const replayHead = 16

// replayLen is the length a body of unknown length from GetBody must have
// (see checkedBody.replayLength): n bytes, or, when least is set, n bytes
// at least; n is 0 for none known. It must begin with head[:headN], the
// first bytes read of the bodies made before it.
type replayLen struct {
	n     int64
	least bool
	head  [replayHead]byte
	headN int
}

// noteHead records p, what a Read of b read once start bytes of it were
// read, among the first bytes of b (see head), and reports whether they
// are those the body before b began with (see replayLen): a body from a
// careless GetBody that hands out what an attempt left of the body it
// read in part begins elsewhere, and is refused before any of it is
// passed on. It costs a body past its first bytes one comparison.
// It is called for a body of unknown length only.
func (b *checkedBody) noteHead(p []byte, start int64) bool {
	if start >= replayHead {
		return true
	}
	if want := b.replay.head[min(start, int64(b.replay.headN)):b.replay.headN]; !bytes.HasPrefix(p, want[:min(len(want), len(p))]) {
		return false
	}
	copy(b.head[start:], p)
	return true
}

// sharesSource reports whether the earlier attempt's body may still be
// read (see last) while the caller's GetBody, which may share its source,
// makes the next.
func (b *replayBody) sharesSource() bool {
	return b.last != nil && !b.last.sent()
}

// sendable returns body, a copy of the body of a request whose
// ContentLength is want (from GetBody, or a capture), as an attempt or a
// hedged copy sends it: as it is when it is in memory (see inMemory), which
// net/http writes with the headers in one write, else in a checkedBody.
func sendable(body io.ReadCloser, want int64) io.ReadCloser {
	if _, ok := inMemory(body, want); ok {
		return body
	}
	return &checkedBody{rc: body, want: want}
}

// sent reports whether the body's reader is done with it: a Read returned
// io.EOF, or it was closed or detached with no Read in progress (a Read
// after any of them does not read rc), nor renewing it from GetBody (see
// hedgeRun.renew). A Read of ContentLength bytes is not the end:
// net/http reads on to check that the body ends there. Read and Close
// mark their state before they look for a waiter (see wake), and waitSent
// marks its wait before it looks at their state: one of the two sees the
// other.
func (b *checkedBody) sent() bool {
	return b.ended.Load() || (b.closed.Load() || b.detached.Load()) && !b.watch.reading.Load() && b.use.Load() != bodyRenewing
}

// detach makes the body's Reads fail, once a Read in progress ends: a
// retry's body from GetBody takes the source over, as a capture's replay
// does (see replayBody.takesOver).
func (b *checkedBody) detach() {
	b.detached.Store(true)
}

// takeOverUnread takes the body over when its reader has not begun to
// read it (an attempt whose connection is still being dialed), and reports
// whether it did: a hedged copy's body from GetBody may then take the
// source over, as a retry's does (see detach). A Read that begins after
// it fails without reading rc (see beginRead), unless the copy gave the
// body back first (see giveBack), or its body was sent, and the Read reads
// a body of its own from GetBody (see hedgeRun.renew).
func (b *checkedBody) takeOverUnread() bool {
	return b.use.CompareAndSwap(0, bodyTaken)
}

// giveBack undoes takeOverUnread for a copy that never reached the wire
// (a layer refused it), and reports whether it did: no Read of the body
// began meanwhile, and its reader may still read it whole.
func (b *checkedBody) giveBack() bool {
	return b.use.CompareAndSwap(bodyTaken, 0)
}

// wake ends a wait for the body to be sent (see waitSent), once it is.
func (b *checkedBody) wake() {
	if p := b.idle.Load(); p != nil && b.sent() && b.idle.CompareAndSwap(p, nil) {
		close(*p)
	}
}

// waitSent waits for the body to be sent (see sent), by an earlier
// attempt's transport that may still read it after its RoundTrip returned
// (an answer that came before the body was sent: net/http closes the
// body once its write ends, in a goroutine of its own), at most until ctx
// is done, cancel is closed or deadline passes (zero for none); it
// returns the cause when the wait ends so. It is used by one waiter at a
// time (the retry loop).
func (b *checkedBody) waitSent(ctx context.Context, cancel <-chan struct{}, deadline time.Time) error {
	if b.sent() {
		return nil
	}
	idle := make(chan struct{})
	b.idle.Store(&idle)
	if b.sent() {
		return nil
	}
	expired, stop := expiry(deadline)
	defer stop()
	return waitWithin(idle, ctx, cancel, expired)
}

// errNilGetBody is the error of a request whose GetBody returned neither a
// body nor an error.
var errNilGetBody = errors.New("resilient: Request.GetBody returned a nil body")

// getBody returns a new copy of req's body from its GetBody, or an error,
// errNilGetBody when GetBody returned neither: a nil body would panic at
// its first Read, in net/http's goroutine that writes it. A body GetBody
// returned with its error (a file opened, its seek failed) is closed: no
// one else would.
func getBody(req *http.Request) (io.ReadCloser, error) {
	body, err := req.GetBody()
	switch {
	case err == nil && body == nil:
		err = errNilGetBody
	case err != nil && body != nil:
		body.Close()
		body = nil
	}
	return body, err
}

// notReplayable returns the error of a body that GetBody failed to make,
// err being GetBody's: a retry's (see replayBody.next), or that of an
// attempt whose Read renews its body (see hedgeRun.renew).
func notReplayable(err error) error {
	return fmt.Errorf("%w: %w", errBodyNotReplayable, err)
}

// freeze keeps a retry possible while the response of an attempt is
// considered: the attempt's writer, which may still be sending the body,
// may not read past what the capture can replay.
func (b *replayBody) freeze() {
	if b.cap != nil {
		b.cap.setFrozen(true)
	}
}

// thaw lets the last attempt's writer read on: no retry follows.
func (b *replayBody) thaw() {
	if b.cap != nil {
		b.cap.setFrozen(false)
	}
}

// takesOver reports whether next takes the body over from the reader of the
// attempt before (a capture, a source rewound by seeking, or one the
// caller's GetBody may share, still being read: see sharesSource), which
// then fails if it is still being sent: its transport closes that
// attempt's connection, the one its response is read from.
func (b *replayBody) takesOver() bool {
	return b.cap != nil || b.sharesSource()
}

// replayable reports whether next would succeed, without side effects.
func (b *replayBody) replayable() bool {
	return b.cap == nil || b.cap.replayable()
}

// close is called when RoundTrip returns. It closes the caller's body
// unless an attempt received it (the transport that received it closes
// it). A captured body is closed once the last attempt's reader is closed
// by the transport that received it, which may be after RoundTrip returns
// (HTTP/2 and early responses send the body after the response arrives),
// or at once if no reader is open.
func (b *replayBody) close() {
	if !hasBody(b.req) {
		return
	}
	if b.cap != nil {
		b.cap.release()
		return
	}
	if !b.sent {
		b.req.Body.Close()
	}
}

// captureBody records the first limit bytes read from src, or, when src
// can seek (seeker is set), rewinds it for each replay instead: nothing is
// recorded and there is no limit.
//
// Reads of src are serialized by readMu, which is held while src.Read
// blocks; mu guards the state and is never held across a read, so that a
// source that blocks (a pipe) does not block a retry's replay or a Close.
// A rewind holds readMu: an earlier attempt's read of a seekable source
// (a file) ends first; the rewind waits for it within the call's bounds
// (see rewind), for a source's Read may block for as long as it likes.
type captureBody struct {
	readMu sync.Mutex // held while reading or rewinding src
	// rewinding says that a rewind waits for readMu: the reader that
	// releases it then closes readFree (see unlockRead).
	rewinding atomic.Bool
	readFree  chan struct{} // guarded by mu

	mu        sync.Mutex
	src       io.ReadCloser
	seeker    io.Seeker // src, when it is replayed by seeking
	origin    int64     // where seeker stood when the call began
	limit     int64
	want      int64 // the request's ContentLength; 0 or less when unknown
	frozen    bool  // reads of src stop at the limit (see replayBody.freeze)
	wake      chan struct{}
	buf       []byte
	read      int64 // bytes read from src so far (since the last rewind)
	overflow  bool  // more than limit bytes were read, or a rewind failed: no replay
	srcErr    error // sticky error (io.EOF included) from src
	gen       int   // generation of the current reader; 0 before the first
	curClosed bool  // the current reader was closed
	done      bool  // RoundTrip returned: close src with the current reader
	srcClosed bool
}

func (c *captureBody) replayable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.overflow
}

// readWhole reports whether src was read to its end (or to the request's
// ContentLength) and can be replayed: no Read of it waits any longer for
// what its writer sends.
func (c *captureBody) readWhole() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.overflow && (c.srcErr != nil || c.want > 0 && c.read >= c.want)
}

// reader returns the reader of the first attempt.
func (c *captureBody) reader() io.ReadCloser {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.curClosed = false
	return &captureReader{c: c, gen: c.gen}
}

// replay returns a reader of a later attempt: the captured prefix, then the
// rest of src; or src rewound, within the bounds of rewind. Readers handed
// out before it stop working.
func (c *captureBody) replay(ctx context.Context, cancel <-chan struct{}, deadline time.Time) (io.ReadCloser, error) {
	if c.seeker != nil {
		return c.rewind(ctx, cancel, deadline)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.overflow {
		return nil, errBodyNotReplayable
	}
	c.gen++
	c.curClosed = false
	c.frozen = false
	c.wakeLocked()
	return &captureReader{c: c, gen: c.gen}, nil
}

// rewind seeks src back to its origin and returns a reader of it, once an
// earlier attempt's read in progress has ended. It waits for that read at
// most until ctx is done, cancel is closed or deadline passes: a source
// whose Read blocks (an io.SectionReader over a remote store that stalls)
// would otherwise hold the call past them. A failed seek leaves the body
// not replayable: where src stands is then unknown.
func (c *captureBody) rewind(ctx context.Context, cancel <-chan struct{}, deadline time.Time) (io.ReadCloser, error) {
	if err := c.lockReadWithin(ctx, cancel, deadline); err != nil {
		return nil, fmt.Errorf("%w: waiting for an earlier attempt's read of it: %w", errBodyNotReplayable, err)
	}
	defer c.unlockRead()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.overflow {
		return nil, errBodyNotReplayable
	}
	if c.srcClosed {
		// A reader whose Close closed src after RoundTrip's end: no
		// replay can follow, but say so rather than seek a closed file.
		return nil, errBodyNotReplayable
	}
	if _, err := c.seeker.Seek(c.origin, io.SeekStart); err != nil {
		c.overflow = true
		return nil, fmt.Errorf("%w: rewinding it: %w", errBodyNotReplayable, err)
	}
	c.gen++
	c.curClosed = false
	c.read, c.srcErr = 0, nil
	return &captureReader{c: c, gen: c.gen}, nil
}

// whole returns a reader of the captured body when src was read to its end
// within the limit, for a hedged copy, which reads it beside the attempt's
// reader; it reports false while the attempt is still sending it, and for
// a body that cannot be replayed or is replayed by seeking (one reader at
// a time). The reader lets go of the bytes once closed (see wholeBody).
func (c *captureBody) whole() (io.ReadCloser, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.overflow || c.seeker != nil || c.srcErr != io.EOF {
		return nil, false
	}
	return &wholeBody{r: bytes.NewReader(c.buf)}, true
}

// wholeBody is the body of a hedged copy read from a capture (see
// captureBody.whole). Its Close lets go of the captured bytes: the
// response of a copy that answered first holds the copy's request (net/http
// holds it while the response's body is read), and may live long after the
// call (a stream), where the capture lets go of them (see dropLocked) and a
// plain client keeps none of the caller's bytes. It is safe for concurrent
// use: a transport may close a body while its writer reads it.
type wholeBody struct {
	mu sync.Mutex
	r  *bytes.Reader // nil once closed
}

// Read reads the captured bytes; after Close it fails with errBodyClosed.
func (b *wholeBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.r == nil {
		return 0, errBodyClosed
	}
	return b.r.Read(p)
}

// Close lets go of the bytes; a Read after it fails.
func (b *wholeBody) Close() error {
	b.mu.Lock()
	b.r = nil
	b.mu.Unlock()
	return nil
}

// lockReadWithin locks readMu, waiting for a read in progress at most until
// ctx is done, cancel is closed or deadline passes (zero for none); it
// returns the cause when the wait ends so. It is used by one waiter at a
// time (the retry loop's rewind).
func (c *captureBody) lockReadWithin(ctx context.Context, cancel <-chan struct{}, deadline time.Time) error {
	if c.readMu.TryLock() {
		return nil
	}
	expired, stop := expiry(deadline)
	defer stop()
	defer func() {
		c.mu.Lock()
		c.readFree = nil
		c.rewinding.Store(false)
		c.mu.Unlock()
	}()
	for {
		// Said before trying again: a reader that unlocks readMu after
		// this try sees it, and wakes this wait (see unlockRead).
		free := make(chan struct{})
		c.mu.Lock()
		c.readFree = free
		c.rewinding.Store(true)
		c.mu.Unlock()
		if c.readMu.TryLock() {
			return nil
		}
		if err := waitWithin(free, ctx, cancel, expired); err != nil {
			return err
		}
	}
}

// expiry returns a channel that fires at deadline (nil, which never
// fires, for the zero time) and the function that stops its timer.
func expiry(deadline time.Time) (<-chan time.Time, func() bool) {
	if deadline.IsZero() {
		return nil, noTimer
	}
	timer := time.NewTimer(time.Until(deadline))
	return timer.C, timer.Stop
}

// noTimer is expiry's stop without a timer.
func noTimer() bool { return false }

// waitWithin waits for ready to be closed, at most until ctx is done,
// cancel is closed or expired fires (the call's deadline); it returns the
// cause when the wait ends so, else nil.
func waitWithin(ready <-chan struct{}, ctx context.Context, cancel <-chan struct{}, expired <-chan time.Time) error {
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-cancel:
		return errRequestCanceled
	case <-expired:
		if ctx.Err() != nil {
			return context.Cause(ctx) // the context's deadline
		}
		return errBudgetSpent
	}
}

// unlockRead unlocks readMu, and wakes a rewind that waits for it.
func (c *captureBody) unlockRead() {
	c.readMu.Unlock()
	if c.rewinding.Load() {
		c.mu.Lock()
		free := c.readFree
		c.readFree = nil
		c.mu.Unlock()
		if free != nil {
			close(free)
		}
	}
}

func (c *captureBody) setFrozen(f bool) {
	c.mu.Lock()
	c.frozen = f
	if !f {
		c.wakeLocked()
	}
	c.mu.Unlock()
}

// wakeLocked wakes the readers waiting for a freeze to end. c.mu is held.
func (c *captureBody) wakeLocked() {
	if c.wake != nil {
		close(c.wake)
		c.wake = nil
	}
}

// release closes src now if no reader is open, or else lets the current
// reader's Close close it. With no reader open, the captured bytes go too
// (see dropLocked).
func (c *captureBody) release() {
	c.mu.Lock()
	c.done = true
	c.frozen = false
	c.wakeLocked()
	idle := c.gen == 0 || c.curClosed
	closeSrc := !c.srcClosed && idle
	c.srcClosed = c.srcClosed || closeSrc
	if idle {
		c.dropLocked()
	}
	c.mu.Unlock()
	if closeSrc {
		c.src.Close()
	}
}

// dropLocked lets go of the captured bytes once RoundTrip has returned and
// no reader reads them: no retry replays them, and the response, whose
// body holds the last attempt's request and so this capture, may live
// long after (a stream), where a plain client keeps none of the caller's
// bytes. c.mu is held.
func (c *captureBody) dropLocked() {
	c.overflow, c.buf = true, nil
}

// captureReader is the body of one attempt.
type captureReader struct {
	c      *captureBody
	gen    int
	pos    int64 // position in the whole body
	closed bool  // guarded by c.mu
	watch  bodyWatch
	failed atomic.Pointer[RequestError] // what Close returned, when the source's Close failed (see closeFault)
}

func (r *captureReader) Read(p []byte) (int, error) {
	c := r.c
	for {
		c.mu.Lock()
		switch {
		case r.closed || r.gen != c.gen:
			err := r.detachedErr()
			c.mu.Unlock()
			return 0, err
		case len(p) == 0:
			c.mu.Unlock()
			return 0, nil
		case r.pos < int64(len(c.buf)):
			// Serve from the captured prefix first.
			n := copy(p, c.buf[r.pos:])
			r.pos += int64(n)
			c.mu.Unlock()
			return n, nil
		case r.pos < c.read:
			// The prefix was not kept (overflow): this reader cannot go on.
			c.mu.Unlock()
			return 0, errBodyNotReplayable
		case c.srcErr != nil:
			err := c.srcErr
			c.mu.Unlock()
			return 0, err
		}
		c.mu.Unlock()

		// readMu may be held by an earlier attempt's Read of src, blocked
		// in the caller's source: waiting for it is waiting for the
		// caller's body, as a Read of src is (see bodyWatch).
		running := r.watch.begin()
		c.readMu.Lock()
		c.mu.Lock()
		if r.closed || r.gen != c.gen || r.pos != c.read || c.srcErr != nil {
			// Detached, or an older reader's read ended while this one
			// waited for readMu: look again.
			c.mu.Unlock()
			c.unlockRead()
			r.watch.end(running)
			continue
		}
		q := p
		if c.frozen && !c.overflow && c.seeker == nil {
			room := c.limit - c.read
			if room <= 0 {
				// Wait for the retry (this reader is then detached) or
				// for the call to end without one.
				if c.wake == nil {
					c.wake = make(chan struct{})
				}
				wake := c.wake
				c.mu.Unlock()
				c.unlockRead()
				r.watch.end(running) // the freeze is the Transport's wait, not the body's
				<-wake
				continue
			}
			if int64(len(q)) > room {
				q = q[:room]
			}
		}
		c.mu.Unlock()
		n, err := c.src.Read(q)
		r.watch.end(running)
		err = c.checkLength(c.read+int64(n), err)
		c.mu.Lock()
		if n > 0 {
			// The bytes are kept even when this reader was detached or
			// frozen meanwhile: a newer reader needs them. Such a read,
			// begun before the retry, may pass the limit by its own
			// length: it cannot be undone, and the retry must not fail
			// for it. Only the current attempt's reads overflow.
			stale := r.closed || r.gen != c.gen || c.frozen
			switch {
			case c.overflow || c.seeker != nil:
			case c.done && !stale:
				// RoundTrip returned: no retry replays the body, and
				// the last attempt's reader, which reads src, is past
				// the prefix. What it sends on (HTTP/2 sends a body
				// after the response: a stream, a tunnel) is not kept,
				// nor is the prefix.
				c.overflow = true
				c.buf = nil
			default:
				if c.read+int64(n) <= c.limit || stale {
					c.buf = append(c.grow(n), q[:n]...)
				} else {
					c.overflow = true
					c.buf = nil
				}
			}
			c.read += int64(n)
		}
		if err != nil {
			c.srcErr = err
		}
		var detached error
		if r.closed || r.gen != c.gen {
			detached = r.detachedErr()
		} else {
			r.pos += int64(n)
		}
		c.mu.Unlock()
		c.unlockRead()
		if detached != nil {
			return 0, detached
		}
		return n, err
	}
}

// detachedErr returns the error of a Read of r once r is detached:
// errBodyDetached when a later attempt took over the body, else
// errBodyClosed, r was closed. c.mu is held.
func (r *captureReader) detachedErr() error {
	if r.gen != r.c.gen {
		return errBodyDetached
	}
	return errBodyClosed
}

// grow returns c.buf with room for n more bytes. Its capacity doubles, but
// no further than the limit, nor than the request's ContentLength within
// it: append's own growth passes them, by up to a quarter. A stale read
// past the limit (see Read) gets the room it needs. c.mu is held.
func (c *captureBody) grow(n int) []byte {
	need := int64(len(c.buf)) + int64(n)
	if need <= int64(cap(c.buf)) {
		return c.buf
	}
	bound := c.limit
	if c.want > 0 && c.want < bound {
		bound = c.want
	}
	nb := make([]byte, len(c.buf), min(max(2*int64(cap(c.buf)), need), max(bound, need)))
	copy(nb, c.buf)
	return nb
}

// checkLength returns the error of a Read of src that returned err once
// read bytes were read (see checkLength).
func (c *captureBody) checkLength(read int64, err error) error {
	return checkLength(c.want, read, err)
}

// Close marks this attempt's reader closed. The caller's body stays open so
// that a later attempt can read the rest of it, unless RoundTrip has
// returned and this is the last attempt's reader.
func (r *captureReader) Close() error {
	c := r.c
	c.mu.Lock()
	r.closed = true
	closeSrc := false
	read := r.pos // what this attempt sent
	if r.gen == c.gen {
		c.curClosed = true
		// A source read to its end is no more needed: a replay reads
		// what was captured. It is closed now, as net/http closes a body
		// it sent, so that a Close that fails fails the attempt, as it
		// fails a plain client's request.
		atEOF := c.srcErr == io.EOF && c.seeker == nil
		closeSrc = (c.done || atEOF) && !c.srcClosed
		c.srcClosed = c.srcClosed || closeSrc
		if c.done {
			c.dropLocked() // the last reader of the call's last attempt
		}
	}
	c.mu.Unlock()
	if closeSrc {
		if err := c.src.Close(); err != nil {
			re := bodyFault(c.want, read, err)
			r.failed.Store(re)
			return re
		}
	}
	return nil
}
