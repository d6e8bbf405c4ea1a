package resilient

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestErrorCountsHedgesAsReportDoes: the *Error of a hedged call that fails
// counts its attempts as its Report does, the hedged copies sent included
// (Report.Attempts, Report.Hedges), and its message says how many of them
// were copies: a log line and the Report of one call tell one number. The
// error said "2 attempts" of a call whose Report said 4 attempts, 2 of them
// hedges.
func TestErrorCountsHedgesAsReportDoes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Every request fails after 50ms: each attempt gets a copy
		// after 10ms, which fails too.
		var hits atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			hits.Add(1)
			time.Sleep(50 * time.Millisecond)
			return nil, errReset
		})
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithMaxRetries(1), WithBackoff(0, 0))
		var r Report
		_, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/v1/posts", nil))
		synctest.Wait()
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("RoundTrip error = %v, want an *Error", err)
		}
		if hits := hits.Load(); hits != 4 || r.Attempts != 4 || r.Hedges != 2 {
			t.Fatalf("%d requests sent, Report %+v; want 4, 2 of them hedged copies", hits, r)
		}
		if e.Attempts != r.Attempts || e.Hedges != r.Hedges {
			t.Errorf("Error{Attempts: %d, Hedges: %d}, Report{Attempts: %d, Hedges: %d}; want the same counts", e.Attempts, e.Hedges, r.Attempts, r.Hedges)
		}
		if want := ": 4 attempts, 2 of them hedged copies: "; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q, want it to say %q", err, want)
		}
	})
}

// TestErrorTextOfHedgedAttempts: the message of an *Error names the
// hedged copies among its attempts, and says nothing of them when there
// were none.
func TestErrorTextOfHedgedAttempts(t *testing.T) {
	for _, tc := range []struct {
		attempts, hedges int
		want             string
	}{
		{1, 0, "resilient: GET https://api.test/v1: 1 attempt: boom"},
		{6, 0, "resilient: GET https://api.test/v1: 6 attempts: boom"},
		{2, 1, "resilient: GET https://api.test/v1: 2 attempts, 1 of them a hedged copy: boom"},
		{5, 3, "resilient: GET https://api.test/v1: 5 attempts, 3 of them hedged copies: boom"},
	} {
		e := &Error{Method: "GET", URL: "https://api.test/v1", Attempts: tc.attempts, Hedges: tc.hedges, Err: errors.New("boom")}
		if got := e.Error(); got != tc.want {
			t.Errorf("Error{Attempts: %d, Hedges: %d}.Error() = %q, want %q", tc.attempts, tc.hedges, got, tc.want)
		}
	}
}
