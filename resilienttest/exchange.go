package resilienttest

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// An Exchange is one request the Server read, and what it answered: what
// a test fronting the server with a handler of its own would record (when
// each request arrived, what it carried, how it was answered).
type Exchange struct {
	Method string // the request's method, as read
	Path   string // the request's URL path, without the query
	// Header is the request's header, as read: a copy, which neither
	// the handler of WithHandler nor a caller in process changes by
	// editing the request's own.
	Header http.Header
	// Arrived is when the server began to handle the request; Answered
	// when it was done with it (its answer written, or its connection
	// dropped).
	Arrived, Answered time.Time
	// Status is the status the server answered with, also when it then
	// cut the body short (a CutBody step); 0 when it dropped the
	// connection instead (a DropBefore or DropAfter step, a fault, or a
	// handler of WithHandler that panicked before it wrote its answer,
	// whose connection net/http closes).
	Status int
}

// WithExchanges makes the server call fn with every request it reads, once
// it is done with it, whether the server answered it itself, injected a
// fault, or let the handler of WithHandler answer. fn is called on the
// request's own goroutine, so at the same time for requests served at the
// same time; it must not block. It panics if fn is nil.
func WithExchanges(fn func(Exchange)) Option {
	if fn == nil {
		panic("resilienttest: WithExchanges: nil func")
	}
	return func(c *config) { c.exchanges = fn }
}

// exchange sees to it that the server's exchanges func is told of r once
// it is handled: it returns the writer to answer r with, and the func to
// defer. A connection taken over to be dropped is told of as it closes,
// before its client can see the drop, so a test that sends its next
// request after a drop finds the drop already told. A panic that aborts
// the answer before it began (a handler's) is told of as a drop, and goes
// on.
func (s *Server) exchange(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	sw := &statusWriter{ResponseWriter: w}
	ex := Exchange{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Arrived: time.Now()}
	report := func(aborted bool) {
		if !sw.told.CompareAndSwap(false, true) {
			return
		}
		ex.Answered = time.Now()
		if !sw.hijacked && !(aborted && sw.status == 0) {
			ex.Status = sw.statusCode()
		}
		s.exchanges(ex)
	}
	sw.tell = func() { report(false) }
	return sw, func() {
		if v := recover(); v != nil {
			// net/http closes the connection (HTTP/2: resets the
			// stream): an answer not yet written is none.
			report(true)
			panic(v)
		}
		report(false)
	}
}

// statusWriter passes an answer through and notes its status, and whether
// the connection was taken over (to drop it). tell reports the exchange,
// once: when the handler is done, or as a taken-over connection closes,
// whichever is first (a handler may close it on a goroutine of its own);
// nil for a statusWriter that only notes the status (serveWrapped's).
type statusWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
	told     atomic.Bool
	tell     func()
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Flush flushes the answer, for handlers that stream.
func (w *statusWriter) Flush() { w.FlushError() }

// FlushError flushes the answer, and returns the error of the
// ResponseWriter underneath (http.ErrNotSupported if it cannot flush), for
// http.ResponseController.
func (w *statusWriter) FlushError() error {
	err := http.NewResponseController(w.ResponseWriter).Flush()
	if w.status == 0 && !errors.Is(err, http.ErrNotSupported) {
		// The status went out (a refused Flush sent nothing: the
		// handler may still choose it).
		w.status = http.StatusOK
	}
	return err
}

// Hijack takes the connection over, through the ResponseWriter underneath,
// and notes whether it did before any answer was written. A refused
// Hijack (over HTTP/2, or in process) notes nothing: the handler may still
// answer, and a drop then aborts the answer, which the exchange tells as
// one. Closing the connection it returns tells of the exchange first, if w
// tells of one.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return conn, rw, err
	}
	w.hijacked = w.status == 0 // else the status went out: the body is cut
	if w.tell == nil {
		return conn, rw, err
	}
	return &tellingConn{Conn: conn, tell: w.tell}, rw, nil
}

// tellingConn is a taken-over connection that reports its exchange before
// it closes.
type tellingConn struct {
	net.Conn
	tell func()
}

func (c *tellingConn) Close() error {
	c.tell()
	return c.Conn.Close()
}

// Unwrap returns the ResponseWriter underneath, for
// http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) statusCode() int {
	if w.status == 0 {
		return http.StatusOK // the handler wrote nothing: net/http sends 200
	}
	return w.status
}
