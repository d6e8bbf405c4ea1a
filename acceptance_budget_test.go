package resilient_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"testing/synctest"

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
