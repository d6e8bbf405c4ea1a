package resilient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestCutBodyErrorIsATimeout: the body of a response whose read the
// attempt's deadline cut (an error envelope stalled while the Transport
// peeked at it, a write's success kept as the timer fired) fails with a
// timeout, whatever the caller's context: errors.Is(err,
// context.DeadlineExceeded), os.IsTimeout and a net.Error's Timeout, as
// the body's error is through a plain client whose Timeout (or whose
// context's deadline) cut it, and never context.Canceled. Under a context
// that can be canceled, the error net/http returns is the deadline's
// cause, which used to be no timeout for os.IsTimeout; over HTTP/2, whose
// Transport returns its request context's Err, that Err was
// context.Canceled once the deadline cut a context that can be canceled (a
// server handler's, the common case).
func TestCutBodyErrorIsATimeout(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       []Option
		callOpts   []Option
		cancelable bool
	}{
		{"attempt timeout", []Option{WithAttemptTimeout(time.Second)}, nil, false},
		{"attempt timeout, cancelable context", []Option{WithAttemptTimeout(time.Second)}, nil, true},
		{"budget, cancelable context", []Option{WithMaxElapsed(time.Second)}, nil, true},
		{"call's attempt timeout, cancelable context", nil, []Option{WithAttemptTimeout(time.Second)}, true},
		{"call's budget, cancelable context", nil, []Option{WithMaxElapsed(time.Second)}, true},
	} {
		for _, h2 := range []bool{false, true} {
			name := tc.name
			srvOpts := []resilienttest.Option(nil)
			if h2 {
				// HTTP/2's net/http Transport returns its request
				// context's Err, not its cause.
				name, srvOpts = name+", HTTP/2", []resilienttest.Option{resilienttest.WithTLS()}
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					srv := resilienttest.NewPipeServer(resilienttest.Altyaa, append(srvOpts, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						w.Header().Set("Content-Type", "application/json")
						w.Header().Set("Content-Length", "100")
						w.WriteHeader(http.StatusServiceUnavailable)
						w.Write([]byte(`{"error":`))
						w.(http.Flusher).Flush()
						<-r.Context().Done() // the rest never comes
					})))...)
					defer srv.Close()
					defer srv.Transport().CloseIdleConnections()
					tr := New(srv.Transport(), append([]Option{WithMaxRetries(0)}, tc.opts...)...)
					ctx := context.Background()
					if tc.cancelable {
						var cancel context.CancelFunc
						ctx, cancel = context.WithCancel(ctx)
						defer cancel()
					}
					if tc.callOpts != nil {
						ctx = WithCallOptions(ctx, tc.callOpts...)
					}
					resp, err := tr.RoundTrip(newRequest(t, ctx, "GET", srv.URL+"/v1/posts", nil))
					if err != nil {
						t.Fatalf("RoundTrip: %v, want the 503", err)
					}
					if h2 && resp.ProtoMajor != 2 {
						t.Fatalf("answered in %s, want HTTP/2", resp.Proto)
					}
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					checkCutBodyError(t, err)
				})
			})
		}
	}
	// A write's success whose headers arrive as the timer fires is kept
	// (it may not be resent), its body cut.
	t.Run("write kept as the timer fired, cancelable context", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				<-req.Context().Done() // the headers arrive just as the timer fires
				return &http.Response{StatusCode: 201, Body: newStallBody(req.Context(), ""), ContentLength: -1, Request: req}, nil
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			resp, err := New(rt, WithAttemptTimeout(time.Second)).RoundTrip(newRequest(t, ctx, "POST", "http://api.test/", nil))
			if err != nil {
				t.Fatalf("RoundTrip: %v, want the 201", err)
			}
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			checkCutBodyError(t, err)
		})
	})
}

// checkCutBodyError checks err, the error of a response body cut by the
// attempt's deadline, as TestCutBodyErrorIsATimeout says.
func checkCutBodyError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("the body read whole, want the error of the deadline that cut it")
	}
	var ne net.Error
	if !errors.Is(err, context.DeadlineExceeded) || !os.IsTimeout(err) || !errors.As(err, &ne) || !ne.Timeout() || errors.Is(err, context.Canceled) {
		t.Errorf("body error %v: Is(DeadlineExceeded) %v, os.IsTimeout %v, net.Error Timeout %v, Is(Canceled) %v; want a timeout, as through a plain client",
			err, errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err), errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.Canceled))
	}
}

// TestAttemptContextErrAfterItsDeadline: once the deadline the context of
// an attempt states (its Deadline) has passed and cut the attempt, its Err
// is context.DeadlineExceeded, as the context package defines Err, whether
// the caller's context can be canceled or not; a caller's cancel stays
// context.Canceled.
func TestAttemptContextErrAfterItsDeadline(t *testing.T) {
	for _, caller := range []string{"background", "cancelable", "canceled by the caller"} {
		t.Run(caller, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if caller != "background" {
					ctx, cancel = context.WithCancel(ctx)
				}
				defer cancel()
				var ctxErr error
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if caller == "canceled by the caller" {
						time.AfterFunc(500*time.Millisecond, cancel)
					}
					<-req.Context().Done()
					ctxErr = req.Context().Err()
					return nil, ctxErr // as HTTP/2's net/http Transport does
				})
				_, err := roundTrip(t, New(base, WithAttemptTimeout(time.Second), WithMaxRetries(0)), newRequest(t, ctx, "GET", "http://api.test/", nil))
				want := context.DeadlineExceeded
				if caller == "canceled by the caller" {
					want = context.Canceled
				}
				if ctxErr != want {
					t.Errorf("the attempt's context Err() = %v once done, want %v", ctxErr, want)
				}
				if !errors.Is(err, want) {
					t.Errorf("RoundTrip error %v, want %v", err, want)
				}
			})
		})
	}
}

// TestCallerCancelWithATimeoutCauseStaysACancel: a caller that cancels its
// context with a cause of its own that is another call's timeout (as
// errgroup.WithContext does with the first error of a group: a sibling
// call cut by its attempt timeout or its budget) has canceled the call:
// the attempt's context says context.Canceled, as a plain client's
// request context does, and the call's error is no timeout.
func TestCallerCancelWithATimeoutCauseStaysACancel(t *testing.T) {
	for _, opt := range []struct {
		name string
		opt  Option
	}{
		{"attempt timeout", WithAttemptTimeout(time.Second)},
		{"budget", WithMaxElapsed(time.Second)},
	} {
		t.Run(opt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var ctxErr error
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					<-req.Context().Done()
					ctxErr = req.Context().Err()
					return nil, ctxErr // as HTTP/2's net/http Transport does
				})
				tr := New(base, opt.opt, WithMaxRetries(0))
				// A sibling call of the group, cut by its deadline.
				sctx, scancel := context.WithCancel(context.Background())
				defer scancel()
				_, sibling := roundTrip(t, tr, newRequest(t, sctx, "GET", "http://api.test/a", nil))
				if !errors.Is(sibling, context.DeadlineExceeded) {
					t.Fatalf("sibling's error %v, want a timeout", sibling)
				}
				ctx, cancel := context.WithCancelCause(context.Background())
				time.AfterFunc(100*time.Millisecond, func() { cancel(sibling) }) // errgroup's cancel
				_, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/b", nil))
				if ctxErr != context.Canceled {
					t.Errorf("the attempt's context Err() = %v after the caller's cancel, want context.Canceled", ctxErr)
				}
				if !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("RoundTrip error %v, want the caller's cancel, not a timeout", err)
				}
			})
		})
	}
}
