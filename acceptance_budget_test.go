package resilient_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	neturl "net/url"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// TestRetryBudgetRefusalOnRecord: issue 14's refused retry, as the
// observer, the log and the Report tell it. Against a host that fails
// every attempt, with the default budget (10 retries) and no breaker, the
// first two calls retry 5 times each and the third is refused its first
// retry: it returns its 503 (its body intact), and its attempt's record,
// at Error, says stop_reason retry_budget with no delay, as Attempt and
// Report do. Without a response, the call's error wraps
// ErrRetryBudgetExhausted and the attempt's cause.
func TestRetryBudgetRefusalOnRecord(t *testing.T) {
	const url = "http://api.test/v1/posts"
	synctest.Test(t, func(t *testing.T) {
		base := &answers{steps: []answer{{status: 503, body: "down"}}}
		var buf bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		var last resilient.Attempt
		tr := resilient.New(base, resilient.WithoutBreaker(), resilient.WithBackoff(0, 0), resilient.WithLogger(logger),
			resilient.WithObserver(func(a resilient.Attempt) { last = a }))
		for i := range 2 {
			if status, _, _ := call(t, tr, context.Background(), "GET", url, nil); status != 503 {
				t.Fatalf("call %d: %d, want 503", i+1, status)
			}
		}
		if at, _, _ := base.sent(); len(at) != 12 {
			t.Fatalf("%d attempts for the first two calls, want 12 (10 retries from a new host's full budget)", len(at))
		}
		buf.Reset()
		var r resilient.Report
		status, body, err := call(t, tr, resilient.WithReport(context.Background(), &r), "GET", url, nil)
		if status != 503 || body != "down" || err != nil {
			t.Errorf("refused call: %d %q, %v; want the 503 and its body", status, body, err)
		}
		if at, _, _ := base.sent(); len(at) != 13 {
			t.Errorf("%d attempts in all, want 13: the third call's retry refused", len(at))
		}
		want := resilient.Report{Attempts: 1, Outcome: resilient.OutcomeTransient, StatusCode: 503, StopReason: resilient.StopRetryBudget}
		if r != want {
			t.Errorf("Report %+v, want %+v", r, want)
		}
		if last.StopReason != resilient.StopRetryBudget || last.Retry || last.Delay != 0 || last.StatusCode != 503 {
			t.Errorf("Attempt: stop %q, retry %v, delay %v, status %d; want %q, no retry, no delay, 503", last.StopReason, last.Retry, last.Delay, last.StatusCode, resilient.StopRetryBudget)
		}
		recs := jsonRecords(t, &buf)
		if len(recs) != 1 {
			t.Fatalf("%d records for the refused call, want 1", len(recs))
		}
		rec := recs[0]
		if rec["level"] != "ERROR" || rec["stop_reason"] != "retry_budget" || rec["outcome"] != "transient" || rec["status"] != float64(503) {
			t.Errorf("record %v; want ERROR, stop_reason retry_budget, outcome transient, status 503", rec)
		}
		if _, ok := rec["delay"]; ok {
			t.Errorf("record has a delay, but no retry follows: %v", rec)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		var attempts int
		base := roundTrip(func(req *http.Request) (*http.Response, error) {
			attempts++
			return nil, io.ErrUnexpectedEOF
		})
		tr := resilient.New(base, resilient.WithoutBreaker(), resilient.WithBackoff(0, 0), resilient.WithRetryBudget(resilient.RetryBudget{Burst: 1}))
		if _, _, err := call(t, tr, context.Background(), "GET", url, nil); err == nil || attempts != 2 {
			t.Fatalf("first call: %v after %d attempts; want an error after 2 (one retry paid)", err, attempts)
		}
		_, _, err := call(t, tr, context.Background(), "GET", url, nil)
		var e *resilient.Error
		if !errors.Is(err, resilient.ErrRetryBudgetExhausted) || !errors.Is(err, io.ErrUnexpectedEOF) || !errors.As(err, &e) || e.Attempts != 1 || attempts != 3 {
			t.Errorf("second call: %v after %d attempts in all; want a *resilient.Error of 1 attempt wrapping ErrRetryBudgetExhausted and io.ErrUnexpectedEOF", err, attempts)
		}
	})
}

// TestRetryBudgetDefaultsAsDocumented: the README's default budget, "each
// answer deposits 0.2 retry, at most 10 held (a new host starts full); a
// blind retry costs 1, one the server asked for (429, 503 + Retry-After)
// 0.1", through the public API, with the breaker off: a failing host's
// first two calls retry 5 times each and the third not at all (the 503s
// deposit nothing); 5 successes then buy one retry, and so do 5 answers
// 404; a new host starts with 10; one success buys a 429's call two
// retries, and a 503's with a Retry-After as many.
func TestRetryBudgetDefaultsAsDocumented(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		status, header, sent := 503, http.Header{}, 0
		tr := resilient.New(roundTrip(func(req *http.Request) (*http.Response, error) {
			sent++
			return &http.Response{StatusCode: status, Header: header.Clone(), Body: http.NoBody, Request: req}, nil
		}), resilient.WithoutBreaker(), resilient.WithBackoff(0, 0))
		attempts := func(url string) int {
			t.Helper()
			sent = 0
			call(t, tr, context.Background(), "GET", url, nil)
			return sent
		}
		const url = "http://api.test/v1/posts"
		for i, want := range []int{6, 6, 1} {
			if got := attempts(url); got != want {
				t.Fatalf("failing call %d: %d attempts, want %d (Burst 10, a blind retry 1)", i+1, got, want)
			}
		}
		status = 200
		for range 5 {
			attempts(url)
		}
		status = 503
		if got := attempts(url); got != 2 {
			t.Errorf("after 5 successes, a failing call: %d attempts, want 2 (5 × 0.2 = one retry)", got)
		}
		status = 404
		for range 5 {
			attempts(url)
		}
		status = 503
		if got := attempts(url); got != 2 {
			t.Errorf("after 5 answers 404, a failing call: %d attempts, want 2 (an answer not retried deposits as a success does)", got)
		}
		if got := attempts("http://other.test/v1/posts"); got != 6 {
			t.Errorf("a new host's failing call: %d attempts, want 6 (it starts full)", got)
		}
		status = 200
		attempts(url)
		status, header = 429, http.Header{"Retry-After": {"1"}}
		if got := attempts(url); got != 3 {
			t.Errorf("after 1 success, a call answered 429: %d attempts, want 3 (0.2 buys two retries at 0.1)", got)
		}
		status, header = 200, http.Header{}
		attempts(url)
		status, header = 503, http.Header{"Retry-After": {"1"}}
		if got := attempts(url); got != 3 {
			t.Errorf("after 1 success, a call answered 503 with Retry-After: %d attempts, want 3 (0.2 buys two retries at 0.1)", got)
		}
	})
}

// TestRetryBudgetThroughHTTPClient: issue 14's refused retry as a caller of
// an http.Client sees it, the client wrapping the Transport's error in a
// *url.Error. With a budget of one retry and no breaker:
//   - a host that answers 503 throughout: the first call retries once and
//     returns its last 503 with a nil error and its body readable; the next
//     call's retry is refused: it returns its first 503, its Report saying
//     one attempt, the 503 and StopRetryBudget;
//   - a host whose every attempt times out: the call's error, a *url.Error,
//     still matches ErrRetryBudgetExhausted and ErrAttemptTimeout with
//     errors.Is, reaches the *resilient.Error with errors.As, and reports
//     Timeout() (os.IsTimeout too), as a timeout through http.Transport
//     does; its Report says StopRetryBudget and no status.
func TestRetryBudgetThroughHTTPClient(t *testing.T) {
	const url = "http://api.test/v1/posts"
	oneRetry := resilient.WithRetryBudget(resilient.RetryBudget{Burst: 1})
	synctest.Test(t, func(t *testing.T) {
		base := &answers{steps: []answer{{status: 503, body: "down"}}}
		client := &http.Client{Transport: resilient.New(base, resilient.WithoutBreaker(), resilient.WithBackoff(0, 0), oneRetry)}
		for i, want := range []resilient.Report{
			{Attempts: 2, Outcome: resilient.OutcomeTransient, StatusCode: 503, StopReason: resilient.StopRetryBudget},
			{Attempts: 1, Outcome: resilient.OutcomeTransient, StatusCode: 503, StopReason: resilient.StopRetryBudget},
		} {
			var r resilient.Report
			req, _ := http.NewRequestWithContext(resilient.WithReport(context.Background(), &r), "GET", url, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("call %d: %v; want the last 503 with a nil error", i+1, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 503 || string(body) != "down" || err != nil {
				t.Errorf("call %d: %d %q, %v; want 503 \"down\"", i+1, resp.StatusCode, body, err)
			}
			if r != want {
				t.Errorf("call %d: Report %+v, want %+v", i+1, r, want)
			}
		}
		if at, _, _ := base.sent(); len(at) != 3 {
			t.Errorf("%d requests sent, want 3: one retry in all", len(at))
		}
	})
	synctest.Test(t, func(t *testing.T) {
		stall := roundTrip(func(req *http.Request) (*http.Response, error) {
			<-req.Context().Done()
			return nil, req.Context().Err()
		})
		client := &http.Client{Transport: resilient.New(stall, resilient.WithoutBreaker(), resilient.WithBackoff(0, 0),
			resilient.WithAttemptTimeout(time.Second), oneRetry)}
		client.Get(url) // spends the retry
		var r resilient.Report
		req, _ := http.NewRequestWithContext(resilient.WithReport(context.Background(), &r), "GET", url, nil)
		resp, err := client.Do(req)
		var ue *neturl.Error
		var re *resilient.Error
		if resp != nil || !errors.As(err, &ue) || !errors.As(err, &re) {
			t.Fatalf("%v, %v; want no response and a *url.Error over a *resilient.Error", resp, err)
		}
		if !errors.Is(err, resilient.ErrRetryBudgetExhausted) || !errors.Is(err, resilient.ErrAttemptTimeout) || !ue.Timeout() || !os.IsTimeout(err) || re.Attempts != 1 {
			t.Errorf("%v: Is(ErrRetryBudgetExhausted) %v, Is(ErrAttemptTimeout) %v, Timeout() %v, os.IsTimeout %v, %d attempts; want all true, 1 attempt",
				err, errors.Is(err, resilient.ErrRetryBudgetExhausted), errors.Is(err, resilient.ErrAttemptTimeout), ue.Timeout(), os.IsTimeout(err), re.Attempts)
		}
		if want := (resilient.Report{Attempts: 1, Duration: time.Second, Outcome: resilient.OutcomeTransient, StopReason: resilient.StopRetryBudget}); r != want {
			t.Errorf("Report %+v, want %+v", r, want)
		}
	})
}
