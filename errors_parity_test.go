package resilient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// errCauseForParity is a caller's cause of a context's end.
var errCauseForParity = errors.New("caller's cause: shutting down")

// errChecks are the checks callers make on an error of http.Client.Do or
// of a response body's Read, by name.
var errChecks = []struct {
	name string
	fn   func(error) bool
}{
	{"Is context.Canceled", func(err error) bool { return errors.Is(err, context.Canceled) }},
	{"Is context.DeadlineExceeded", func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
	{"os.IsTimeout", os.IsTimeout},
	{"net.Error Timeout", func(err error) bool { var ne net.Error; return errors.As(err, &ne) && ne.Timeout() }},
	{"As *net.OpError", func(err error) bool { return errors.As(err, new(*net.OpError)) }},
	{"As *net.DNSError", func(err error) bool { return errors.As(err, new(*net.DNSError)) }},
	{"DNSError IsNotFound", func(err error) bool { var e *net.DNSError; return errors.As(err, &e) && e.IsNotFound }},
	{"As *tls.CertificateVerificationError", func(err error) bool { return errors.As(err, new(*tls.CertificateVerificationError)) }},
	{"As x509.UnknownAuthorityError", func(err error) bool { return errors.As(err, new(x509.UnknownAuthorityError)) }},
	{"As *url.Error", func(err error) bool { return errors.As(err, new(*url.Error)) }},
	{"Is io.ErrUnexpectedEOF", func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
	{"Is ECONNREFUSED", func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }},
	{"Is ECONNRESET", func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }},
	{"Is http.ErrSchemeMismatch", func(err error) bool { return errors.Is(err, http.ErrSchemeMismatch) }},
	{"Is http.ErrBodyReadAfterClose", func(err error) bool { return errors.Is(err, http.ErrBodyReadAfterClose) }},
	{"Is the caller's cause", func(err error) bool { return errors.Is(err, errCauseForParity) }},
	{"As *http.MaxBytesError", func(err error) bool { return errors.As(err, new(*http.MaxBytesError)) }},
}

// parityServers are the servers of TestErrorParity, started once.
type parityServers struct {
	hang, reset, cut, plain, tls, slowBody string
	closed                                 string // a port nobody listens on
}

func startParityServers(t *testing.T) *parityServers {
	t.Helper()
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	reset := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // a RST, not a FIN
		}
		conn.Close()
	}))
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		if r.URL.Query().Get("status") == "500" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"error":{"code":"internal","message":"oops"}`))
		} else {
			w.WriteHeader(http.StatusOK)
		}
		w.Write([]byte("0123456789"))
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Query().Get("status") == "500" {
			w.WriteHeader(http.StatusInternalServerError)
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	slowBody := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("0123456789"))
		w.(http.Flusher).Flush()
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	t.Cleanup(func() {
		close(stop)
		for _, s := range []*httptest.Server{hang, reset, cut, plain, tlsSrv, slowBody} {
			s.Close()
		}
	})
	return &parityServers{hang: hang.URL, reset: reset.URL, cut: cut.URL, plain: plain.URL,
		tls: tlsSrv.URL, slowBody: slowBody.URL, closed: closed}
}

// TestErrorParity: every check a caller makes on the error of
// http.Client{Transport: base} (errors.Is of the context's errors and of
// its cause, os.IsTimeout, errors.As of net/http's, net's, tls' and x509's
// error types, ...) holds for http.Client{Transport: New(base)} too, after
// its retries are spent or refused, on the error of Do and on the error of
// reading the response's body; and the *Error's message starts with
// "resilient: " and holds no secret of the URL.
func TestErrorParity(t *testing.T) {
	if testing.Short() {
		t.Skip("real servers and timers")
	}
	srv := startParityServers(t)
	const secret = "s3cr3t"
	withSecrets := func(u string) string {
		return strings.Replace(u, "://", "://alice:"+secret+"@", 1) + "/v1/items?api_key=" + secret
	}
	tlsURL := func(u string) string { return strings.Replace(u, "http://", "https://", 1) }
	type ctxFn func() (context.Context, context.CancelFunc)
	background := func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }
	cancelAfter := func(d time.Duration) ctxFn {
		return func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(d, cancel)
			return ctx, cancel
		}
	}
	causeAfter := func(d time.Duration) ctxFn {
		return func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(d, func() { cancel(errCauseForParity) })
			return ctx, func() { cancel(nil) }
		}
	}
	timeout := func(d time.Duration) ctxFn {
		return func() (context.Context, context.CancelFunc) { return context.WithTimeout(context.Background(), d) }
	}
	timeoutCause := func(d time.Duration) ctxFn {
		return func() (context.Context, context.CancelFunc) {
			return context.WithTimeoutCause(context.Background(), d, errCauseForParity)
		}
	}
	const short = 100 * time.Millisecond
	for _, tc := range []struct {
		name string
		// plainURL, plainCtx and plainClient make the reference call, on
		// a plain client: what a caller of the Transport may expect.
		plainURL    string
		plainCtx    ctxFn
		plainClient func(base *http.Transport) *http.Client
		// url, ctx and opts make the call through the Transport; url
		// and ctx default to the plain ones.
		url        string
		ctx        ctxFn
		opts       []Option
		prime      int  // calls made first through the same Transport, to open its breaker or spend its quota
		readBody   bool // the error compared is the body's, not Do's
		readClosed bool // the body is read after it is closed
		method     string
		body       func() io.ReadCloser
		slowDial   bool // the dial waits for the end of its context
		ctxErrBase bool // the base is not net/http's: it waits for the end of the request's context and returns its Err
	}{
		{name: "connection refused", plainURL: srv.closed, opts: []Option{WithMaxRetries(1)}},
		{name: "no such host", plainURL: "http://no-such-host.invalid", opts: []Option{WithMaxRetries(1)}},
		{name: "self-signed certificate", plainURL: srv.tls},
		{name: "https to an http server", plainURL: tlsURL(srv.plain)},
		{name: "connection reset", plainURL: srv.reset, opts: []Option{WithMaxRetries(1)}},
		{name: "context deadline during the attempt", plainURL: srv.hang, plainCtx: timeout(short)},
		{name: "context canceled during the attempt", plainURL: srv.hang, plainCtx: cancelAfter(short)},
		{name: "context canceled with a cause during the attempt", plainURL: srv.hang, plainCtx: causeAfter(short)},
		{name: "context deadline with a cause during the attempt", plainURL: srv.hang, plainCtx: timeoutCause(short)},
		{name: "context canceled with a cause before", plainURL: srv.hang, plainCtx: causeAfter(0)},
		// A deadline that would end during the backoff ends the call
		// at once, with the last attempt's error: a plain client's.
		{name: "context deadline before the backoff's end", plainURL: srv.reset, plainCtx: timeout(short),
			url: srv.reset, opts: []Option{WithBackoff(time.Hour, time.Hour), WithMaxElapsed(0)}},
		{name: "context canceled during the backoff", plainURL: srv.hang, plainCtx: cancelAfter(short),
			url: srv.reset, opts: []Option{WithBackoff(time.Hour, time.Hour), WithMaxElapsed(0)}},
		{name: "context cause during the backoff", plainURL: srv.hang, plainCtx: causeAfter(short),
			url: srv.reset, opts: []Option{WithBackoff(time.Hour, time.Hour), WithMaxElapsed(0)}},
		{name: "context deadline cause before the backoff's end", plainURL: srv.reset, plainCtx: timeoutCause(short),
			url: srv.reset, opts: []Option{WithBackoff(time.Hour, time.Hour), WithMaxElapsed(0)}},
		{name: "context canceled during the rate limit's wait", plainURL: srv.hang, plainCtx: cancelAfter(short),
			url: srv.plain, ctx: cancelAfter(short), prime: 1, opts: []Option{WithRateLimit(rate.Every(time.Second), 1)}},
		{name: "context cause during the rate limit's wait", plainURL: srv.hang, plainCtx: causeAfter(short),
			url: srv.plain, ctx: causeAfter(short), prime: 1, opts: []Option{WithRateLimit(rate.Every(time.Second), 1)}},
		{name: "body cut short", plainURL: srv.cut, readBody: true},
		{name: "body of a 500 cut short", plainURL: srv.cut + "?status=500", readBody: true, opts: []Option{WithMaxRetries(0)}},
		{name: "body of a 500 cut short, buffered", plainURL: srv.cut + "?status=500", readBody: true, opts: []Option{WithMaxRetries(0), WithBufferedResponse(1 << 20)}},
		{name: "attempt timeout set for the call", plainURL: srv.hang, plainClient: func(b *http.Transport) *http.Client {
			return &http.Client{Transport: b, Timeout: short}
		}, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			return WithCallOptions(ctx, WithAttemptTimeout(short)), cancel
		}, opts: []Option{WithMaxRetries(0)}},
		{name: "body read after close", plainURL: srv.plain, readBody: true, readClosed: true},
		{name: "body of a 500 read after close", plainURL: srv.plain + "?status=500", readBody: true, readClosed: true, opts: []Option{WithMaxRetries(0)}},
		{name: "context canceled during the body", plainURL: srv.slowBody, plainCtx: cancelAfter(short), readBody: true},
		{name: "context cause during the body", plainURL: srv.slowBody, plainCtx: causeAfter(short), readBody: true},
		{name: "context deadline during the body", plainURL: srv.slowBody, plainCtx: timeout(short), readBody: true},
		{name: "request body past http.MaxBytesReader", plainURL: srv.plain, method: http.MethodPost,
			body: func() io.ReadCloser {
				return http.MaxBytesReader(nil, io.NopCloser(strings.NewReader(strings.Repeat("x", 100))), 10)
			}},
		// Timeouts the Transport imposes are timeouts as Client.Timeout's.
		{name: "attempt timeout", plainURL: srv.hang, plainClient: func(b *http.Transport) *http.Client {
			return &http.Client{Transport: b, Timeout: short}
		}, opts: []Option{WithAttemptTimeout(short), WithMaxRetries(0)}},
		{name: "attempt timeout, retried", plainURL: srv.hang, plainClient: func(b *http.Transport) *http.Client {
			return &http.Client{Transport: b, Timeout: short}
		}, opts: []Option{WithAttemptTimeout(short), WithMaxRetries(1), WithBackoff(0, 0)}},
		{name: "attempt timeout, cancelable context", plainURL: srv.hang, plainClient: func(b *http.Transport) *http.Client {
			return &http.Client{Transport: b, Timeout: short}
		}, ctx: background, opts: []Option{WithAttemptTimeout(short), WithMaxRetries(0)}},
		{name: "attempt timeout during a slow dial, cancelable context", plainURL: srv.hang, plainClient: func(b *http.Transport) *http.Client {
			return &http.Client{Transport: b, Timeout: short}
		}, ctx: background, slowDial: true, opts: []Option{WithAttemptTimeout(short), WithMaxRetries(0)}},
		{name: "attempt timeout, a base that returns ctx.Err()", plainURL: srv.hang, plainClient: func(b *http.Transport) *http.Client {
			return &http.Client{Transport: b, Timeout: short}
		}, ctx: background, ctxErrBase: true, opts: []Option{WithAttemptTimeout(short), WithMaxRetries(0)}},
		{name: "budget spent", plainURL: srv.hang, plainClient: func(b *http.Transport) *http.Client {
			return &http.Client{Transport: b, Timeout: short}
		}, opts: []Option{WithMaxElapsed(short)}},
		{name: "budget spent, cancelable context", plainURL: srv.hang, plainClient: func(b *http.Transport) *http.Client {
			return &http.Client{Transport: b, Timeout: short}
		}, ctx: background, opts: []Option{WithMaxElapsed(short)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := func(c *http.Client, u string, ctxf ctxFn, n int) error {
				var err error
				for range n {
					ctx, cancel := context.Background(), context.CancelFunc(func() {})
					if ctxf != nil {
						ctx, cancel = ctxf()
					}
					method := tc.method
					if method == "" {
						method = http.MethodGet
					}
					var body io.Reader
					if tc.body != nil {
						body = tc.body()
					}
					req, rerr := http.NewRequestWithContext(ctx, method, u, body)
					if rerr != nil {
						t.Fatal(rerr)
					}
					resp, derr := c.Do(req)
					err = derr
					if derr == nil {
						if tc.readBody {
							if tc.readClosed {
								resp.Body.Close()
							}
							_, err = io.ReadAll(resp.Body)
						}
						resp.Body.Close()
					}
					cancel()
				}
				return err
			}
			newBase := func() *http.Transport {
				b := &http.Transport{}
				if tc.slowDial {
					b.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
						<-ctx.Done()
						return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
					}
				}
				return b
			}
			plainBase := newBase()
			defer plainBase.CloseIdleConnections()
			plain := &http.Client{Transport: plainBase}
			if tc.plainClient != nil {
				plain = tc.plainClient(plainBase)
			}
			var ctxErrBase http.RoundTripper = roundTripFunc(func(req *http.Request) (*http.Response, error) {
				<-req.Context().Done()
				return nil, req.Context().Err()
			})
			if tc.ctxErrBase {
				plain.Transport = ctxErrBase
			}
			plainURL := withSecrets(tc.plainURL)
			if strings.Contains(tc.plainURL, "?") {
				plainURL = tc.plainURL
			}
			want := run(plain, plainURL, tc.plainCtx, 1)
			if want == nil {
				t.Fatal("the plain client got no error")
			}
			base := newBase()
			defer base.CloseIdleConnections()
			var rt http.RoundTripper = base
			if tc.ctxErrBase {
				rt = ctxErrBase
			}
			tr := New(rt, append([]Option{WithBackoff(0, 0)}, tc.opts...)...)
			u, ctxf := tc.url, tc.ctx
			if u == "" {
				u = tc.plainURL
			}
			if ctxf == nil {
				ctxf = tc.plainCtx
			}
			if !strings.Contains(u, "?") {
				u = withSecrets(u)
			}
			if tc.prime > 0 {
				run(&http.Client{Transport: tr}, u, nil, tc.prime)
			}
			got := run(&http.Client{Transport: tr}, u, ctxf, 1)
			if got == nil {
				t.Fatal("the Transport's client got no error")
			}
			for _, c := range errChecks {
				if c.fn(want) && !c.fn(got) {
					t.Errorf("%s: true of the plain client's error, false of the Transport's\nplain:     %v\nresilient: %v", c.name, want, got)
				}
			}
			if isCanceled := func(err error) bool { return errors.Is(err, context.Canceled) }; !isCanceled(want) && isCanceled(got) {
				t.Errorf("the Transport's error looks like the caller's cancel, the plain client's does not\nplain:     %v\nresilient: %v", want, got)
			}
			if !tc.readBody {
				var e *Error
				if !errors.As(got, &e) {
					t.Fatalf("error %v is no *Error", got)
				}
				if msg := e.Error(); strings.Count(msg, "attempt timed out") > 1 {
					t.Errorf("*Error's message %q repeats the timeout", msg)
				}
				if msg := e.Error(); !strings.HasPrefix(msg, "resilient: ") || strings.Contains(msg, secret) || strings.Contains(msg, "alice") {
					t.Errorf("*Error's message %q does not start with \"resilient: \", or holds a secret", msg)
				}
			} else if strings.Contains(got.Error(), secret) {
				t.Errorf("the body's error %q holds a secret", got)
			}
		})
	}
}

// TestRefusalsAreNotTimeouts: an attempt refused by a layer of the chain
// (the breaker open, the rate limiter's wait past the deadline, the retry
// budget spent, the host's slots full until the attempt's deadline) ends
// the call with an error that is neither a timeout nor the caller's cancel
// nor its deadline, though the call had a deadline: a caller that takes
// those for "my own limit fired" must not see one.
func TestRefusalsAreNotTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		get := func(tr http.RoundTripper) error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, "http://api.test/v1?k="+"s3cr3t", nil))
			if resp != nil {
				resp.Body.Close()
			}
			return err
		}
		hang := &rtScript{steps: []rtStep{{hang: true}}}
		refused := &rtScript{steps: []rtStep{{err: errRefused}}}
		breaker := New(refused, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		get(breaker)
		limited := New(&rtScript{steps: []rtStep{{status: 200}}}, WithRateLimit(rate.Every(time.Hour), 1))
		get(limited)
		full := New(hang, WithMaxInFlight(1), WithAttemptTimeout(10*time.Second), WithMaxRetries(0))
		holder, release := context.WithCancel(context.Background())
		defer release()
		go func() { // holds the host's one slot until released (no attempt timeout for it)
			resp, err := full.RoundTrip(newRequest(t, WithCallOptions(holder, WithAttemptTimeout(0)), http.MethodGet, "http://api.test/v1", nil))
			if err == nil {
				resp.Body.Close()
			}
		}()
		synctest.Wait()
		for _, tc := range []struct {
			name   string
			tr     http.RoundTripper
			target error
		}{
			{"breaker open", breaker, ErrCircuitOpen},
			{"rate limited", limited, ErrRateLimited},
			{"retry budget spent", New(refused, fastRetries, WithoutBreaker(), WithRetryBudget(RetryBudget{Burst: 0.5})), ErrRetryBudgetExhausted},
			{"host full", full, ErrTooManyInFlight},
		} {
			err := get(tc.tr)
			if !errors.Is(err, tc.target) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.target)
				continue
			}
			for _, c := range errChecks[:4] { // Canceled, DeadlineExceeded, os.IsTimeout, net.Error's Timeout
				if c.fn(err) {
					t.Errorf("%s: %s is true of %v", tc.name, c.name, err)
				}
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "resilient: GET http://api.test/v1: ") || strings.Contains(msg, "s3cr3t") {
				t.Errorf("%s: message %q", tc.name, msg)
			}
		}
	})
}
