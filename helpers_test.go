package resilient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// This file holds the helpers the package's tests share: in-memory
// RoundTrippers, a body that records how it is used, request and response
// shorthands, loopback servers and clients, and the decoding of JSON logs.

// rtStep is one scripted answer of an rtScript.
type rtStep struct {
	status int
	header http.Header // copied into the response; Content-Type defaults to JSON for a body starting with '{'
	body   string
	rc     func() io.ReadCloser // the response body, instead of body
	length int64                // with rc: the response's ContentLength; 0 for unknown (-1)
	stall  bool                 // after body, the response body waits until the attempt's context ends, then fails with its cause
	err    error                // fail the attempt with err
	hang   bool                 // wait until the attempt's context ends, then fail with its cause
	read   int                  // bytes of the request body to read: 0 all, -1 none
	before func(req *http.Request)
}

// rtCall is what an rtScript saw of one attempt.
type rtCall struct {
	at     time.Time
	method string
	header http.Header
	body   []byte
	ctx    context.Context
}

// rtScript is an in-memory RoundTripper that answers attempts with its
// steps in order, repeating the last one. It reads (as configured) and
// always closes the request body, as the RoundTripper contract requires,
// and records each attempt and each response body it hands out. It is safe
// for concurrent use and, having no I/O, works inside a synctest bubble.
type rtScript struct {
	steps []rtStep

	mu     sync.Mutex
	calls  []rtCall
	bodies []*trackedBody
}

func (s *rtScript) RoundTrip(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	i := len(s.calls)
	s.calls = append(s.calls, rtCall{})
	s.mu.Unlock()
	st := s.steps[min(i, len(s.steps)-1)]

	call := rtCall{at: time.Now(), method: req.Method, header: req.Header.Clone(), ctx: req.Context()}
	if req.Body != nil {
		switch {
		case st.read == 0:
			call.body, _ = io.ReadAll(req.Body)
		case st.read > 0:
			call.body, _ = io.ReadAll(io.LimitReader(req.Body, int64(st.read)))
		}
		req.Body.Close()
	}
	if st.before != nil {
		st.before(req)
	}
	s.mu.Lock()
	s.calls[i] = call
	s.mu.Unlock()

	if st.hang {
		<-req.Context().Done()
		return nil, context.Cause(req.Context())
	}
	if st.err != nil {
		return nil, st.err
	}
	h := st.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if strings.HasPrefix(st.body, "{") && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	var tb *trackedBody
	cl := int64(-1)
	switch {
	case st.rc != nil:
		tb = &trackedBody{rc: st.rc()}
		if st.length != 0 {
			cl = st.length
		}
	case st.stall:
		tb = &trackedBody{rc: io.NopCloser(io.MultiReader(strings.NewReader(st.body), ctxReader{req.Context()}))}
	default:
		tb = newTrackedBody(st.body)
		cl = int64(len(st.body))
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, tb)
	s.mu.Unlock()
	status := st.status
	if status == 0 {
		status = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          tb,
		ContentLength: cl,
		Request:       req,
	}, nil
}

func (s *rtScript) numCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

func (s *rtScript) call(i int) rtCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[i]
}

// body returns the body of the i-th response handed out.
func (s *rtScript) body(i int) *trackedBody {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[i]
}

// headers returns the value of the header name in every attempt so far,
// "" where an attempt had none. Names match in any capitalisation, as a
// server reads them off the wire.
func (s *rtScript) headers(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var vs []string
	for _, c := range s.calls {
		vs = append(vs, wireHeader(c.header, name))
	}
	return vs
}

// wireHeader returns the first value of the header name in h, whatever the
// capitalisation of its map key, as a server reads it off the wire.
func wireHeader(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// trackedBody is a request or response body that counts the bytes read
// from it and its Close calls, and fails a Read after Close. Its type is
// unknown to http.NewRequest, which therefore sets no GetBody for it. It
// is safe for concurrent use.
type trackedBody struct {
	rc     io.ReadCloser
	mu     sync.Mutex
	n      int64
	reads  int
	closes int
}

// newTrackedBody returns a trackedBody that reads s.
func newTrackedBody(s string) *trackedBody {
	return &trackedBody{rc: io.NopCloser(strings.NewReader(s))}
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closes > 0 {
		return 0, errors.New("read after close")
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	b.reads++
	return n, err
}

func (b *trackedBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closes++
	return b.rc.Close()
}

// stats returns the bytes read, the number of Read calls and whether the
// body was closed.
func (b *trackedBody) stats() (n int64, reads int, closed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n, b.reads, b.closes > 0
}

// isClosed reports whether the body was closed.
func (b *trackedBody) isClosed() bool { return b.numCloses() > 0 }

// numCloses returns the number of Close calls.
func (b *trackedBody) numCloses() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closes
}

// ctxReader is a Read that waits until ctx ends, then fails with its
// cause: a body that stalls, cut as net/http cuts one when the request's
// context ends.
type ctxReader struct{ ctx context.Context }

func (r ctxReader) Read([]byte) (int, error) {
	<-r.ctx.Done()
	return 0, context.Cause(r.ctx)
}

// genReader yields n bytes of a fixed pattern without holding them.
type genReader struct {
	n, off int64
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	if rem := g.n - g.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	for i := range p {
		p[i] = byte('a' + (g.off+int64(i))%26)
	}
	g.off += int64(len(p))
	return len(p), nil
}

// collector collects the values given to an observer, in order. It is
// safe for concurrent use.
type collector[T any] struct {
	mu sync.Mutex
	vs []T
}

func (c *collector[T]) add(v T) {
	c.mu.Lock()
	c.vs = append(c.vs, v)
	c.mu.Unlock()
}

// all returns a copy of the values collected so far.
func (c *collector[T]) all() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.vs)
}

// roundTripFunc is a RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// cannedRT answers every request with the same response, allocating
// nothing.
type cannedRT struct{ resp *http.Response }

// newCannedRT returns a cannedRT answering status with header h and an
// empty body.
func newCannedRT(status int, h http.Header) cannedRT {
	return cannedRT{resp: &http.Response{StatusCode: status, Header: h, Body: http.NoBody}}
}

func (c cannedRT) RoundTrip(*http.Request) (*http.Response, error) { return c.resp, nil }

var (
	errReset   = &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}
	errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
)

func newRequest(t testing.TB, ctx context.Context, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// roundTrip calls tr.RoundTrip and checks the contract: exactly one of the
// response and the error is nil.
func roundTrip(t testing.TB, tr http.RoundTripper, req *http.Request) (*http.Response, error) {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	if (resp == nil) == (err == nil) {
		t.Fatalf("RoundTrip = %v, %v; want exactly one non-nil", resp, err)
	}
	return resp, err
}

// getClosed sends a GET of rawURL through tr, closes the response's body,
// and returns the error, if any.
func getClosed(t testing.TB, tr http.RoundTripper, rawURL string) error {
	t.Helper()
	resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, rawURL, nil))
	if err == nil {
		resp.Body.Close()
	}
	return err
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	resp.Body.Close()
	return string(b)
}

// timeoutCtx returns a context that expires after d, canceled when the
// test ends, or context.Background() when d is zero.
func timeoutCtx(t *testing.T, d time.Duration) context.Context {
	if d == 0 {
		return context.Background()
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// countConns starts a loopback server running h that counts the
// connections it accepts.
func countConns(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// loopbackClient returns a client over a fresh http.Transport whose idle
// connections are closed when the test ends.
func loopbackClient(t *testing.T, opts ...Option) *http.Client {
	t.Helper()
	base := &http.Transport{MaxIdleConnsPerHost: 100}
	t.Cleanup(base.CloseIdleConnections)
	return &http.Client{Transport: New(base, opts...)}
}

// refusedAddr returns a loopback address where nothing listens: a dial to
// it is refused, unless a server (of another test, maybe of another
// process) listens on its port again meanwhile. A dialer that must have its
// dial refused returns refusedDial's error instead of dialing it.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// refusedDial returns the error net.Dialer returns for a dial to addr that
// its host refused, without dialing: the server restarting, every time.
func refusedDial(network, addr string) error {
	a, _ := net.ResolveTCPAddr(network, addr)
	return &net.OpError{Op: "dial", Net: network, Addr: a, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

// logRecords decodes the JSON lines of a slog.JSONHandler: one object a
// line.
func logRecords(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log is not JSON lines: %v: %s\n%s", err, line, buf.String())
		}
		recs = append(recs, m)
	}
	return recs
}

// rawAnswerTransport returns an http.Transport whose every connection is a
// pipe to a server that reads one request and writes raw, as the bytes of
// its answer, then closes the connection. It works inside a synctest
// bubble.
func rawAnswerTransport(raw string) *http.Transport {
	return &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			req, err := http.ReadRequest(bufio.NewReader(server))
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			server.Write([]byte(raw))
		}()
		return client, nil
	}}
}

// mustPanic calls fn and returns the value it panicked with; when fn
// returns without a panic, it reports so with what (what should have
// panicked, and why it matters) and returns nil.
func mustPanic(t *testing.T, what string, fn func()) (p any) {
	t.Helper()
	defer func() {
		if p = recover(); p == nil {
			t.Error(what)
		}
	}()
	fn()
	return nil
}

// timedGet sends a GET of url through tr, failing t on an error, closes
// the response, and returns how long the call took and its Report.
func timedGet(t testing.TB, tr http.RoundTripper, url string) (time.Duration, Report) {
	t.Helper()
	start := time.Now()
	var r Report
	resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "GET", url, nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return time.Since(start), r
}

// roundTripAt sends a request of method for url through tr after d, on a
// goroutine of its own, closing the response if any, and returns a
// function that waits for it to end.
func roundTripAt(t testing.TB, tr http.RoundTripper, d time.Duration, method, url string) (wait func()) {
	var done sync.WaitGroup
	done.Add(1)
	time.AfterFunc(d, func() {
		defer done.Done()
		resp, err := tr.RoundTrip(newRequest(t, context.Background(), method, url, nil))
		if err == nil {
			resp.Body.Close()
		}
	})
	return done.Wait
}

// tcpServer listens on a loopback port and serves each connection with
// serve, which owns it, until the test ends. It returns the address and
// the count of connections accepted.
func tcpServer(t *testing.T, serve func(net.Conn)) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			serve(c)
		}
	}()
	return ln.Addr().String(), &conns
}

// errReader is a reader that fails with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// notReadyTransient is a Classifier that retries a response whose server
// set X-Not-Ready, and leaves the others to the default.
func notReadyTransient(resp *http.Response, _ *APIError, _ error, def Class) Class {
	if resp != nil && resp.Header.Get("X-Not-Ready") != "" {
		return Transient
	}
	return def
}

// numberedRT is a RoundTripper that numbers the requests it is given, from
// 0 in the order they come, closes their bodies, and answers each with its
// answer function.
type numberedRT struct {
	answer func(i int, req *http.Request) (*http.Response, error)

	mu sync.Mutex
	n  int
}

// numbered returns a numberedRT answering with answer.
func numbered(answer func(i int, req *http.Request) (*http.Response, error)) *numberedRT {
	return &numberedRT{answer: answer}
}

func (rt *numberedRT) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	i := rt.n
	rt.n++
	rt.mu.Unlock()
	if req.Body != nil {
		req.Body.Close()
	}
	return rt.answer(i, req)
}

// requests returns the number of requests rt was given.
func (rt *numberedRT) requests() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.n
}
