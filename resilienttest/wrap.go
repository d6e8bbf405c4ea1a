package resilienttest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Wrap returns a Server, started on loopback, that puts the random faults
// f in front of h, a handler of the caller's own: a client of any API can
// be tested against a bad day of it. It is NewServer(Altyaa, WithHandler(h),
// WithFaults(f), opts...): the answers the server injects have Altyaa's
// {"error":{"code":…,"message":…}} envelope, the shape of many JSON APIs,
// and opts add scripts, latency, a quota or TLS (see WithHandler for the
// order in which an attempt is handled). A zero Faults injects nothing.
// It panics as WithHandler and WithFaults do.
func Wrap(h http.Handler, f Faults, opts ...Option) *Server {
	return NewServer(Altyaa, append([]Option{WithHandler(h), WithFaults(f)}, opts...)...)
}

// serveWrapped handles one attempt on a server WithHandler: it counts it,
// picks its step, waits, then drops the connection, answers in front of
// the handler, or lets the handler answer (see WithHandler).
func (s *Server) serveWrapped(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + r.URL.Path
	key := idempotencyKey(r.Header)

	s.mu.Lock()
	s.stats.countAttempt(route, s.scripts[route] != nil)
	step := s.nextStepLocked(route, key)
	s.mu.Unlock()

	delay := s.latency
	if step.kind == stepSlow {
		delay += step.delay
	}
	if delay > 0 && step.kind != stepDropBefore && !step.answersAtOnce() && r.Body != nil && r.Body != http.NoBody && r.ContentLength >= 0 {
		// The body of a request h will answer after the wait is read
		// first, up to maxBody, as the dialect's API reads a write: once
		// a body is read to its end, net/http watches the connection, and
		// the request's context ends if the client goes away during the
		// wait. h reads the body from memory; a longer one, its first
		// maxBody+1 bytes from there and the rest from the connection, so
		// that h may still refuse it without the server holding the whole
		// of it (the wait then ends at its time only). A body of unknown
		// length is left to h: it may be a stream the client ends only
		// once answered (full duplex), which a read ahead would wait for
		// forever.
		raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			drop(w) // the client is gone
			return
		}
		body := io.NopCloser(bytes.NewReader(raw))
		if len(raw) > maxBody {
			body = readAhead{Reader: io.MultiReader(bytes.NewReader(raw), r.Body), Closer: r.Body}
		}
		r = r.WithContext(r.Context()) // a copy: the caller's request keeps its Body
		r.Body = body
	}
	if !s.wait(r.Context(), delay) {
		drop(w)
		return
	}

	switch {
	case step.kind == stepDropBefore:
		s.mu.Lock()
		s.stats.Dropped++
		s.mu.Unlock()
		drop(w)
		return
	case step.answersAtOnce():
		s.inject(w, r, route, step)
		return
	}

	if s.quota != nil {
		h := w.Header()
		now := time.Now()
		s.mu.Lock()
		k := s.quota.key(r.Method, r.Header)
		rem, reset, allowed := s.quota.take(k, now)
		s.quota.setHeaders(h, k.class, rem, reset, now)
		if !allowed {
			s.stats.countStatus(http.StatusTooManyRequests)
			s.mu.Unlock()
			h.Set("Retry-After", retryAfter(reset, now))
			s.finish(w, r, http.StatusTooManyRequests, s.errorEnvelope(h, route, http.StatusTooManyRequests, "", nil))
			return
		}
		s.mu.Unlock()
	}

	switch {
	case step.kind == stepDropAfter:
		s.handler.ServeHTTP(newRecorder(w, nil), r)
		s.mu.Lock()
		s.stats.Dropped++
		s.mu.Unlock()
		drop(w)
	case step.kind == stepCutBody:
		// An answer past maxRecorded that is not to be cut is sent on as
		// it comes; one to cut keeps its first maxRecorded bytes.
		rec := newRecorder(w, func(status int) (int, bool) { return status, !cuts(r, status, true) })
		s.handler.ServeHTTP(rec, r)
		status := rec.statusCode()
		s.mu.Lock()
		s.stats.countStatus(status)
		s.mu.Unlock()
		if rec.sent != 0 {
			return
		}
		if !cuts(r, status, rec.body.Len() > 0) {
			rec.sendTo(w, status)
			return
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		if rec.full {
			cutPast(w, status, rec.body.Bytes())
			return
		}
		cutAnswer(w, status, rec.body.Bytes())
	case step.kind == stepServerAfter || step.kind == stepRespond:
		// The status to send an answer with: its own, but a success's
		// (replaced); an answer past maxRecorded is sent on as it comes
		// but for a success FailAfterStoring replaces.
		sendAs := func(status int) (int, bool) {
			switch {
			case status >= 300:
				return status, true
			case step.kind == stepServerAfter:
				return 0, false
			}
			return step.status, true
		}
		rec := newRecorder(w, sendAs)
		s.handler.ServeHTTP(rec, r)
		status, send := sendAs(rec.statusCode())
		if !send {
			s.inject(w, r, route, Step{kind: stepRespond, status: http.StatusInternalServerError})
			return
		}
		s.mu.Lock()
		s.stats.countStatus(status)
		s.mu.Unlock()
		if rec.sent == 0 {
			rec.sendTo(w, status)
		}
	default:
		sw := &statusWriter{ResponseWriter: w}
		s.handler.ServeHTTP(sw, r)
		s.mu.Lock()
		s.stats.countStatus(sw.statusCode())
		s.mu.Unlock()
	}
}

// readAhead is the body of a request whose start was read ahead of a
// wait: that start from memory, then the rest from the connection.
type readAhead struct {
	io.Reader
	io.Closer
}

// maxRecorded bounds the body of a handler's answer a recorder keeps (see
// WithHandler).
const maxRecorded = 1 << 20

// errAnswerNotSent is the error of a handler's write past maxRecorded to
// an answer a step will not send.
var errAnswerNotSent = errors.New("resilienttest: answer past 1 MiB not sent: the step replaces it, cuts it or drops the connection")

// recorder keeps a handler's answer, to be sent later, changed, or not at
// all, on w, up to maxRecorded bytes of its body. Past them, send decides
// (nil: never) whether the answer is to be sent after all, and with what
// status: then it is, and the rest passes through as it is written;
// otherwise the first maxRecorded bytes are kept and the rest of the
// writes fail with errAnswerNotSent. An http.ResponseController of the
// handler reaches w through Unwrap, for its deadlines and full duplex;
// Flush and Hijack are the recorder's own.
type recorder struct {
	w      http.ResponseWriter
	send   func(status int) (int, bool)
	header http.Header
	status int
	body   bytes.Buffer
	sent   int  // the status the answer went out with, past maxRecorded; 0 if it did not
	full   bool // past maxRecorded, not sent: the rest is refused
}

// newRecorder returns a recorder of an answer to be sent on w, whose
// headers start as a copy of w's, and that send decides about past
// maxRecorded (see recorder).
func newRecorder(w http.ResponseWriter, send func(status int) (int, bool)) *recorder {
	return &recorder{w: w, send: send, header: w.Header().Clone()}
}

// Unwrap returns the ResponseWriter the answer will be sent on, for
// http.ResponseController.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.w }

// Hijack refuses to take the connection over: the answer is kept, for the
// step to send, change or drop.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, fmt.Errorf("resilienttest: the answer is recorded for a step: %w", http.ErrNotSupported)
}

func (rec *recorder) Header() http.Header { return rec.header }

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 && code >= 200 { // informational answers are not kept
		rec.status = code
	}
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	switch {
	case rec.sent != 0:
		return rec.w.Write(p)
	case rec.full:
		return 0, errAnswerNotSent
	case rec.body.Len()+len(p) <= maxRecorded:
		return rec.body.Write(p)
	}
	if rec.send != nil {
		if status, ok := rec.send(rec.status); ok {
			rec.sent = status
			rec.sendTo(rec.w, status)
			// The handler's header is now w's, as after a WriteHeader
			// there: the trailers it sets once its body is written are
			// sent.
			rec.header = rec.w.Header()
			return rec.w.Write(p)
		}
	}
	n := maxRecorded - rec.body.Len()
	rec.body.Write(p[:n])
	rec.full = true
	return n, errAnswerNotSent
}

// Flush sends nothing while the answer is kept: it commits the status as
// a Flush on the server's own writer does (200 if none was written), so
// that a later WriteHeader is as superfluous as it would be there. Once
// the answer is sent on (past maxRecorded), it flushes w.
func (rec *recorder) Flush() {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.sent != 0 {
		http.NewResponseController(rec.w).Flush()
	}
}

func (rec *recorder) statusCode() int {
	if rec.status == 0 {
		return http.StatusOK
	}
	return rec.status
}

// sendTo sends the recorded answer to w with status. A status that
// allows no body and no Content-Length (a 204; Respond's, over the
// handler's answer) drops the handler's: net/http's HTTP/2 server sends
// it, and the client reads a 204 declaring a body that never comes
// (TestHandlerRespondNoBodyStatus).
func (rec *recorder) sendTo(w http.ResponseWriter, status int) {
	h := w.Header()
	for k, v := range rec.header {
		h[k] = v
	}
	if status == http.StatusNoContent {
		h.Del("Content-Length")
	}
	w.WriteHeader(status)
	w.Write(rec.body.Bytes())
}
