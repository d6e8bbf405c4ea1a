package resilient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingNoCopyOnceCallEndedDuringGetBody: a copy whose body the
// caller's GetBody was still making when the caller gave up (its context
// canceled, its deadline passed) or the call's budget (WithMaxElapsed) ran
// out, while the attempt itself still runs in a base that does not watch
// its context, is not sent: a plain client sends that one request (see
// TestHedgingNoCopyOnceCallEnded, for a call that ended before the copy's
// turn). Before, the copy went on to the base once GetBody returned: a
// second request, paid from the retry budget and counted as a hedge,
// after the caller had gone.
func TestHedgingNoCopyOnceCallEndedDuringGetBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func(t *testing.T) context.Context
		opt  Option
	}{
		{"canceled", func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(60*time.Millisecond, cancel)
			return ctx
		}, nil},
		{"deadline", func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
			t.Cleanup(cancel)
			return ctx
		}, nil},
		{"budget", func(*testing.T) context.Context { return context.Background() }, WithMaxElapsed(60 * time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n atomic.Int32
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					n.Add(1)
					io.Copy(io.Discard, req.Body)
					req.Body.Close()
					time.Sleep(100 * time.Millisecond) // its context unwatched
					return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
				})
				tr := New(rt, WithHedging(Hedging{Delay: 50 * time.Millisecond}), tc.opt)
				var r Report
				req := newRequest(t, WithReport(tc.ctx(t), &r), "OPTIONS", "http://api.test/", strings.NewReader("q"))
				req.GetBody = func() (io.ReadCloser, error) {
					time.Sleep(20 * time.Millisecond) // the copy's, from 50ms to 70ms
					return io.NopCloser(strings.NewReader("q")), nil
				}
				resp, err := roundTrip(t, tr, req)
				if err == nil {
					resp.Body.Close()
				}
				time.Sleep(time.Second) // every request ended
				if n.Load() != 1 || r.Hedges != 0 {
					t.Errorf("%d requests, %d copies; want 1 and none", n.Load(), r.Hedges)
				}
			})
		})
	}
}
