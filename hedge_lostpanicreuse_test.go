package resilient

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// panickyStringer is a panic value whose String panics, with a text that
// quotes a secret.
type panickyStringer struct{ secret string }

func (p panickyStringer) String() string { panic("String of " + p.secret) }

// panickyError is a panic value whose Error panics with itself.
type panickyError struct{}

func (e *panickyError) Error() string { panic(e) }

// TestHedgeLostCopyPanicCallerReusesRequest: the record of a losing copy's
// panic is redacted with the copy's own request, a deep copy: the caller
// who reuses its request once RoundTrip returned (a new key, a new query,
// another host) races with no read of the log, and the record still has
// the credentials of the request the copy sent REDACTED.
func TestHedgeLostCopyPanicCallerReusesRequest(t *testing.T) {
	const secret = "sk_live_r4ce-s3cret-value"
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		mutated := make(chan struct{})
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				time.Sleep(100 * time.Millisecond) // slow, but it wins
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
			}
			<-req.Context().Done()
			<-mutated // after the caller reused its request
			panic(fmt.Sprintf("base: GET %s with key %s for %s", req.URL.String(), req.Header.Get("X-Api-Key"), req.URL.Host))
		})
		var logs syncBuffer
		tr := New(rt, WithHedging(Hedging{Delay: 20 * time.Millisecond}),
			WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
		req := newRequest(t, context.Background(), http.MethodGet, "https://api.test/v1/users?where=age>30&api_key="+secret, nil)
		req.Header.Set("X-Api-Key", secret)
		req.URL.Host = "alice:" + secret + "@api.test"
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("RoundTrip = %v, %v; want the first attempt's 200", resp, err)
		}
		resp.Body.Close()
		// The caller reuses its request at once.
		req.Header.Set("X-Api-Key", "other-key-value")
		req.Header.Set("X-Other", "x")
		req.URL.RawQuery = "page=2"
		req.URL.Host = "api.test"
		req.URL.Path = "/v2/other"
		close(mutated)
		synctest.Wait() // the losing copy ends
		if calls.Load() != 2 {
			t.Fatalf("the base got %d requests, want 2", calls.Load())
		}
		out := logs.String()
		if !strings.Contains(out, "a hedged copy panicked") {
			t.Fatalf("no record of the losing copy's panic:\n%s", out)
		}
		if strings.Contains(out, secret) {
			t.Errorf("the record of the copy's panic holds the request's secret:\n%s", out)
		}
	})
}

// TestHedgeLostCopyPanicOddValues: a losing copy's panic whose value is nil
// (a *runtime.PanicNilError), whose String panics, or whose Error panics
// with itself, neither crashes the process nor leaks a secret its
// String's panic quotes; the call is the winner's.
func TestHedgeLostCopyPanicOddValues(t *testing.T) {
	const secret = "sk_live_0dd-v4lue-s3cret"
	for _, tc := range []struct {
		name string
		p    func() any
	}{
		{"nil", func() any { return nil }},
		{"String panics", func() any { return panickyStringer{secret} }},
		{"Error panics with itself", func() any { return &panickyError{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if calls.Add(1) == 1 {
						time.Sleep(100 * time.Millisecond)
						return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
					}
					<-req.Context().Done()
					panic(tc.p())
				})
				var logs syncBuffer
				tr := New(rt, WithHedging(Hedging{Delay: 20 * time.Millisecond}),
					WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
				req := newRequest(t, context.Background(), http.MethodGet, "https://api.test/v1/users", nil)
				req.Header.Set("X-Api-Key", secret)
				resp, err := tr.RoundTrip(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("RoundTrip = %v, %v; want the first attempt's 200", resp, err)
				}
				resp.Body.Close()
				synctest.Wait()
				out := logs.String()
				if strings.Contains(out, secret) {
					t.Errorf("the record holds the secret:\n%s", out)
				}
			})
		})
	}
}
