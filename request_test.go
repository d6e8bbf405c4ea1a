package resilient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// failingReader yields n bytes, then fails with err.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

// TestCallerMistakesFailAtOnce: a request whose body fails, whose body's
// length is not its ContentLength, or whose header is invalid fails at
// once with its cause as a *RequestError, and counts against nothing: a
// breaker that trips on one failure stays closed for healthy calls.
func TestCallerMistakesFailAtOnce(t *testing.T) {
	errDisk := errors.New("disk read failed")
	for _, tc := range []struct {
		name  string
		req   func(url string) *http.Request
		cause error // errors.Is target; nil to skip
		stub  bool  // through a base that reads the whole body before answering
	}{
		{"body read fails", func(url string) *http.Request {
			req, _ := http.NewRequest("PUT", url, io.NopCloser(&failingReader{n: 10, err: errDisk}))
			return req
		}, errDisk, false},
		{"body read fails with GetBody", func(url string) *http.Request {
			req, _ := http.NewRequest("PUT", url, strings.NewReader("x"))
			req.Body = io.NopCloser(&failingReader{n: 10, err: errDisk})
			req.ContentLength = -1
			return req
		}, errDisk, false},
		{"body shorter than ContentLength", func(url string) *http.Request {
			req, _ := http.NewRequest("PUT", url, strings.NewReader("abc"))
			req.ContentLength = 10
			return req
		}, nil, false},
		{"body one byte shorter than ContentLength", func(url string) *http.Request {
			req, _ := http.NewRequest("PUT", url, strings.NewReader("abcd"))
			req.ContentLength = 5
			return req
		}, nil, false},
		// Over loopback, net/http may get the server's answer before it
		// reads past ContentLength: the stub reads the body first.
		{"body longer than ContentLength", func(url string) *http.Request {
			req, _ := http.NewRequest("PUT", url, io.NopCloser(strings.NewReader("abcdefghijkl")))
			req.ContentLength = 5
			return req
		}, nil, true},
		{"ContentLength without a body", func(url string) *http.Request {
			req, _ := http.NewRequest("PUT", url, nil)
			req.ContentLength = 5
			return req
		}, nil, false},
		{"invalid trailer name", func(url string) *http.Request {
			req, _ := http.NewRequest("GET", url, nil)
			req.Trailer = http.Header{"Bad Name": {"v"}}
			return req
		}, nil, false},
		{"control character in the query", func(url string) *http.Request {
			req, _ := http.NewRequest("GET", url, nil)
			req.URL.RawQuery = "q=a\nb" // set raw, unescaped
			return req
		}, nil, false},
		{"invalid method", func(url string) *http.Request {
			req, _ := http.NewRequest("GET", url, nil)
			req.Method = "BAD METHOD"
			return req
		}, nil, false},
		{"invalid header name", func(url string) *http.Request {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header["Bad Name"] = []string{"v"}
			return req
		}, nil, false},
		{"host with an unclosed bracket", func(url string) *http.Request {
			req, _ := http.NewRequest("GET", url, nil)
			req.URL.Host = "[::1" // set by hand: url.Parse refuses it
			return req
		}, nil, false},
		{"host with a stray bracket", func(url string) *http.Request {
			req, _ := http.NewRequest("GET", url, nil)
			req.URL.Host = "::1]"
			return req
		}, nil, false},
		{"unsupported scheme", func(url string) *http.Request {
			req, _ := http.NewRequest("GET", strings.Replace(url, "http://", "ftp://", 1), nil)
			return req
		}, nil, false},
		{"port out of range", func(url string) *http.Request {
			req, _ := http.NewRequest("GET", url, nil)
			req.URL.Host = "127.0.0.1:99999"
			return req
		}, nil, false},
		{"port 0", func(url string) *http.Request {
			// Dialed, and refused: no server listens on port 0.
			req, _ := http.NewRequest("GET", url, nil)
			req.URL.Host = "127.0.0.1:0"
			return req
		}, nil, false},
		{"invalid header value", func(url string) *http.Request {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header["X-Evil"] = []string{"a\r\nInjected: 1"}
			return req
		}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := countConns(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
			var attempts atomic.Int32
			opts := []Option{WithBackoff(10*time.Millisecond, 10*time.Millisecond),
				WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
				WithObserver(func(Attempt) { attempts.Add(1) })}
			client := loopbackClient(t, opts...)
			if tc.stub {
				client = &http.Client{Transport: New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if req.Body != nil {
						_, err := io.ReadAll(req.Body)
						req.Body.Close()
						if err != nil {
							return nil, err
						}
					}
					return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
				}), opts...)}
			}
			for range 3 {
				_, err := client.Do(tc.req(srv.URL))
				var re *RequestError
				if !errors.As(err, &re) {
					t.Fatalf("err = %v, want a *RequestError", err)
				}
				if tc.cause != nil && !errors.Is(err, tc.cause) {
					t.Errorf("err = %v, want it to wrap the body's error", err)
				}
			}
			if n := attempts.Load(); n != 3 {
				t.Errorf("%d attempts for 3 calls, want one each", n)
			}
			resp, err := client.Get(srv.URL)
			if err != nil {
				t.Fatalf("healthy call after the mistakes: %v (the breaker counted them?)", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("healthy call: status %d", resp.StatusCode)
			}
		})
	}
}

// TestContentLengthWithoutBodyClosedConn: net/http refuses a request with
// a ContentLength and no body on a connection it then closes, and the read
// that the closing cuts sometimes answers first, with net.ErrClosed instead
// of the refusal: that error is the caller's mistake all the same (it made
// TestCallerMistakesFailAtOnce's row fail about one run in 100, retried and
// counted by the breaker). A request with a body, or without a length, that
// gets the same error is not.
func TestContentLengthWithoutBodyClosedConn(t *testing.T) {
	closed := &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}
	for _, tc := range []struct {
		name string
		body io.ReadCloser
		cl   int64
		want bool
	}{
		{"length without a body", nil, 5, true},
		{"a body", io.NopCloser(strings.NewReader("abcde")), 5, false},
		{"no body, no length", nil, 0, false},
	} {
		req, _ := http.NewRequest("PUT", "http://api.test/", nil)
		req.Body, req.ContentLength = tc.body, tc.cl
		err := requestFault(req, closed)
		var re *RequestError
		if got := errors.As(err, &re); got != tc.want || !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s: requestFault = %v; want a *RequestError %v, wrapping the cause", tc.name, err, tc.want)
		}
	}
}

// TestNilHeaderFailsAtOnce: a request without a Header (a Request literal
// sent through RoundTrip itself: http.Client gives it one) is the caller's
// mistake, which net/http's Transport refuses before it dials: no attempt
// (see TestNilHeaderRefusedLikeNetHTTP), a *RequestError, and no breaker
// failure.
func TestNilHeaderFailsAtOnce(t *testing.T) {
	srv, conns := countConns(t, func(http.ResponseWriter, *http.Request) {})
	var attempts atomic.Int32
	tr := New(&http.Transport{}, WithBackoff(10*time.Millisecond, 10*time.Millisecond),
		WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
		WithObserver(func(Attempt) { attempts.Add(1) }))
	defer tr.CloseIdleConnections()
	u, _ := url.Parse(srv.URL)
	for range 3 {
		req := (&http.Request{Method: "GET", URL: u}).WithContext(context.Background())
		_, err := roundTrip(t, tr, req)
		var re *RequestError
		if !errors.As(err, &re) {
			t.Fatalf("err = %v, want a *RequestError", err)
		}
	}
	if n := attempts.Load(); n != 0 {
		t.Errorf("%d attempts for 3 calls, want none", n)
	}
	resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", srv.URL, nil))
	if err != nil {
		t.Fatalf("healthy call after the mistakes: %v (the breaker counted them?)", err)
	}
	resp.Body.Close()
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want the healthy call's only", n)
	}
}

func TestInvalidRequest(t *testing.T) {
	for _, tc := range []struct {
		method, name, value string
		want                bool // invalid
	}{
		{"GET", "X-Ok", "v\twith tab", false},
		{"GET", "X-Ok", "caf\xc3\xa9", false},
		{"BAD METHOD", "X-Ok", "v", true},
		{"GET", "Bad:Name", "v", true},
		{"GET", "", "v", true},
		{"GET", "X-Nul", "a\x00b", true},
		{"GET", "X-Del", "a\x7fb", true},
	} {
		req, _ := http.NewRequest("GET", "http://api.test/", nil)
		req.Method = tc.method
		req.Header[tc.name] = []string{tc.value}
		if got := invalidRequest(req) != ""; got != tc.want {
			t.Errorf("invalidRequest(%q, %q: %q) = %v, want %v", tc.method, tc.name, tc.value, got, tc.want)
		}
	}
	req, _ := http.NewRequest("GET", "http://api.test/", nil)
	req.URL.Host, req.Host = "", ""
	if invalidRequest(req) == "" {
		t.Error("a URL without a host is valid")
	}
	req, _ = http.NewRequest("GET", "http://api.test/", nil)
	req.Trailer = http.Header{"X-Evil": {"a\r\nb"}}
	if invalidRequest(req) == "" {
		t.Error("a trailer with a control character is valid")
	}
	req, _ = http.NewRequest("GET", "http://api.test/", nil)
	req.URL.RawQuery = "a=\x00"
	if invalidRequest(req) == "" {
		t.Error("a query with a control character is valid")
	}
	// A network error of a valid request is left alone.
	req, _ = http.NewRequest("GET", "http://api.test/", nil)
	if err := requestFault(req, io.ErrUnexpectedEOF); err != io.ErrUnexpectedEOF {
		t.Errorf("requestFault = %v, want the error unchanged", err)
	}
	// An invalid Host through a proxy: net/http closes the connection as
	// it refuses to write the request, and may report the read that the
	// closing cut instead of its refusal (TestCallerMistakesThroughProxy
	// failed so under load).
	closed := &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}
	req, _ = http.NewRequest("GET", "http://api.test/", nil)
	req.Host = "bad host"
	var re *RequestError
	if err := requestFault(req, closed); !errors.As(err, &re) {
		t.Errorf("requestFault(invalid Host, %v) = %v, want a *RequestError", closed, err)
	}
	for _, host := range []string{"api.test", "[fe80::1%25eth0]:443", "bücher.example"} {
		req.Host = host
		if err := requestFault(req, closed); err != closed {
			t.Errorf("requestFault(Host %q, %v) = %v, want the error unchanged", host, closed, err)
		}
	}
}

// TestCallerMistakesFailAtOnceHTTP2: the requests net/http's HTTP/2 client
// refuses to send (a Connection other than close or keep-alive, an Upgrade
// outside of an upgrade, a Transfer-Encoding other than chunked, an
// invalid Host, more header than the server accepts, a body longer than
// its ContentLength, with GetBody or without) are the caller's
// mistakes as over HTTP/1: one attempt, a *RequestError, and no breaker
// failure.
func TestCallerMistakesFailAtOnceHTTP2(t *testing.T) {
	// The server reads the body before it answers: the client's failure
	// to send it comes first.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	base := srv.Client().Transport.(*http.Transport)
	defer base.CloseIdleConnections()
	for _, tc := range []struct {
		name string
		set  func(*http.Request)
	}{
		{"Connection", func(r *http.Request) { r.Header.Set("Connection", "foo") }},
		{"Upgrade", func(r *http.Request) { r.Header.Set("Upgrade", "websocket") }},
		{"Transfer-Encoding", func(r *http.Request) { r.Header.Set("Transfer-Encoding", "gzip") }},
		{"Host", func(r *http.Request) { r.Host = "bad host" }},
		{"header too large", func(r *http.Request) { r.Header.Set("X-Big", strings.Repeat("a", 2<<20)) }},
		{"body longer than ContentLength", func(r *http.Request) {
			r.Method = "PUT"
			r.Body = io.NopCloser(strings.NewReader("abcdefghijkl"))
			r.ContentLength = 5
		}},
		{"body longer than ContentLength with GetBody", func(r *http.Request) {
			r.Method = "PUT"
			r.Body = io.NopCloser(strings.NewReader("abcdefghijkl"))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("abcdefghijkl")), nil }
			r.ContentLength = 5
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var attempts atomic.Int32
			client := &http.Client{Transport: New(base, WithBackoff(10*time.Millisecond, 10*time.Millisecond),
				WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
				WithObserver(func(Attempt) { attempts.Add(1) }))}
			req, _ := http.NewRequest("GET", srv.URL, nil)
			tc.set(req)
			_, err := client.Do(req)
			var re *RequestError
			if !errors.As(err, &re) || attempts.Load() != 1 {
				t.Fatalf("err = %.200v after %d attempts, want a *RequestError after one", err, attempts.Load())
			}
			resp, err := client.Get(srv.URL)
			if err != nil {
				t.Fatalf("healthy call after the mistake: %v (the breaker counted it?)", err)
			}
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Errorf("healthy call over %s, want HTTP/2", resp.Proto)
			}
		})
	}
}

// TestWriteRuleBodyLongerThanContentLength: a body longer than its
// ContentLength is the caller's mistake, yet it does not prove the request
// unsent: net/http writes the ContentLength bytes it declared before it
// reads past them and fails, and a server that read them has the whole
// request. A Classifier that retries the error gets no resend of a write
// to a host not known to honor keys; the call fails after one attempt,
// with StopUnsafeWrite.
func TestWriteRuleBodyLongerThanContentLength(t *testing.T) {
	retryErrors := func(_ *http.Response, _ *APIError, err error, def Class) Class {
		if err != nil {
			return Transient
		}
		return def
	}
	for _, getBody := range []bool{false, true} {
		var processed atomic.Int32
		// As net/http's Transport: the declared bytes go out, then the
		// rest is read, and its error returned.
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			defer req.Body.Close()
			if n, _ := io.CopyN(io.Discard, req.Body, req.ContentLength); n == req.ContentLength {
				processed.Add(1) // the server has the whole request
			}
			_, err := io.Copy(io.Discard, req.Body)
			if err == nil {
				err = errors.New("no error past ContentLength")
			}
			return nil, err
		})
		var stops []StopReason
		tr := New(base, WithBackoff(time.Millisecond, time.Millisecond), WithClassifier(retryErrors),
			WithObserver(func(a Attempt) { stops = append(stops, a.StopReason) }))
		req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("abcdefghijkl"))
		if !getBody {
			req.GetBody = nil
		}
		req.ContentLength = 5
		_, err := tr.RoundTrip(req)
		var re *RequestError
		if !errors.As(err, &re) {
			t.Errorf("GetBody %v: err = %v, want a *RequestError", getBody, err)
		}
		if n := processed.Load(); n != 1 || len(stops) != 1 || stops[0] != StopUnsafeWrite {
			t.Errorf("GetBody %v: the server got the whole write %d times, stop reasons %q; want once, %q", getBody, n, stops, StopUnsafeWrite)
		}
	}
}

// TestNilURL: a request without a URL is the caller's mistake, as a URL
// without a host is: a *RequestError at once, its body closed, and the
// call's Report filled (no attempt), not left with another call's values.
func TestNilURL(t *testing.T) {
	var closed atomic.Int32
	body := &closeCounter{n: &closed}
	r := Report{Attempts: 3, StatusCode: 200, Outcome: OutcomeSuccess} // a previous call's
	req := (&http.Request{Method: "PUT", Header: http.Header{}, Body: body}).WithContext(WithReport(context.Background(), &r))
	_, err := New(roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Fatal("sent")
		return nil, nil
	})).RoundTrip(req)
	var re *RequestError
	if !errors.As(err, &re) || !strings.HasPrefix(err.Error(), "resilient: ") {
		t.Errorf("err = %v, want a *RequestError", err)
	}
	if closed.Load() != 1 {
		t.Error("body not closed")
	}
	if r.Attempts != 0 || r.StatusCode != 0 || r.Outcome != OutcomePermanent {
		t.Errorf("Report = %+v, want no attempt, no status, outcome %q", r, OutcomePermanent)
	}
}

// TestCallerMistakesThroughProxy: a request net/http refuses to send to a
// proxy, an invalid Host (which it sends empty to a server, but refuses
// to send to a proxy), is the caller's mistake as over a direct
// connection: one attempt, a *RequestError, and no breaker failure. It was
// a Transient network error: retried five times, with backoff, each a
// failure of the proxy's breaker.
func TestCallerMistakesThroughProxy(t *testing.T) {
	var hits atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	base := &http.Transport{Proxy: http.ProxyURL(pu)}
	defer base.CloseIdleConnections()
	var attempts atomic.Int32
	client := &http.Client{Transport: New(base, WithBackoff(10*time.Millisecond, 10*time.Millisecond),
		WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
		WithObserver(func(Attempt) { attempts.Add(1) }))}
	req, _ := http.NewRequest("GET", "http://api.test/v1/posts", nil)
	req.Host = "bad host"
	_, err := client.Do(req)
	var re *RequestError
	if !errors.As(err, &re) || attempts.Load() != 1 || hits.Load() != 0 {
		t.Errorf("err = %v after %d attempts, %d reached the proxy; want a *RequestError after one, none", err, attempts.Load(), hits.Load())
	}
	resp, err := client.Get("http://api.test/v1/posts")
	if err != nil {
		t.Fatalf("healthy call after the mistake: %v (the breaker counted it?)", err)
	}
	resp.Body.Close()
}

// TestURLWithoutHostButHostHeader: a request whose URL has no host is the
// caller's mistake though its Host field names one: net/http dials the
// URL's host, and refuses the request at once ("http: no Host in request
// URL"). It fails as a URL without a host does, with a *RequestError after
// one attempt that reached nothing.
func TestURLWithoutHostButHostHeader(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	var attempts atomic.Int32
	tr := New(base, WithBackoff(0, 0), WithObserver(func(Attempt) { attempts.Add(1) }))
	for _, method := range []string{"GET", "POST"} {
		attempts.Store(0)
		req, _ := http.NewRequest(method, srv.URL+"/v1/posts", strings.NewReader("x"))
		req.Host, req.URL.Host = req.URL.Host, ""
		_, err := tr.RoundTrip(req)
		var re *RequestError
		if !errors.As(err, &re) || attempts.Load() != 1 || hits.Load() != 0 {
			t.Errorf("%s: err = %v after %d attempts, %d reached the server; want a *RequestError after one, none", method, err, attempts.Load(), hits.Load())
		}
	}
}
