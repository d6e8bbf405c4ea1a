package resilient

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

// This file compares what the Transport does with requests a careless or
// unusual caller sends with what a plain http.Client over an http.Transport
// does with the same request, over loopback servers speaking HTTP/1.1 and
// HTTP/2: the plain client sends it, or refuses it at once; the Transport
// must do the same, refuse it as one attempt counted against nothing, and
// leave the caller's request as it found it.

// parityServer is a loopback server that counts the requests it gets and
// answers each with 200 and what it read of the request.
type parityServer struct {
	*httptest.Server
	hits   atomic.Int32
	marker atomic.Int64 // the X-Parity of the requests counted in hits
}

func newParityServer(t *testing.T, h2 bool) *parityServer {
	t.Helper()
	s := &parityServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Parity") == strconv.FormatInt(s.marker.Load(), 10) {
			s.hits.Add(1) // not a late handler of an earlier request
		}
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s host=%s cl=%d te=%v body=%q err=%v", r.Method, r.RequestURI, r.Host, r.ContentLength, r.TransferEncoding, b, err != nil)
	}))
	if h2 {
		s.EnableHTTP2 = true
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

// base returns a fresh transport to the server, whose idle connections are
// closed when the test ends.
func (s *parityServer) base(t *testing.T) *http.Transport {
	var b *http.Transport
	if s.TLS != nil {
		b = s.Client().Transport.(*http.Transport).Clone()
		b.TLSClientConfig = &tls.Config{RootCAs: s.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
		b.ForceAttemptHTTP2 = true
	} else {
		b = &http.Transport{}
	}
	t.Cleanup(b.CloseIdleConnections)
	return b
}

// parityResult is what a client did with one request.
type parityResult struct {
	status int
	body   string
	err    error
	hits   int32 // requests the server got
}

func (r parityResult) String() string {
	return fmt.Sprintf("status %d, %d hits, body %.120q, err %.200v", r.status, r.hits, r.body, r.err)
}

// reqSnapshot is what RoundTrip may not change of a caller's request.
type reqSnapshot struct {
	Method, URL, Host, RequestURI, Proto string
	Header, Trailer                      http.Header
	ContentLength                        int64
	Body                                 io.ReadCloser
	GetBody                              bool
	Close                                bool
	TransferEncoding                     []string
	Form                                 url.Values
	Response                             *http.Response
	Ctx                                  context.Context
}

func snapshot(r *http.Request) reqSnapshot {
	return reqSnapshot{
		Method: r.Method, URL: r.URL.String(), Host: r.Host, RequestURI: r.RequestURI, Proto: r.Proto,
		Header: r.Header.Clone(), Trailer: r.Trailer.Clone(), ContentLength: r.ContentLength,
		Body: r.Body, GetBody: r.GetBody != nil, Close: r.Close,
		TransferEncoding: append([]string(nil), r.TransferEncoding...),
		Form:             r.Form, Response: r.Response, Ctx: r.Context(),
	}
}

// sendParity sends req through c and reads the whole answer.
func sendParity(c *http.Client, srv *parityServer, req *http.Request) parityResult {
	srv.marker.Store(markerOf(req))
	before := srv.hits.Load()
	var r parityResult
	resp, err := c.Do(req)
	if err == nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		r.status, r.body, err = resp.StatusCode, string(b), rerr
	}
	r.err, r.hits = err, srv.hits.Load()-before
	return r
}

// markerOf returns the X-Parity of req, set by runParity.
func markerOf(req *http.Request) int64 {
	n, _ := strconv.ParseInt(req.Header.Get("X-Parity"), 10, 64)
	return n
}

// parityCase is a request, or a sequence of requests (the same one sent
// again, when its function returns one pointer twice), of a careless
// caller.
type parityCase struct {
	name   string
	reqs   func(t *testing.T, url string) []*http.Request
	shared bool // without a body: may be sent by 8 goroutines at once
	h1only bool // HTTP/1 only
	h2only bool // HTTP/2 only
	// stricter says why the Transport may refuse (one attempt, a
	// *RequestError) a request the plain client sends, malformed.
	stricter string
	// racy says why net/http itself may send the request or refuse it,
	// as a race decides: the plain client and the Transport may differ,
	// each sending it once or refusing it at once.
	racy string
}

// one returns a parityCase function of a single request, made by
// http.NewRequest from method, and body, then changed by set.
func one(method, body string, set func(*http.Request)) func(*testing.T, string) []*http.Request {
	return func(t *testing.T, u string) []*http.Request {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, u, rd)
		if err != nil {
			t.Fatal(err)
		}
		if set != nil {
			set(req)
		}
		return []*http.Request{req}
	}
}

// twice returns a parityCase function that sends the request of one twice.
func twice(f func(*testing.T, string) []*http.Request) func(*testing.T, string) []*http.Request {
	return func(t *testing.T, u string) []*http.Request {
		r := f(t, u)
		return []*http.Request{r[0], r[0]}
	}
}

// runParity sends the requests of tc through a plain http.Client and
// through one over a Transport, over HTTP/1.1 and HTTP/2, and compares
// what they did: both sent the request (the same number of times, with the
// same answer) or both refused it at once; and the Transport's refusal is
// one attempt, a *RequestError, counted against nothing (a breaker that
// opens on one failure stays closed), the caller's request unchanged.
func runParity(t *testing.T, cases []parityCase) {
	for _, h2 := range []bool{false, true} {
		proto := map[bool]string{false: "h1", true: "h2"}[h2]
		srv := newParityServer(t, h2)
		var marks atomic.Int64
		for _, tc := range cases {
			if h2 && tc.h1only || !h2 && tc.h2only {
				continue
			}
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				plain := &http.Client{Transport: srv.base(t)}
				var attempts atomic.Int32
				ours := &http.Client{Transport: New(srv.base(t),
					WithBackoff(time.Millisecond, time.Millisecond),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
					WithObserver(func(Attempt) { attempts.Add(1) }))}

				mark := func(reqs []*http.Request) []*http.Request {
					for _, req := range reqs {
						if req.Header.Get("X-Parity") == "" {
							req.Header.Set("X-Parity", strconv.FormatInt(marks.Add(1), 10))
						}
					}
					return reqs
				}
				want := make([]parityResult, 0, 2)
				for _, req := range mark(tc.reqs(t, srv.URL)) {
					want = append(want, sendParity(plain, srv, req))
				}
				reqs := mark(tc.reqs(t, srv.URL))
				snaps := make([]reqSnapshot, len(reqs))
				for i, req := range reqs {
					snaps[i] = snapshot(req)
				}
				for i, req := range reqs {
					attempts.Store(0)
					got := sendParity(ours, srv, req)
					// The plain client may send a request twice where ours
					// sends it once: net/http's HTTP/2 client resends one a
					// connection lost as it was sent, once in a while (h2/
					// unknown length: 2 hits to 1, the same answer).
					hits := got.hits == want[i].hits || got.err == nil && want[i].err == nil && got.hits == 1 && want[i].hits > 1
					same := (got.err == nil) == (want[i].err == nil) && hits && got.status == want[i].status && got.body == want[i].body
					if tc.stricter != "" && got.err != nil {
						same = true // checked below: one attempt, a *RequestError
					}
					if tc.racy != "" && (got.err != nil && got.hits == 0 || want[i].err != nil && want[i].hits == 0) {
						same = true // refused by one, sent by the other: the attempts are checked below
					}
					if !same {
						t.Errorf("request %d:\n plain: %v\n ours:  %v", i, want[i], got)
					}
					if n := attempts.Load(); got.err == nil && n != 1 {
						t.Errorf("request %d: answered %d after %d attempts, want one", i, got.status, n)
					}
					if got.err != nil && want[i].err != nil && got.err.Error() == want[i].err.Error() {
						continue // http.Client's own refusal, before any RoundTrip
					}
					if got.err != nil && (want[i].hits == 0 || tc.stricter != "" || tc.racy != "") {
						var re *RequestError
						if n := attempts.Load(); n > 1 {
							t.Errorf("request %d: refused after %d attempts, want one: %v", i, n, got.err)
						}
						if !errors.As(got.err, &re) && !errors.Is(got.err, context.Canceled) && !errors.Is(got.err, context.DeadlineExceeded) &&
							!strings.Contains(got.err.Error(), "net/http: request canceled") { // the deprecated Cancel
							t.Errorf("request %d: err = %v, want a *RequestError", i, got.err)
						}
					}
				}
				for i, req := range reqs {
					if s := snapshot(req); !reflect.DeepEqual(s, snaps[i]) {
						t.Errorf("request %d changed:\n before %+v\n after  %+v", i, snaps[i], s)
					}
				}
				if err := getClosed(t, ours.Transport, srv.URL); err != nil {
					t.Errorf("healthy GET after: %v (the breaker counted the mistake?)", err)
				}
				if !tc.shared {
					return
				}
				// The same request, sent by 8 goroutines at once.
				req := tc.reqs(t, srv.URL)[0]
				snap := snapshot(req)
				var wg sync.WaitGroup
				res := make([]parityResult, 8)
				for i := range 8 {
					wg.Go(func() {
						resp, err := ours.Do(req)
						if err == nil {
							b, _ := io.ReadAll(resp.Body)
							resp.Body.Close()
							res[i] = parityResult{status: resp.StatusCode, body: string(b)}
						}
						res[i].err = err
					})
				}
				wg.Wait()
				for i, r := range res {
					if (r.err == nil) != (want[0].err == nil) || r.status != want[0].status || r.body != want[0].body {
						t.Errorf("goroutine %d: %v, want %v", i, r, want[0])
					}
				}
				if s := snapshot(req); !reflect.DeepEqual(s, snap) {
					t.Errorf("request changed by 8 goroutines:\n before %+v\n after  %+v", snap, s)
				}
			})
		}
	}
}

// TestCarelessRequestsParity: see runParity.
func TestCarelessRequestsParity(t *testing.T) {
	runParity(t, []parityCase{
		{name: "GET", reqs: one("GET", "", nil), shared: true},
		{name: "POST body sent twice", reqs: twice(one("POST", "hello", nil)), stricter: "the body, drained, is not its ContentLength long: the Transport refuses it; the plain client sends it empty over HTTP/2, and over a reused HTTP/1 connection sends it again from GetBody"},
		{name: "PUT body sent twice", reqs: twice(one("PUT", "hello", nil)), stricter: "the body, drained, is not its ContentLength long: the Transport refuses it; the plain client sends it empty over HTTP/2, and over a reused HTTP/1 connection sends it again from GetBody"},
		{name: "POST body without GetBody sent twice", reqs: twice(one("POST", "hello", func(r *http.Request) { r.GetBody = nil })),
			stricter: "a body captured for replay is read through the capture, which checks its length: over HTTP/2 the plain client sends the drained body as a truncated request"},
		{name: "PUT unknown length sent twice", reqs: twice(one("PUT", "hello", func(r *http.Request) {
			r.GetBody, r.ContentLength, r.Body = nil, -1, io.NopCloser(strings.NewReader("hello"))
		}))},
		{name: "GET sent twice", reqs: twice(one("GET", "", nil))},
		{name: "NoBody POST", reqs: one("POST", "", func(r *http.Request) { r.Body = http.NoBody }), shared: true},
		{name: "NoBody POST with ContentLength", reqs: one("POST", "", func(r *http.Request) { r.Body, r.ContentLength = http.NoBody, 3 })},
		{name: "body shorter than ContentLength", reqs: one("PUT", "abc", func(r *http.Request) { r.ContentLength = 10 }),
			stricter: "over HTTP/2 the plain client sends the request, its body cut short"},
		{name: "unknown length", reqs: one("PUT", "abc", func(r *http.Request) {
			r.ContentLength, r.Body, r.GetBody = -1, io.NopCloser(strings.NewReader("abc")), nil
		})},
		{name: "unknown length zero bytes", reqs: one("PUT", "abc", func(r *http.Request) {
			r.ContentLength, r.Body, r.GetBody = -1, io.NopCloser(strings.NewReader("")), nil
		})},
		{name: "ContentLength 0 with a body", reqs: one("PUT", "abc", func(r *http.Request) {
			r.ContentLength, r.Body, r.GetBody = 0, io.NopCloser(strings.NewReader("abc")), nil
		})},
		{name: "Trailer Content-Length", reqs: one("PUT", "abc", func(r *http.Request) {
			r.ContentLength, r.Body, r.GetBody = -1, io.NopCloser(strings.NewReader("abc")), nil
			r.Trailer = http.Header{"Content-Length": nil}
		})},
		{name: "Close", reqs: one("GET", "", func(r *http.Request) { r.Close = true }), shared: true},
		{name: "Host with port", reqs: one("GET", "", func(r *http.Request) { r.Host = "api.test:8443" }), shared: true},
		{name: "Host with a trailing dot", reqs: one("GET", "", func(r *http.Request) { r.Host = "api.test." }), shared: true},
		{name: "Host header key", reqs: one("GET", "", func(r *http.Request) { r.Header["Host"] = []string{"other.test"} }), shared: true},
		{name: "Opaque", reqs: one("GET", "", func(r *http.Request) { r.URL.Opaque = "//" + r.URL.Host + "/a%2Fb" }), shared: true},
		{name: "path without a leading slash", reqs: one("GET", "", func(r *http.Request) { r.URL.Path = "v1/posts" }), shared: true},
		{name: "Opaque without a leading slash", reqs: one("GET", "", func(r *http.Request) { r.URL.Opaque = "v1/posts" }), shared: true},
		{name: "RawPath", reqs: one("GET", "", func(r *http.Request) { r.URL.Path, r.URL.RawPath = "/a/b c", "/a%2Fb%20c" }), shared: true},
		{name: "RequestURI", reqs: one("GET", "", func(r *http.Request) { r.RequestURI = "/" }), shared: true},
		{name: "Proto HTTP/2", reqs: one("GET", "", func(r *http.Request) { r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0 }), shared: true},
		{name: "lowercase get", reqs: one("get", "", nil), shared: true},
		{name: "lowercase post", reqs: one("post", "x", nil)},
		{name: "PURGE", reqs: one("PURGE", "", nil), shared: true},
		{name: "QUERY", reqs: one("QUERY", "q", nil)},
		{name: "PROPFIND", reqs: one("PROPFIND", "", nil), shared: true},
		{name: "Content-Length header", reqs: one("POST", "abc", func(r *http.Request) { r.Header.Set("Content-Length", "3") })},
		{name: "wrong Content-Length header", reqs: one("POST", "abc", func(r *http.Request) { r.Header.Set("Content-Length", "10") })},
		{name: "Transfer-Encoding header chunked", reqs: one("POST", "abc", func(r *http.Request) { r.Header.Set("Transfer-Encoding", "chunked") })},
		{name: "TransferEncoding field", reqs: one("POST", "abc", func(r *http.Request) { r.TransferEncoding = []string{"chunked"} }), h1only: true},
		{name: "Response set", reqs: one("GET", "", func(r *http.Request) { r.Response = &http.Response{StatusCode: 302} }), shared: true},
		{name: "Form set", reqs: one("POST", "a=b", func(r *http.Request) {
			r.Form, r.PostForm = url.Values{"x": {"y"}}, url.Values{"x": {"y"}}
			r.MultipartForm = &multipart.Form{Value: map[string][]string{"x": {"y"}}}
		})},
		{name: "deadline past", reqs: one("GET", "", func(r *http.Request) { *r = *r.WithContext(pastCtx(t, -time.Second)) })},
		{name: "deadline in year 9999", reqs: one("GET", "", func(r *http.Request) {
			*r = *r.WithContext(deadlineCtx(t, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)))
		}), shared: true},
		{name: "POST deadline in year 9999", reqs: one("POST", "x", func(r *http.Request) {
			*r = *r.WithContext(deadlineCtx(t, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)))
		})},
		{name: "WithoutCancel of a canceled context", reqs: one("GET", "", func(r *http.Request) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			*r = *r.WithContext(context.WithoutCancel(ctx))
		}), shared: true},
		{name: "Cancel closed", reqs: one("GET", "", func(r *http.Request) {
			ch := make(chan struct{})
			close(ch)
			//lint:ignore SA1019 http.Client sets it so at its Timeout: the case tested.
			r.Cancel = ch
		}), racy: "net/http selects between the closed Cancel and its dial's connection, at random when both are ready"},
		// Over HTTP/1 the plain client fails, or gets the answer of a
		// server that read the body first: TestBodyCloseFailsAtOnce.
		{name: "body Close fails", h2only: true, reqs: one("PUT", "", func(r *http.Request) {
			r.Body, r.ContentLength = closeFails("abc"), 3
			r.GetBody = func() (io.ReadCloser, error) { return closeFails("abc"), nil }
		})},
		{name: "body Close fails without GetBody", h2only: true, reqs: one("PUT", "", func(r *http.Request) { r.Body, r.ContentLength = closeFails("abc"), 3 })},
		{name: "body Read returns bytes and an error", reqs: one("PUT", "", func(r *http.Request) {
			r.Body, r.ContentLength = io.NopCloser(iotest.DataErrReader(iotest.ErrReader(errors.New("disk")))), 3
		}), stricter: "net/http flushes the head of a body it does not know to be in memory: the server may see it before the body fails"},
		{name: "header larger than the server reads", reqs: one("GET", "", func(r *http.Request) { r.Header.Set("X-Big", strings.Repeat("a", 2<<20)) }), h1only: true},
		{name: "large header", reqs: one("GET", "", func(r *http.Request) { r.Header.Set("X-Big", strings.Repeat("a", 1<<20+1)) }), shared: true, h1only: true},
	})
}

// closeFailsBody is a request body whose Close fails.
type closeFailsBody struct{ io.Reader }

func (closeFailsBody) Close() error { return errors.New("close failed") }

func closeFails(s string) io.ReadCloser { return closeFailsBody{strings.NewReader(s)} }

// pastCtx returns a context whose deadline is d from now.
func pastCtx(t *testing.T, d time.Duration) context.Context {
	return deadlineCtx(t, time.Now().Add(d))
}

// deadlineCtx returns a context with deadline d, canceled as the test ends.
func deadlineCtx(t *testing.T, d time.Time) context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// writeCounter counts the writes to the connections of a dialer.
type writeCounter struct{ writes atomic.Int32 }

type countedConn struct {
	net.Conn
	w *writeCounter
}

func (c countedConn) Write(p []byte) (int, error) {
	c.w.writes.Add(1)
	return c.Conn.Write(p)
}

func (w *writeCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return countedConn{c, w}, nil
}

// TestInMemoryBodyOneWrite: net/http writes a request whose body is in
// memory (http.NewRequest's body of a *bytes.Buffer, *bytes.Reader or
// *strings.Reader) with its headers in one write, and flushes the headers
// of any other body first, in a write of their own. The Transport wrapped
// every such body in its own reader: each POST of 5 bytes went out in two
// writes (two packets) where a plain client makes one. It sends such a
// body as it is when its length is the request's ContentLength, its
// retries' bodies from GetBody too.
func TestInMemoryBodyOneWrite(t *testing.T) {
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if fail.Swap(false) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	writesOf := func(rt func(*http.Transport) http.RoundTripper, body io.Reader) int32 {
		var w writeCounter
		base := &http.Transport{DialContext: w.dial}
		defer base.CloseIdleConnections()
		req, _ := http.NewRequest("PUT", srv.URL, body)
		resp, err := rt(base).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return w.writes.Load()
	}
	plain := func(b *http.Transport) http.RoundTripper { return b }
	ours := func(b *http.Transport) http.RoundTripper {
		return New(b, WithBackoff(time.Millisecond, time.Millisecond))
	}
	for _, body := range []func() io.Reader{
		func() io.Reader { return strings.NewReader("hello") },
		func() io.Reader { return bytes.NewReader([]byte("hello")) },
		func() io.Reader { return bytes.NewBufferString("hello") },
	} {
		want := writesOf(plain, body())
		if got := writesOf(ours, body()); got != want {
			t.Errorf("PUT %T: %d writes, want %d as a plain client", body(), got, want)
		}
		fail.Store(true) // a 503, then a retry with the body from GetBody
		if got := writesOf(ours, body()); got != 2*want {
			t.Errorf("PUT %T retried once: %d writes, want %d", body(), got, 2*want)
		}
	}
}

// TestBodyCloseFailsAtOnce: net/http closes a request body once it sent
// it, and a Close that fails fails the request over HTTP/1 (a plain client
// then fails at once; over HTTP/2 it sends the request, and so does the
// Transport: TestCarelessRequestsParity). Through the
// Transport, the error of a body with GetBody was a network error: the
// write was retried, each attempt a failure of the host's breaker (one
// that opens after 2 failures refused the next healthy call); a body
// without one was captured, its Close deferred past RoundTrip and its
// error lost: the request succeeded. Either now fails after one attempt,
// with a *RequestError wrapping the error, counted against nothing.
func TestBodyCloseFailsAtOnce(t *testing.T) {
	// As net/http's HTTP/1 transport: it reads the body to its end, closes
	// it and fails with the Close's error.
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil {
			_, err := io.Copy(io.Discard, req.Body)
			if cerr := req.Body.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", cerr)
			}
			if err != nil {
				return nil, err
			}
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	checkBodyCloseFails(t, base, 2)
}

// checkBodyCloseFails sends PUTs whose body's Close fails through base,
// with and without GetBody, to a Transport whose breaker opens on
// breakerFailures consecutive failures: each must fail after one attempt
// with a *RequestError holding the Close's error, and count against
// nothing (a healthy call follows).
func checkBodyCloseFails(t *testing.T, base http.RoundTripper, breakerFailures int) {
	t.Helper()
	for _, getBody := range []bool{true, false} {
		var attempts atomic.Int32
		tr := New(base, WithBackoff(time.Millisecond, time.Millisecond),
			WithBreaker(BreakerSettings{ConsecutiveFailures: breakerFailures}),
			WithObserver(func(Attempt) { attempts.Add(1) }))
		for range 2 {
			attempts.Store(0)
			req := newRequest(t, context.Background(), "PUT", "http://api.test/v1/items/1", nil)
			req.Body, req.ContentLength = closeFails("abc"), 3
			if getBody {
				req.GetBody = func() (io.ReadCloser, error) { return closeFails("abc"), nil }
			}
			_, err := tr.RoundTrip(req)
			var re *RequestError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), "close failed") || attempts.Load() != 1 {
				t.Fatalf("GetBody %v: err = %v after %d attempts, want a *RequestError with the Close's error after one", getBody, err, attempts.Load())
			}
		}
		if err := getClosed(t, tr, "http://api.test/v1/items"); err != nil {
			t.Errorf("GetBody %v: healthy call after the mistakes: %v (the breaker counted them?)", getBody, err)
		}
	}
}

// TestLowercaseMethodIsAWrite: net/http sends a method as it is, and
// methods are case-sensitive: "post" is no POST, nor "get" a GET, and
// neither is known to be idempotent. Each is a write: a 503 is not resent
// to a host not known to deduplicate by key.
func TestLowercaseMethodIsAWrite(t *testing.T) {
	for _, method := range []string{"post", "get", "put", "PURGE", "QUERY"} {
		var hits atomic.Int32
		var got atomic.Value
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			got.Store(r.Method)
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		client := &http.Client{Transport: New(srv.Client().Transport, WithBackoff(time.Millisecond, time.Millisecond))}
		req, _ := http.NewRequest(method, srv.URL, strings.NewReader("x"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Client().CloseIdleConnections()
		srv.Close()
		if n := hits.Load(); n != 1 || got.Load() != method || resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: %d requests (method %v), status %d; want one %s, its 503", method, n, got.Load(), resp.StatusCode, method)
		}
	}
}

// TestGot1xxHookErrorEndsTheCall: a caller whose ClientTrace's
// Got1xxResponse hook returns an error stops its request there; net/http
// fails it with that error inside its own, and a plain client fails once.
// Through the Transport, the error read as the network's: the GET was sent
// 6 times, each a failure of the host's breaker (over HTTP/2, errors.Is did
// not find the hook's error either). Now the call fails after one attempt,
// over HTTP/1 and HTTP/2, with a *RequestError that errors.Is finds the
// hook's error in (over HTTP/2 too, whose stream error does not unwrap),
// counted against nothing: a breaker that opens after one failure lets the
// next call through.
func TestGot1xxHookErrorEndsTheCall(t *testing.T) {
	errStop := errors.New("stop at the early hints")
	for _, h2 := range []bool{false, true} {
		var hits atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			if r.URL.Path == "/v1/hints" {
				w.Header().Set("Link", "</style.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Del("Link")
			}
			w.WriteHeader(http.StatusOK)
		}))
		if h2 {
			srv.EnableHTTP2 = true
			srv.StartTLS()
		} else {
			srv.Start()
		}
		proto := "HTTP/1.1"
		if h2 {
			proto = "HTTP/2"
		}
		base := srv.Client().Transport.(*http.Transport)
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			Got1xxResponse: func(int, textproto.MIMEHeader) error { return errStop },
		})
		var attempts atomic.Int32
		tr := New(base, WithBackoff(0, 0), WithObserver(func(Attempt) { attempts.Add(1) }))
		resp, err := tr.RoundTrip(newRequest(t, ctx, "GET", srv.URL+"/v1/hints", nil))
		if err == nil {
			resp.Body.Close()
		}
		var re *RequestError
		if n := hits.Load(); n != 1 || attempts.Load() != 1 || !errors.Is(err, errStop) || !errors.As(err, &re) {
			t.Errorf("%s: the server got the GET %d times in %d attempts, err = %v; want once, a *RequestError with the hook's error", proto, n, attempts.Load(), err)
		}
		tr = New(base, WithBackoff(0, 0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		if resp, err := tr.RoundTrip(newRequest(t, ctx, "GET", srv.URL+"/v1/hints", nil)); err == nil {
			resp.Body.Close()
		}
		if err := getClosed(t, tr, srv.URL+"/v1/items"); err != nil {
			t.Errorf("%s: healthy call after the hook's error: %v (the breaker counted it?)", proto, err)
		}
		base.CloseIdleConnections()
		srv.Close()
	}
}

// fakeStreamError has the shape of HTTP/2's StreamError (net/http's
// bundled copy is unexported), which does not unwrap to its cause.
type fakeStreamError struct {
	StreamID uint32
	Code     fakeErrCode
	Cause    error
}

func (e fakeStreamError) Error() string {
	return fmt.Sprintf("stream error: stream ID %d; %v; %v", e.StreamID, e.Code, e.Cause)
}

type fakeErrCode uint32

func (fakeErrCode) String() string { return "PROTOCOL_ERROR" }

// TestGot1xxFaultOnlyTheHooks: with a Got1xxResponse hook in the request's
// context, an error of the same shape as the hook's whose cause is the
// network's or net/http's own (a reset, a response cut short, a header
// net/http refuses) is still the network's or the server's, retried as
// before; only a cause of neither is the hook's.
func TestGot1xxFaultOnlyTheHooks(t *testing.T) {
	errStop := errors.New("stop")
	hooked := newRequest(t, httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(int, textproto.MIMEHeader) error { return errStop },
	}), "GET", "http://api.test/", nil)
	plain := newRequest(t, httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotFirstResponseByte: func() {},
	}), "GET", "http://api.test/", nil)
	broken := func(err error) error { return fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", err) }
	for _, tc := range []struct {
		name string
		req  *http.Request
		err  error
		hook bool
	}{
		{"HTTP/1 hook", hooked, broken(errStop), true},
		{"HTTP/2 hook", hooked, fakeStreamError{1, 1, errStop}, true},
		{"no hook", plain, broken(errStop), false},
		{"reset", hooked, broken(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), false},
		{"cut short", hooked, broken(io.ErrUnexpectedEOF), false},
		{"read loop", hooked, broken(errors.New("persistConn.readLoop exiting")), false},
		{"bad header", hooked, broken(textproto.ProtocolError("malformed MIME header line: x")), false},
		{"multiple lengths", hooked, broken(errors.New(`http: message cannot contain multiple Content-Length headers; got ["1" "2"]`)), false},
		{"HTTP/2 flood", hooked, fakeStreamError{1, 1, errors.New("header list too large")}, false},
		{"HTTP/2 malformed", hooked, fakeStreamError{1, 1, errors.New("malformed response from server: missing status pseudo header")}, false},
		{"HTTP/2 pseudo-header order", hooked, fakeStreamError{1, 1, errors.New("pseudo header field after regular")}, false},
		{"HTTP/2 mixed pseudo-headers", hooked, fakeStreamError{1, 1, errors.New("mix of request and response pseudo headers")}, false},
		{"TLS record", hooked, broken(tls.RecordHeaderError{Msg: "received record with version 5454 when expecting version 303"}), false},
		{"TLS record, idle read", hooked, broken(fmt.Errorf("readLoopPeekFailLocked: %w", tls.RecordHeaderError{Msg: "oversized record received with length 20000"})), false},
		{"another error", hooked, errStop, false},
	} {
		re := got1xxFault(tc.req, tc.err)
		if (re != nil) != tc.hook || re != nil && (!errors.Is(re, errStop) || !re.mayHaveBeenSent()) {
			t.Errorf("%s: got1xxFault = %v, want the hook's: %v", tc.name, re, tc.hook)
		}
	}
}

// TestGot1xxHookNotBlamedForServerFaults: a Got1xxResponse hook that
// returns nil (otelhttptrace.NewClientTrace installs one, so every call of
// its users has "a hook") never stops a request. A server's broken answer
// to such a request (over HTTP/2, a response whose pseudo-header follows a
// regular one or mixes request and response pseudo-headers; over HTTP/1, a
// record crypto/tls rejects in the middle of the response's header) is the
// server's fault, as it is without the hook: the GET is retried when it is
// without the hook, the error is not the caller's *RequestError, and the
// host's breaker counts it (one that opens after one failure refuses the
// next call).
func TestGot1xxHookNotBlamedForServerFaults(t *testing.T) {
	nilHook := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(int, textproto.MIMEHeader) error { return nil },
	})
	type server struct {
		url  string
		base http.RoundTripper
		hits *atomic.Int32
	}
	h2 := func(block []byte) func(t *testing.T) server {
		return func(t *testing.T) server {
			var hits atomic.Int32
			url := h2cServer(t, &hits, func(id uint32) []byte { return h2Frame(1, 0x4|0x1, id, block) })
			return server{url, h2cTransport(t), &hits}
		}
	}
	for _, tc := range []struct {
		name  string
		serve func(t *testing.T) server
	}{
		// x: y, then :status 200 (static index 8).
		{"HTTP/2 pseudo-header after a regular one", h2([]byte{0x00, 1, 'x', 1, 'y', 0x88})},
		// :status 200, then :method GET (static index 2).
		{"HTTP/2 request and response pseudo-headers", h2([]byte{0x88, 0x82})},
		{"HTTP/1 TLS record rejected mid-header", func(t *testing.T) server {
			var hits atomic.Int32
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				conn.Write([]byte("HTTP/1.1 200 OK\r\n")) // a TLS record
				conn.(*tls.Conn).NetConn().Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			}))
			t.Cleanup(srv.Close)
			base := srv.Client().Transport.(*http.Transport)
			t.Cleanup(base.CloseIdleConnections)
			return server{srv.URL, base, &hits}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.serve(t)
			get := func(tr http.RoundTripper, ctx context.Context) error {
				resp, err := tr.RoundTrip(newRequest(t, ctx, "GET", s.url+"/v1/items", nil))
				if err == nil {
					resp.Body.Close()
				}
				return err
			}
			get(New(s.base, WithBackoff(0, 0), WithMaxRetries(2)), context.Background())
			plain := s.hits.Swap(0)
			err := get(New(s.base, WithBackoff(0, 0), WithMaxRetries(2)), nilHook)
			var re *RequestError
			blamed := errors.As(err, &re)
			if n := s.hits.Load(); n != plain || blamed {
				t.Errorf("with a hook that returns nil: the server got the GET %d times (%d without the hook), err = %v (a *RequestError: %v); want as without the hook, not the caller's error", n, plain, err, blamed)
			}
			tr := New(s.base, WithBackoff(0, 0), WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
			get(tr, nilHook)
			if err := get(tr, nilHook); !errors.Is(err, ErrCircuitOpen) {
				t.Errorf("the call after the server's broken answer: %v; want ErrCircuitOpen (the breaker counts the server's fault)", err)
			}
		})
	}
}
