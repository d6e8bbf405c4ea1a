package resilient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// This file checks, from outside the package and through its public API
// only, requirements of the issues that no other test exercised.

// slowHost is a base RoundTripper whose every answer, a 200, comes after
// delay unless the attempt's context ends first; it records when each
// request was sent and how many answered.
type slowHost struct {
	delay time.Duration

	mu   sync.Mutex
	sent []time.Time
}

func (h *slowHost) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	h.mu.Lock()
	h.sent = append(h.sent, time.Now())
	h.mu.Unlock()
	select {
	case <-time.After(h.delay):
	case <-req.Context().Done():
		return nil, context.Cause(req.Context())
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: req}, nil
}

func (h *slowHost) sends() []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time(nil), h.sent...)
}

// TestHedgingMaxHedges: an attempt gets at most MaxHedges copies (default
// 1), one Delay apart, and the Report counts them (issue 14).
func TestHedgingMaxHedges(t *testing.T) {
	for _, tc := range []struct {
		maxHedges int
		copies    int
	}{{0, 1}, {1, 1}, {2, 2}, {3, 3}} {
		synctest.Test(t, func(t *testing.T) {
			h := &slowHost{delay: time.Second}
			tr := resilient.New(h, resilient.WithHedging(resilient.Hedging{Delay: 100 * time.Millisecond, MaxHedges: tc.maxHedges}))
			var r resilient.Report
			req, _ := http.NewRequestWithContext(resilient.WithReport(context.Background(), &r), http.MethodGet, "http://api.test/v1/posts", nil)
			start := time.Now()
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
				t.Errorf("MaxHedges %d: body %q, want ok", tc.maxHedges, b)
			}
			resp.Body.Close()
			synctest.Wait() // the losing copies end
			sent := h.sends()
			if len(sent) != 1+tc.copies || r.Hedges != tc.copies || r.Attempts != 1+tc.copies {
				t.Fatalf("MaxHedges %d: %d requests sent, Report %+v; want %d copies of 1 attempt (the copies counted in Attempts too)", tc.maxHedges, len(sent), r, tc.copies)
			}
			for i, at := range sent {
				if want := time.Duration(i) * 100 * time.Millisecond; at.Sub(start) != want {
					t.Errorf("MaxHedges %d: request %d sent at %v, want %v", tc.maxHedges, i+1, at.Sub(start), want)
				}
			}
		})
	}
}

// TestHedgingNoCopy: a call allowed no retry (WithMaxRetries(0), for the
// Transport or through WithCallOptions) is exactly one request, as issue
// 17 words it: its attempt gets no hedged copy either; nor does the call
// of a Transport without a retry budget, which would pay for the copies.
func TestHedgingNoCopy(t *testing.T) {
	hedging := resilient.WithHedging(resilient.Hedging{Delay: 100 * time.Millisecond})
	for _, tc := range []struct {
		name string
		opts []resilient.Option
		call []resilient.Option
	}{
		{"transport", []resilient.Option{hedging, resilient.WithMaxRetries(0)}, nil},
		{"call", []resilient.Option{hedging}, []resilient.Option{resilient.WithMaxRetries(0)}},
		{"call hedges", nil, []resilient.Option{hedging, resilient.WithMaxRetries(0)}},
		{"no retry budget", []resilient.Option{hedging, resilient.WithoutRetryBudget()}, nil},
	} {
		synctest.Test(t, func(t *testing.T) {
			h := &slowHost{delay: time.Second}
			tr := resilient.New(h, tc.opts...)
			var r resilient.Report
			ctx := resilient.WithReport(context.Background(), &r)
			if tc.call != nil {
				ctx = resilient.WithCallOptions(ctx, tc.call...)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.test/v1/posts", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			synctest.Wait()
			if n := len(h.sends()); n != 1 || r.Hedges != 0 || r.Attempts != 1 {
				t.Errorf("%s: %d requests sent, Report %+v; want 1, no hedge", tc.name, n, r)
			}
		})
	}
}

// TestCallOptionsBoundWaits: WithMaxRetryAfter and WithMaxElapsed given
// per call apply to that call only (issue 17): a Retry-After over the
// call's cap, or past its budget, returns the response at once, while the
// Transport's own calls wait for it.
func TestCallOptionsBoundWaits(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  resilient.Option
	}{
		{"WithMaxRetryAfter", resilient.WithMaxRetryAfter(5 * time.Second)},
		{"WithMaxElapsed", resilient.WithMaxElapsed(5 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits int
				base := roundTrip(func(req *http.Request) (*http.Response, error) {
					hits++
					h := http.Header{}
					status := http.StatusOK
					if hits%2 == 1 {
						status = http.StatusServiceUnavailable
						h.Set("Retry-After", "10")
					}
					return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
				})
				tr := resilient.New(base)
				call := func(ctx context.Context) (int, time.Duration) {
					t.Helper()
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.test/v1/posts", nil)
					start := time.Now()
					resp, err := tr.RoundTrip(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					return resp.StatusCode, time.Since(start)
				}
				if status, took := call(resilient.WithCallOptions(context.Background(), tc.opt)); status != 503 || took != 0 || hits != 1 {
					t.Errorf("with the call's option: %d after %v and %d attempts, want the 503 at once", status, took, hits)
				}
				hits = 0
				if status, took := call(context.Background()); status != 200 || took < 10*time.Second || hits != 2 {
					t.Errorf("without it: %d after %v and %d attempts, want the 200 after the 10s wait", status, took, hits)
				}
			})
		})
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// answers is a base RoundTripper that reads and closes each request body,
// records it, and answers with the statuses and headers of steps in
// order, repeating the last; it answers at once, without I/O, so that it
// runs inside a synctest bubble.
type answers struct {
	steps []answer

	mu     sync.Mutex
	at     []time.Time
	bodies []string
	header []http.Header
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (a *answers) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	a.mu.Lock()
	n := len(a.at)
	a.at = append(a.at, time.Now())
	a.bodies = append(a.bodies, string(body))
	a.header = append(a.header, req.Header.Clone())
	a.mu.Unlock()
	s := a.steps[min(n, len(a.steps)-1)]
	h := s.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: s.status, Header: h, Body: io.NopCloser(strings.NewReader(s.body)),
		ContentLength: int64(len(s.body)), Request: req}, nil
}

// sent returns the times the requests were sent, their bodies and their
// headers.
func (a *answers) sent() ([]time.Time, []string, []http.Header) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.at...), append([]string(nil), a.bodies...), append([]http.Header(nil), a.header...)
}

// call sends a request through tr with ctx and returns the response's
// status and body, or 0 and the error.
func call(t *testing.T, tr http.RoundTripper, ctx context.Context, method, url string, body io.Reader) (int, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil && req.ContentLength == 0 {
		if s, ok := body.(interface{ Len() int }); ok {
			req.ContentLength = int64(s.Len())
		}
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), nil
}

// streamOf hides what r is, as a body read from a socket or a pipe: no
// GetBody, no Seek.
type streamOf struct{ r io.Reader }

func (s streamOf) Read(p []byte) (int, error) { return s.r.Read(p) }

// TestDefaultsAsDocumented checks, through the public API, the defaults
// of the README's option table that no other test sets aside: a
// Transport made without options retries 5 times with WithBackoff(500ms,
// 30s), gives up at WithMaxElapsed(5m), waits up to WithMaxRetryAfter(60s),
// replays a body of up to WithMaxBufferedBody(1 MiB), reads up to
// WithMaxPeek(64 KiB) of an error body, and does not hedge.
func TestDefaultsAsDocumented(t *testing.T) {
	const url = "http://api.test/v1/posts"
	bg := context.Background()
	t.Run("WithMaxRetries 5, WithBackoff 500ms 30s", func(t *testing.T) {
		for _, retries := range []int{resilient.DefaultMaxRetries, 9} {
			synctest.Test(t, func(t *testing.T) {
				base := &answers{steps: []answer{{status: 503}}}
				ctx := bg
				if retries != resilient.DefaultMaxRetries {
					// Enough retries to reach the cap, within the
					// default budget of 10.
					ctx = resilient.WithCallOptions(bg, resilient.WithMaxRetries(retries), resilient.WithMaxElapsed(0))
				}
				if status, _, err := call(t, resilient.New(base), ctx, "GET", url, nil); status != 503 {
					t.Fatalf("%d retries: %d, %v; want the last 503", retries, status, err)
				}
				at, _, _ := base.sent()
				if len(at) != retries+1 {
					t.Fatalf("%d attempts, want %d", len(at), retries+1)
				}
				for n := range retries {
					// Before retry n: min(30s, 500ms·2^n + jitter), the
					// jitter in [0, 500ms·2^n).
					low := min(500*time.Millisecond<<n, 30*time.Second)
					high := min(time.Second<<n, 30*time.Second)
					d := at[n+1].Sub(at[n])
					switch {
					case low == high && d != high:
						t.Errorf("wait before retry %d: %v, want the cap, %v", n, d, high)
					case low < high && (d < low || d > high || d == high && high != 30*time.Second):
						t.Errorf("wait before retry %d: %v, want in [%v, %v)", n, d, low, high)
					}
				}
			})
		}
	})
	t.Run("WithMaxElapsed 5m", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var attempts int
			hang := roundTrip(func(req *http.Request) (*http.Response, error) {
				attempts++
				<-req.Context().Done()
				return nil, context.Cause(req.Context())
			})
			start := time.Now()
			_, _, err := call(t, resilient.New(hang), bg, "GET", url, nil)
			if !errors.Is(err, resilient.ErrAttemptTimeout) || time.Since(start) != 5*time.Minute || attempts != 1 {
				t.Errorf("a hanging attempt: %v after %v and %d attempts; want it cut at 5m", err, time.Since(start), attempts)
			}
		})
	})
	t.Run("WithMaxRetryAfter 60s", func(t *testing.T) {
		for _, tc := range []struct {
			retryAfter string
			retried    bool
		}{{"60", true}, {"61", false}} {
			synctest.Test(t, func(t *testing.T) {
				base := &answers{steps: []answer{{status: 503, header: http.Header{"Retry-After": {tc.retryAfter}}}, {status: 200}}}
				status, _, err := call(t, resilient.New(base), bg, "GET", url, nil)
				at, _, _ := base.sent()
				switch {
				case tc.retried && (status != 200 || len(at) != 2 || at[1].Sub(at[0]) < 60*time.Second || at[1].Sub(at[0]) > 61*time.Second):
					t.Errorf("Retry-After: %s: %d, %v after %d attempts; want the 200 after a wait of 60s (and its spread)", tc.retryAfter, status, err, len(at))
				case !tc.retried && (status != 503 || len(at) != 1):
					t.Errorf("Retry-After: %s: %d, %v after %d attempts; want the 503 at once", tc.retryAfter, status, err, len(at))
				}
			})
		}
	})
	t.Run("WithMaxBufferedBody 1 MiB", func(t *testing.T) {
		for _, tc := range []struct {
			size    int
			retried bool
		}{{1 << 20, true}, {1<<20 + 1, false}} {
			base := &answers{steps: []answer{{status: 503}, {status: 200}}}
			payload := strings.Repeat("x", tc.size)
			req, _ := http.NewRequest("PUT", url, streamOf{strings.NewReader(payload)})
			req.ContentLength = int64(tc.size)
			resp, err := resilient.New(base, resilient.WithBackoff(0, 0)).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			_, bodies, _ := base.sent()
			switch {
			case tc.retried && (resp.StatusCode != 200 || len(bodies) != 2 || bodies[1] != payload):
				t.Errorf("a body of %d bytes without GetBody: %d after %d attempts; want it replayed whole after the 503", tc.size, resp.StatusCode, len(bodies))
			case !tc.retried && (resp.StatusCode != 503 || len(bodies) != 1):
				t.Errorf("a body of %d bytes without GetBody: %d after %d attempts; want the 503, not retried", tc.size, resp.StatusCode, len(bodies))
			}
		}
	})
	t.Run("WithMaxPeek 64 KiB", func(t *testing.T) {
		// A 400 is Permanent by its status, Transient by this code: the
		// code is found only within the first 64 KiB.
		const head, tail = `{"error":{"message":"`, `","code":"service_unavailable"}}`
		for _, tc := range []struct {
			size    int
			retried bool
		}{{64 << 10, true}, {64<<10 + 1, false}} {
			envelope := head + strings.Repeat("m", tc.size-len(head)-len(tail)) + tail
			base := &answers{steps: []answer{{status: 400, header: http.Header{"Content-Type": {"application/json"}}, body: envelope}, {status: 200}}}
			status, body, err := call(t, resilient.New(base, resilient.WithBackoff(0, 0)), bg, "GET", url, nil)
			at, _, _ := base.sent()
			switch {
			case tc.retried && (status != 200 || len(at) != 2):
				t.Errorf("an envelope of %d bytes: %d, %v after %d attempts; want its code read, and a retry", tc.size, status, err, len(at))
			case !tc.retried && (status != 400 || body != envelope || len(at) != 1):
				t.Errorf("an envelope of %d bytes: %d, %v after %d attempts; want the 400, whole, at once", tc.size, status, err, len(at))
			}
		}
	})
	t.Run("no hedging", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := &slowHost{delay: time.Minute}
			if status, _, err := call(t, resilient.New(h), bg, "GET", url, nil); status != 200 {
				t.Fatal(err)
			}
			synctest.Wait()
			if n := len(h.sends()); n != 1 {
				t.Errorf("a slow GET: %d requests sent, want 1", n)
			}
		})
	})
}

// TestCallOptionsApplyPerCall: WithCallOptions accepts every option the
// README lists as per call, and those that no other test gives per call
// apply to the call made with it, not to the Transport's other calls.
func TestCallOptionsApplyPerCall(t *testing.T) {
	for _, o := range []struct {
		name string
		opt  resilient.Option
	}{
		{"WithMaxRetries", resilient.WithMaxRetries(1)},
		{"WithBackoff", resilient.WithBackoff(time.Second, time.Second)},
		{"WithBackOff", resilient.WithBackOff(func() backoff.BackOff { return &backoff.ZeroBackOff{} })},
		{"WithMaxElapsed", resilient.WithMaxElapsed(time.Minute)},
		{"WithMaxRetryAfter", resilient.WithMaxRetryAfter(time.Second)},
		{"WithAttemptTimeout", resilient.WithAttemptTimeout(time.Second)},
		{"WithClassifier", resilient.WithClassifier(nil)},
		{"WithHedging", resilient.WithHedging(resilient.Hedging{})},
		{"WithoutHedging", resilient.WithoutHedging()},
		{"WithoutIdempotencyKeys", resilient.WithoutIdempotencyKeys()},
		{"WithIdempotencyMethods", resilient.WithIdempotencyMethods("PUT")},
		{"WithMaxBufferedBody", resilient.WithMaxBufferedBody(1)},
		{"WithBufferedResponse", resilient.WithBufferedResponse(1 << 10)},
		{"WithAttemptHeader", resilient.WithAttemptHeader("X-Attempt")},
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("WithCallOptions(%s) panicked: %v", o.name, r)
				}
			}()
			resilient.WithCallOptions(context.Background(), o.opt)
		}()
	}

	const url = "http://api.test/v1/posts"
	for _, tc := range []struct {
		name          string
		opt           resilient.Option
		run           func(t *testing.T, ctx context.Context) string
		without, with string
	}{
		{"WithBackOff", resilient.WithBackOff(func() backoff.BackOff { return &backoff.StopBackOff{} }),
			func(t *testing.T, ctx context.Context) string {
				base := &answers{steps: []answer{{status: 503}, {status: 200}}}
				status, _, err := call(t, resilient.New(base, resilient.WithBackoff(0, 0)), ctx, "GET", url, nil)
				at, _, _ := base.sent()
				return fmt.Sprintf("%d %v after %d", status, err, len(at))
			}, "200 <nil> after 2", "503 <nil> after 1"},
		{"WithIdempotencyMethods", resilient.WithIdempotencyMethods(http.MethodPut),
			func(t *testing.T, ctx context.Context) string {
				base := &answers{steps: []answer{{status: 200}}}
				call(t, resilient.New(base), ctx, "PUT", url, strings.NewReader("x"))
				_, _, headers := base.sent()
				// A drawn key goes to a host not known to honor keys under
				// its lower-case entry, hidden from net/http's own resend.
				//lint:ignore SA1008 the Transport's lower-case entry, which net/http sends as it is spelled.
				return fmt.Sprintf("key %v", headers[0].Get("Idempotency-Key") != "" || len(headers[0]["idempotency-key"]) > 0)
			}, "key false", "key true"},
		{"WithMaxBufferedBody", resilient.WithMaxBufferedBody(4),
			func(t *testing.T, ctx context.Context) string {
				base := &answers{steps: []answer{{status: 503}, {status: 200}}}
				status, _, err := call(t, resilient.New(base, resilient.WithBackoff(0, 0)), ctx, "PUT", url, streamOf{strings.NewReader("12345678")})
				at, _, _ := base.sent()
				return fmt.Sprintf("%d %v after %d", status, err, len(at))
			}, "200 <nil> after 2", "503 <nil> after 1"},
		{"WithoutHedging", resilient.WithoutHedging(),
			func(t *testing.T, ctx context.Context) string {
				var n int
				synctest.Test(t, func(t *testing.T) {
					h := &slowHost{delay: time.Second}
					tr := resilient.New(h, resilient.WithHedging(resilient.Hedging{Delay: 100 * time.Millisecond}))
					call(t, tr, ctx, "GET", url, nil)
					synctest.Wait()
					n = len(h.sends())
				})
				return fmt.Sprintf("%d requests", n)
			}, "2 requests", "1 requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.run(t, context.Background()); got != tc.without {
				t.Errorf("the Transport's own call: %s, want %s", got, tc.without)
			}
			if got := tc.run(t, resilient.WithCallOptions(context.Background(), tc.opt)); got != tc.with {
				t.Errorf("a call WithCallOptions(%s): %s, want %s", tc.name, got, tc.with)
			}
		})
	}
}

// slowUpload is a request body of n chunks of 1 KiB, each read a second
// after the one before, as a large upload over a slow link.
type slowUpload struct{ n int }

func (b *slowUpload) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(time.Second)
	b.n--
	return copy(p, strings.Repeat("u", min(len(p), 1<<10))), nil
}

// TestMaxElapsedBoundsUpload: the call's budget bounds the sending of its
// request body too (README, WithMaxElapsed): an upload that takes 10s is
// cut when a budget of 3s ends, and goes through with a larger budget for
// that call (WithCallOptions). The response's body is the caller's, which the budget does
// not bound (TestHedgedBodyOutlivesDeadline and others).
func TestMaxElapsedBoundsUpload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var received atomic.Int64
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			received.Store(n)
		})))
		defer srv.Close()
		defer srv.Transport().CloseIdleConnections()
		client := &http.Client{Transport: resilient.New(srv.Transport(), resilient.WithMaxElapsed(3*time.Second))}
		upload := func(ctx context.Context) (int, time.Duration, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL+"/v1/uploads/1", &slowUpload{n: 10})
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				return 0, time.Since(start), err
			}
			resp.Body.Close()
			return resp.StatusCode, time.Since(start), nil
		}
		// net/http notices the end of the budget once the body's Read in
		// progress returns, as it cuts a plain client's upload at its
		// context's deadline.
		if status, took, err := upload(context.Background()); !errors.Is(err, resilient.ErrAttemptTimeout) || took < 3*time.Second || took > 4*time.Second {
			t.Errorf("a 10s upload under a 3s budget: %d, %v after %v; want it cut at 3s, once the chunk being read is", status, err, took)
		}
		ctx := resilient.WithCallOptions(context.Background(), resilient.WithMaxElapsed(time.Hour))
		if status, took, err := upload(ctx); status != 200 || took != 10*time.Second || received.Load() != 10<<10 {
			t.Errorf("the same upload with a budget of an hour: %d, %v after %v, %d bytes received; want 200 after 10s, all of it", status, err, took, received.Load())
		}
	})
}
