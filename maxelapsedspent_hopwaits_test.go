package resilient

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxElapsedSpentOnEveryWaitingHop: a layer above the Transport that
// waits before several hops of one chain of redirects, and counts each
// wait with WithMaxElapsedSpent, has every wait counted as spent of the
// chain's budget, once each; what the caller's context counted, which
// every hop carries, is counted once. Until 2026-12-06 a hop counted only
// what its wait had beyond the wait before the hop that left it: two
// waits of 30s counted as one, and a 5m budget ran 5m30s, or 6m when the
// first hop waited too. So under a Transport nested in another
// (New(New(base))) when the call carries a Report: the outer Transport's
// attempts carry the call's values without the Report (see
// withoutReport), which the inner one's hops must still find derived
// from the caller's.
func TestMaxElapsedSpentOnEveryWaitingHop(t *testing.T) {
	const wait = 30 * time.Second
	tests := []struct {
		name        string
		firstWaits  bool          // the layer waits before the first hop too
		callerSpent time.Duration // counted by the caller's context
		atB         time.Duration // how long /b takes to answer its 302
		nested      bool          // New(New(base)), the call with a Report
	}{
		{"later hops", false, 0, wait, false},
		{"every hop", true, 0, wait, false},
		{"later hops, the caller's minute", false, time.Minute, 0, false},
		{"nested, a Report, the caller's minute", false, time.Minute, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// /a answers a 302 to /b after 3m; /b a 302 to /c after
				// atB; /c hangs.
				var hitsC int
				hang := foundThenHang(&hitsC)
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if strings.HasSuffix(r.URL.Path, "/b") {
						time.Sleep(tc.atB)
						return &http.Response{StatusCode: http.StatusFound, Header: http.Header{"Location": {"/c"}}, Body: http.NoBody, Request: r}, nil
					}
					return hang.RoundTrip(r)
				})
				var tr http.RoundTripper = New(base, WithoutBreaker(), WithoutRetryBudget())
				if tc.nested {
					tr = New(tr, WithoutBreaker(), WithoutRetryBudget())
				}
				above := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if r.Response == nil && !tc.firstWaits {
						return tr.RoundTrip(r)
					}
					time.Sleep(wait)
					ctx := WithCallOptions(r.Context(), WithMaxElapsedSpent(wait))
					return tr.RoundTrip(r.WithContext(ctx))
				})
				cl := &http.Client{Transport: above}
				ctx := context.Background()
				if tc.callerSpent > 0 {
					ctx = WithCallOptions(ctx, WithMaxElapsedSpent(tc.callerSpent))
				}
				if tc.nested {
					ctx = WithReport(ctx, new(Report))
				}
				began := time.Now()
				resp, err := cl.Do(newRequest(t, ctx, http.MethodGet, "http://api.test/a", nil))
				if err == nil {
					resp.Body.Close()
					t.Fatal("the call succeeded while /c hangs, want the budget's timeout")
				}
				if took, want := time.Since(began), DefaultMaxElapsed-tc.callerSpent; took != want {
					t.Errorf("the call failed after %v (%v; %d attempts at /c), want %v: the chain's budget, every wait counted once", took, err, hitsC, want)
				}
			})
		})
	}
}
