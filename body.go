package resilient

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// errBodyNotReplayable is returned by replayBody.next when the request body
// cannot be sent again.
var errBodyNotReplayable = errors.New("resilient: request body cannot be replayed")

// errBodyDetached is returned to a reader of an attempt's body once a later
// attempt took over the body.
var errBodyDetached = errors.New("resilient: request body read after a newer attempt started")

// replayBody hands out the request body of each attempt of one RoundTrip.
//
// The first attempt gets the caller's body itself. Later attempts get a body
// from GetBody when the request has one. Otherwise the caller's body is
// captured while it is sent, up to a limit, and later attempts read the
// captured prefix followed by whatever the earlier attempts left unread; once
// more than the limit has been read, the body cannot be replayed.
type replayBody struct {
	req  *http.Request
	cap  *captureBody // nil unless the body is captured
	sent bool         // the caller's body (or its capture wrapper) went to an attempt
}

// init prepares the replay of req's body, capturing at most limit bytes when
// the request has no GetBody. A zero replayBody from a request without a
// body hands out nil bodies.
func (b *replayBody) init(req *http.Request, limit int64) {
	b.req = req
	if hasBody(req) && req.GetBody == nil {
		b.cap = &captureBody{src: req.Body, limit: limit}
	}
}

func hasBody(req *http.Request) bool {
	return req.Body != nil && req.Body != http.NoBody
}

// first returns the body of the first attempt.
func (b *replayBody) first() io.ReadCloser {
	if !hasBody(b.req) {
		return b.req.Body
	}
	b.sent = true
	if b.cap != nil {
		return b.cap.reader()
	}
	return b.req.Body
}

// next returns the body of a later attempt, or an error when the body
// cannot be replayed.
func (b *replayBody) next() (io.ReadCloser, error) {
	if !hasBody(b.req) {
		return b.req.Body, nil
	}
	if b.cap != nil {
		return b.cap.replay()
	}
	body, err := b.req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBodyNotReplayable, err)
	}
	return body, nil
}

// replayable reports whether next would succeed, without side effects.
func (b *replayBody) replayable() bool {
	return b.cap == nil || b.cap.replayable()
}

// close closes the caller's body unless an attempt received it (the
// transport that received it closes it), or when it is captured (the
// capture wrapper never closes it, so that the rest can still be read).
func (b *replayBody) close() {
	if !hasBody(b.req) {
		return
	}
	if b.cap != nil || !b.sent {
		b.req.Body.Close()
	}
}

// captureBody records the first limit bytes read from src.
type captureBody struct {
	mu       sync.Mutex
	src      io.ReadCloser
	limit    int64
	buf      []byte
	read     int64 // bytes read from src so far
	overflow bool  // more than limit bytes were read: the prefix is incomplete
	srcErr   error // sticky error (io.EOF included) from src
	gen      int   // generation of the current reader
}

func (c *captureBody) replayable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.overflow
}

// reader returns the reader of the first attempt.
func (c *captureBody) reader() io.ReadCloser {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	return &captureReader{c: c, gen: c.gen}
}

// replay returns a reader of a later attempt: the captured prefix, then the
// rest of src. Readers handed out before it stop working.
func (c *captureBody) replay() (io.ReadCloser, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.overflow {
		return nil, errBodyNotReplayable
	}
	c.gen++
	return &captureReader{c: c, gen: c.gen}, nil
}

// captureReader is the body of one attempt.
type captureReader struct {
	c      *captureBody
	gen    int
	pos    int64 // position in the whole body
	closed bool
}

func (r *captureReader) Read(p []byte) (int, error) {
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.closed || r.gen != c.gen {
		return 0, errBodyDetached
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Serve from the captured prefix first.
	if r.pos < int64(len(c.buf)) {
		n := copy(p, c.buf[r.pos:])
		r.pos += int64(n)
		return n, nil
	}
	if r.pos < c.read {
		// The prefix was not kept (overflow): this reader cannot go on.
		return 0, errBodyNotReplayable
	}
	if c.srcErr != nil {
		return 0, c.srcErr
	}
	n, err := c.src.Read(p)
	if n > 0 {
		if !c.overflow {
			if c.read+int64(n) <= c.limit {
				c.buf = append(c.buf, p[:n]...)
			} else {
				c.overflow = true
				c.buf = nil
			}
		}
		c.read += int64(n)
		r.pos += int64(n)
	}
	if err != nil {
		c.srcErr = err
	}
	return n, err
}

// Close marks this attempt's reader closed; the caller's body stays open so
// that a later attempt can read the rest of it.
func (r *captureReader) Close() error {
	r.c.mu.Lock()
	r.closed = true
	r.c.mu.Unlock()
	return nil
}
