package resilient

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// hitBase is an in-memory base that counts the requests it receives, by
// host, and answers each with answer(host, n, req), n counting from 1 per
// host. An answer of status 0 with a nil error declines the request
// (http.ErrSkipAltProtocol), which sends nothing and is no hit.
// Requests the base hangs on are hits from their start.
type hitBase struct {
	answer func(host string, n int, req *http.Request) (int, http.Header, error)

	mu   sync.Mutex
	hits map[string]int
}

func (b *hitBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	b.mu.Lock()
	if b.hits == nil {
		b.hits = map[string]int{}
	}
	b.hits[req.URL.Host]++
	n := b.hits[req.URL.Host]
	b.mu.Unlock()
	status, h, err := b.answer(req.URL.Host, n, req)
	if status == 0 && err == nil {
		b.mu.Lock()
		b.hits[req.URL.Host]--
		b.mu.Unlock()
		return nil, http.ErrSkipAltProtocol
	}
	if err != nil {
		return nil, err
	}
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: status, Status: strconv.Itoa(status) + " " + http.StatusText(status),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, ContentLength: 2,
		Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

func (b *hitBase) total() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, v := range b.hits {
		n += v
	}
	return n
}

// recordHandler is a slog.Handler that collects the records of attempts
// (not those of breaker changes).
type recordHandler struct{ c *collector[slog.Record] }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h recordHandler) WithGroup(string) slog.Handler            { return h }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	if !strings.Contains(r.Message, "breaker") {
		h.c.add(r.Clone())
	}
	return nil
}

// TestReportAgreesWithServerHits checks, for combinations of retries,
// hedges, redirects and local refusals, that a call's Report counts the
// requests the servers received (and the attempts refused locally, as
// documented), that the observer got one record per attempt, numbered in
// order, and that the Report's outcome, status and stop reason are those of
// what the call returned.
func TestReportAgreesWithServerHits(t *testing.T) {
	h := func(kv ...string) http.Header {
		hd := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			hd.Set(kv[i], kv[i+1])
		}
		return hd
	}
	lost := errors.New("read tcp: connection reset by peer")
	type want struct {
		attempts, hedges, redirects int
		refused                     int // attempts counted though nothing was sent: refused locally, declined by the base
		outcome                     Outcome
		stop                        StopReason
		status                      int
		errIs                       error
		clientErr                   bool // http.Client's own error (too many redirects)
	}
	cases := []struct {
		name     string
		opts     []Option
		callOps  []Option
		client   bool // through http.Client, which follows redirects
		cancel   time.Duration
		deadline time.Duration // of the call's context
		optsLast bool          // WithCallOptions after WithReport
		timeout  time.Duration // http.Client's
		method   string
		answer   func(host string, n int, req *http.Request) (int, http.Header, error)
		want     want
	}{
		{name: "503 twice then 200", answer: func(_ string, n int, _ *http.Request) (int, http.Header, error) {
			if n <= 2 {
				return 503, nil, nil
			}
			return 200, nil, nil
		}, want: want{attempts: 3, outcome: OutcomeSuccess, status: 200}},
		{name: "429 retry-after then 200", answer: func(_ string, n int, _ *http.Request) (int, http.Header, error) {
			if n == 1 {
				return 429, h("Retry-After", "2"), nil
			}
			return 200, nil, nil
		}, want: want{attempts: 2, outcome: OutcomeSuccess, status: 200}},
		{name: "lost connection then 200", answer: func(_ string, n int, _ *http.Request) (int, http.Header, error) {
			if n == 1 {
				return 0, nil, lost
			}
			return 200, nil, nil
		}, want: want{attempts: 2, outcome: OutcomeSuccess, status: 200}},
		{name: "503 always, max attempts", opts: []Option{WithMaxRetries(2)}, answer: func(string, int, *http.Request) (int, http.Header, error) {
			return 503, nil, nil
		}, want: want{attempts: 3, outcome: OutcomeTransient, stop: StopMaxAttempts, status: 503}},
		{name: "per-call max retries", callOps: []Option{WithMaxRetries(1)}, answer: func(string, int, *http.Request) (int, http.Header, error) {
			return 503, nil, nil
		}, want: want{attempts: 2, outcome: OutcomeTransient, stop: StopMaxAttempts, status: 503}},
		{name: "hedged copy answers", opts: []Option{WithHedging(Hedging{Delay: 100 * time.Millisecond})}, answer: func(_ string, n int, req *http.Request) (int, http.Header, error) {
			if n == 1 {
				<-req.Context().Done()
				return 0, nil, req.Context().Err()
			}
			return 200, nil, nil
		}, want: want{attempts: 2, hedges: 1, outcome: OutcomeSuccess, status: 200}},
		{name: "307 same host", client: true, answer: func(_ string, n int, req *http.Request) (int, http.Header, error) {
			if req.URL.Path == "/a" {
				return 307, h("Location", "/b"), nil
			}
			if n == 2 {
				return 503, nil, nil
			}
			return 200, nil, nil
		}, want: want{attempts: 3, redirects: 1, outcome: OutcomeSuccess, status: 200}},
		{name: "302 other host", client: true, answer: func(host string, n int, req *http.Request) (int, http.Header, error) {
			if host == "a.test" {
				if n == 1 {
					return 503, nil, nil
				}
				return 302, h("Location", "http://b.test/b"), nil
			}
			return 200, nil, nil
		}, want: want{attempts: 3, redirects: 1, outcome: OutcomeSuccess, status: 200}},
		{name: "redirect loop", client: true, answer: func(string, int, *http.Request) (int, http.Header, error) {
			return 302, h("Location", "/a"), nil
		}, want: want{attempts: 10, redirects: 9, outcome: OutcomeSuccess, status: 302, clientErr: true}},
		{name: "302 then hop canceled mid-wait", client: true, cancel: 3 * time.Second, answer: func(host string, n int, req *http.Request) (int, http.Header, error) {
			if host == "a.test" {
				return 302, h("Location", "http://b.test/b"), nil
			}
			return 503, h("Retry-After", "10"), nil
		}, want: want{attempts: 2, redirects: 1, outcome: OutcomeCanceled, stop: StopCanceled, errIs: context.Canceled}},
		{name: "302 then hop budget refused", client: true, opts: []Option{WithRetryBudget(RetryBudget{Ratio: 0.000001, Burst: 1})}, answer: func(host string, n int, req *http.Request) (int, http.Header, error) {
			if host == "a.test" {
				if n == 1 {
					return 503, nil, nil
				}
				return 302, h("Location", "http://b.test/b"), nil
			}
			return 503, nil, nil
		}, want: want{attempts: 4, redirects: 1, outcome: OutcomeTransient, stop: StopRetryBudget, status: 503}}, // a budget per host
		{name: "hedged attempt retried", opts: []Option{WithHedging(Hedging{Delay: 100 * time.Millisecond}), WithBackoff(time.Second, time.Second)}, answer: func(_ string, n int, req *http.Request) (int, http.Header, error) {
			switch n {
			case 1:
				select {
				case <-time.After(time.Second):
					return 503, nil, nil
				case <-req.Context().Done():
					return 0, nil, context.Cause(req.Context())
				}
			case 2:
				return 503, nil, nil
			}
			return 200, nil, nil
		}, want: want{attempts: 3, hedges: 1, outcome: OutcomeSuccess, status: 200}},
		{name: "per-call hedging", callOps: []Option{WithHedging(Hedging{Delay: 100 * time.Millisecond, MaxHedges: 2})}, answer: func(_ string, n int, req *http.Request) (int, http.Header, error) {
			if n < 3 {
				<-req.Context().Done()
				return 0, nil, context.Cause(req.Context())
			}
			return 200, nil, nil
		}, want: want{attempts: 3, hedges: 2, outcome: OutcomeSuccess, status: 200}},
		{name: "retry-after past the deadline", deadline: 3 * time.Second, answer: func(string, int, *http.Request) (int, http.Header, error) {
			return 503, h("Retry-After", "10"), nil
		}, want: want{attempts: 1, outcome: OutcomeTransient, stop: StopDeadline, status: 503}},
		{name: "client timeout during an attempt", client: true, timeout: 3 * time.Second, answer: func(_ string, n int, req *http.Request) (int, http.Header, error) {
			if n == 1 {
				return 503, nil, nil
			}
			<-req.Context().Done()
			return 0, nil, context.Cause(req.Context())
		}, want: want{attempts: 2, outcome: OutcomeCanceled, stop: StopCanceled, errIs: context.DeadlineExceeded}},
		{name: "call options after the report", callOps: []Option{WithMaxRetries(1)}, optsLast: true, answer: func(string, int, *http.Request) (int, http.Header, error) {
			return 503, nil, nil
		}, want: want{attempts: 2, outcome: OutcomeTransient, stop: StopMaxAttempts, status: 503}},
		{name: "retry budget refuses", opts: []Option{WithRetryBudget(RetryBudget{Ratio: 0.000001, Burst: 1})}, answer: func(string, int, *http.Request) (int, http.Header, error) {
			return 503, nil, nil
		}, want: want{attempts: 2, outcome: OutcomeTransient, stop: StopRetryBudget, status: 503}},
		{name: "breaker refuses", opts: []Option{WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Minute})}, answer: func(string, int, *http.Request) (int, http.Header, error) {
			return 503, nil, nil
		}, want: want{attempts: 2, refused: 1, outcome: OutcomeCircuitOpen, status: 503}},
		{name: "retry declined by base", answer: func(_ string, n int, _ *http.Request) (int, http.Header, error) {
			if n == 1 {
				return 503, nil, nil
			}
			return 0, nil, nil
		}, want: want{attempts: 2, refused: 1, outcome: OutcomePermanent, status: 503}}, // counted as a refused retry is (see Report)
		{name: "hedge refused by in-flight limit", opts: []Option{WithMaxInFlight(1), WithHedging(Hedging{Delay: 100 * time.Millisecond})}, answer: func(_ string, n int, req *http.Request) (int, http.Header, error) {
			time.Sleep(time.Second)
			return 200, nil, nil
		}, want: want{attempts: 1, outcome: OutcomeSuccess, status: 200}},
		{name: "hedged 307 then retried hop", client: true, opts: []Option{WithHedging(Hedging{Delay: 100 * time.Millisecond})}, answer: func(_ string, n int, req *http.Request) (int, http.Header, error) {
			if req.URL.Path == "/a" {
				if n == 1 {
					time.Sleep(time.Second)
				}
				return 307, h("Location", "/b"), nil
			}
			if n == 3 {
				return 429, h("Retry-After", "1"), nil
			}
			return 200, nil, nil
		}, want: want{attempts: 4, hedges: 1, redirects: 1, outcome: OutcomeSuccess, status: 200}},
		{name: "rate limiter paces", opts: []Option{WithRateLimit(1, 1)}, answer: func(_ string, n int, _ *http.Request) (int, http.Header, error) {
			if n <= 2 {
				return 503, nil, nil
			}
			return 200, nil, nil
		}, want: want{attempts: 3, outcome: OutcomeSuccess, status: 200}},
		{name: "429 pause then cut by deadline", opts: []Option{WithMaxElapsed(5 * time.Second)}, answer: func(_ string, n int, _ *http.Request) (int, http.Header, error) {
			return 429, h("Retry-After", "3"), nil
		}, want: want{attempts: 2, outcome: OutcomeThrottled, stop: StopDeadline, status: 429}},
		{name: "unsafe write", method: http.MethodPost, answer: func(_ string, n int, _ *http.Request) (int, http.Header, error) {
			return 0, nil, lost
		}, want: want{attempts: 1, outcome: OutcomeTransient, stop: StopUnsafeWrite, errIs: lost}},
		{name: "canceled mid-wait", cancel: 3 * time.Second, answer: func(string, int, *http.Request) (int, http.Header, error) {
			return 503, h("Retry-After", "10"), nil
		}, want: want{attempts: 1, outcome: OutcomeCanceled, stop: StopCanceled, errIs: context.Canceled}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &hitBase{answer: tc.answer}
				var obs []Attempt
				var mu sync.Mutex
				var logged collector[slog.Record]
				opts := append([]Option{WithObserver(func(a Attempt) {
					mu.Lock()
					obs = append(obs, a)
					mu.Unlock()
				}), WithLogger(slog.New(recordHandler{&logged}))}, tc.opts...)
				tr := New(base, opts...)
				ctx := context.Background()
				if tc.cancel > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
					time.AfterFunc(tc.cancel, cancel)
				}
				if tc.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				if tc.callOps != nil && !tc.optsLast {
					ctx = WithCallOptions(ctx, tc.callOps...)
				}
				var rep Report
				ctx = WithReport(ctx, &rep)
				if tc.callOps != nil && tc.optsLast {
					ctx = WithCallOptions(ctx, tc.callOps...)
				}
				method := tc.method
				if method == "" {
					method = http.MethodGet
				}
				req := newRequest(t, ctx, method, "http://a.test/a", nil)
				var resp *http.Response
				var err error
				if tc.client {
					resp, err = (&http.Client{Transport: tr, Timeout: tc.timeout}).Do(req)
				} else {
					resp, err = tr.RoundTrip(req)
				}
				status := 0
				if resp != nil {
					status = resp.StatusCode
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				synctest.Wait()
				w := tc.want
				hits := base.total()
				if got := hits + w.refused; rep.Attempts != got || rep.Attempts != w.attempts {
					t.Errorf("Report.Attempts = %d; server hits %d + refused %d = %d; want %d", rep.Attempts, hits, w.refused, got, w.attempts)
				}
				if rep.Hedges != w.hedges || rep.Redirects != w.redirects {
					t.Errorf("Report: %d hedges, %d redirects; want %d, %d", rep.Hedges, rep.Redirects, w.hedges, w.redirects)
				}
				if rep.Outcome != w.outcome || rep.StopReason != w.stop || rep.StatusCode != w.status || rep.StatusCode != status {
					t.Errorf("Report: outcome %q stop %q status %d (returned %d, err %v); want %q %q %d", rep.Outcome, rep.StopReason, rep.StatusCode, status, err, w.outcome, w.stop, w.status)
				}
				if w.errIs != nil && !errors.Is(err, w.errIs) || w.errIs == nil && (err != nil) != w.clientErr {
					t.Errorf("err = %v, want %v", err, w.errIs)
				}
				mu.Lock()
				defer mu.Unlock()
				var hedges, number int
				for i, a := range obs {
					if i > 0 && a.Number != 1 && a.Number != number+1 {
						t.Errorf("record %d numbered %d after %d", i, a.Number, number)
					}
					number = a.Number
					hedges += a.Hedges
				}
				if testing.Verbose() {
					for _, a := range obs {
						t.Logf("record %d: %s %d stop %q retry %v hedges %d err %v", a.Number, a.Outcome, a.StatusCode, a.StopReason, a.Retry, a.Hedges, a.Err)
					}
				}
				if len(obs)+hedges != rep.Attempts {
					t.Errorf("observer: %d records, %d hedges; Report.Attempts %d: %+v", len(obs), hedges, rep.Attempts, obs)
				}
				// One log record per attempt, and one more for a call
				// canceled while it waited to retry.
				wantRecs := len(obs)
				if len(obs) > 0 && obs[len(obs)-1].Retry {
					wantRecs++
				}
				if recs := logged.all(); len(recs) != wantRecs {
					t.Errorf("%d log records, want %d", len(recs), wantRecs)
				}
				if len(obs) > 0 && !tc.client {
					last := obs[len(obs)-1]
					if tc.cancel == 0 && (last.Outcome != rep.Outcome || last.StopReason != rep.StopReason) {
						t.Errorf("last record: %q %q; Report %q %q", last.Outcome, last.StopReason, rep.Outcome, rep.StopReason)
					}
				}
			})
		})
	}
}

// TestReportAgreesWithServerHitsPrimed is TestReportAgreesWithServerHits
// for calls that find their Transport's state set by calls before them
// (an open breaker, a spent rate limit, a full host): the call checked is
// the last, and what the servers got is counted from its start.
func TestReportAgreesWithServerHitsPrimed(t *testing.T) {
	cases := []struct {
		name     string
		opts     []Option
		prime    func(t *testing.T, tr *Transport) // runs calls before the one checked
		url      string
		client   bool
		deadline time.Duration // of the call checked; 0 for none
		cancel   time.Duration // the call checked is canceled after it; 0 for never
		attempts int
		hits     int
		redirs   int
		outcome  Outcome
		stop     StopReason
		errIs    error
	}{
		{name: "breaker open at once", opts: []Option{WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Minute}), WithMaxRetries(0)},
			prime: func(t *testing.T, tr *Transport) { getClosed(t, tr, "http://b.test/fail") },
			url:   "http://b.test/ok", attempts: 1, outcome: OutcomeCircuitOpen, errIs: ErrCircuitOpen},
		{name: "redirect to an open breaker", client: true, opts: []Option{WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Minute}), WithMaxRetries(0)},
			prime: func(t *testing.T, tr *Transport) { getClosed(t, tr, "http://b.test/fail") },
			url:   "http://a.test/to-b", attempts: 2, hits: 1, redirs: 1, outcome: OutcomeCircuitOpen, errIs: ErrCircuitOpen},
		{name: "canceled waiting for the rate limiter", opts: []Option{WithRateLimit(0.1, 1)},
			prime: func(t *testing.T, tr *Transport) { getClosed(t, tr, "http://b.test/ok") },
			url:   "http://b.test/ok", cancel: 2 * time.Second, attempts: 1, outcome: OutcomeCanceled, stop: StopCanceled, errIs: context.Canceled},
		{name: "canceled during an attempt", prime: func(*testing.T, *Transport) {},
			url: "http://b.test/hang", cancel: 2 * time.Second, attempts: 1, hits: 1, outcome: OutcomeCanceled, stop: StopCanceled, errIs: context.Canceled},
		{name: "rate limited at its deadline", opts: []Option{WithRateLimit(0.1, 1)},
			prime: func(t *testing.T, tr *Transport) { getClosed(t, tr, "http://b.test/ok") },
			url:   "http://b.test/ok", deadline: 2 * time.Second, attempts: 1, outcome: OutcomeRateLimited, errIs: ErrRateLimited},
		{name: "host full", opts: []Option{WithMaxInFlight(1)},
			prime: func(t *testing.T, tr *Transport) {
				go getClosed(t, tr, "http://b.test/hang")
				synctest.Wait()
			},
			url: "http://b.test/ok", deadline: 2 * time.Second, attempts: 1, outcome: OutcomeTooManyInFlight, errIs: ErrTooManyInFlight},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				defer synctest.Wait()
				defer close(release)
				base := &hitBase{answer: func(host string, n int, req *http.Request) (int, http.Header, error) {
					switch req.URL.Path {
					case "/fail":
						return 503, nil, nil
					case "/hang":
						select {
						case <-release:
						case <-req.Context().Done():
							return 0, nil, context.Cause(req.Context())
						}
					case "/to-b":
						return 302, http.Header{"Location": {"http://b.test/ok"}}, nil
					}
					return 200, nil, nil
				}}
				var obs collector[Attempt]
				var checked atomic.Bool
				opts := append([]Option{WithObserver(func(a Attempt) {
					if checked.Load() {
						obs.add(a)
					}
				})}, tc.opts...)
				tr := New(base, opts...)
				tc.prime(t, tr)
				before := base.total()
				checked.Store(true)
				ctx := context.Background()
				if tc.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				if tc.cancel > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
					time.AfterFunc(tc.cancel, cancel)
				}
				var rep Report
				req := newRequest(t, WithReport(ctx, &rep), http.MethodGet, tc.url, nil)
				var resp *http.Response
				var err error
				if tc.client {
					resp, err = (&http.Client{Transport: tr}).Do(req)
				} else {
					resp, err = tr.RoundTrip(req)
				}
				if resp != nil {
					resp.Body.Close()
				}
				if !errors.Is(err, tc.errIs) {
					t.Errorf("err = %v, want %v", err, tc.errIs)
				}
				hits := base.total() - before
				if rep.Attempts != tc.attempts || hits != tc.hits || rep.Redirects != tc.redirs {
					t.Errorf("Report: %d attempts, %d redirects; server hits %d; want %d, %d, %d", rep.Attempts, rep.Redirects, hits, tc.attempts, tc.redirs, tc.hits)
				}
				if rep.Outcome != tc.outcome || rep.StopReason != tc.stop || rep.StatusCode != 0 {
					t.Errorf("Report: outcome %q stop %q status %d; want %q %q 0", rep.Outcome, rep.StopReason, rep.StatusCode, tc.outcome, tc.stop)
				}
				recs := obs.all()
				for i, a := range recs {
					t.Logf("record %d: #%d %s %d stop %q retry %v err %v", i, a.Number, a.Outcome, a.StatusCode, a.StopReason, a.Retry, a.Err)
				}
				if len(recs) != rep.Attempts {
					t.Errorf("observer: %d records; Report.Attempts %d", len(recs), rep.Attempts)
				}
				if len(recs) > 0 && recs[len(recs)-1].Outcome != rep.Outcome {
					t.Errorf("last record %q; Report %q", recs[len(recs)-1].Outcome, rep.Outcome)
				}
				tr.CloseIdleConnections()
			})
		})
	}
}
