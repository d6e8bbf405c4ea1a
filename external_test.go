package resilient_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
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
