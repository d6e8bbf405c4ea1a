package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestCutBodyErrorIsATimeoutOverHTTP2 is TestCutBodyErrorIsATimeout over
// HTTP/2, whose net/http Transport returns its request context's Err, not
// its cause: an error body whose peek the attempt's deadline cut fails with
// a timeout under a caller's context that can be canceled too (a server
// handler's, the common case), never with context.Canceled, which would
// tell the caller that it canceled the call itself.
func TestCutBodyErrorIsATimeoutOverHTTP2(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       []Option
		cancelable bool
	}{
		{"attempt timeout", []Option{WithAttemptTimeout(time.Second)}, false},
		{"attempt timeout, cancelable context", []Option{WithAttemptTimeout(time.Second)}, true},
		{"budget, cancelable context", []Option{WithMaxElapsed(time.Second)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithTLS(), resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.Header().Set("Content-Length", "100")
					w.WriteHeader(http.StatusServiceUnavailable)
					w.Write([]byte(`{"error":`))
					w.(http.Flusher).Flush()
					<-r.Context().Done() // the rest never comes
				})))
				defer srv.Close()
				defer srv.Transport().CloseIdleConnections()
				tr := New(srv.Transport(), append([]Option{WithMaxRetries(0)}, tc.opts...)...)
				ctx := context.Background()
				if tc.cancelable {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
				}
				resp, err := tr.RoundTrip(newRequest(t, ctx, "GET", srv.URL+"/v1/posts", nil))
				if err != nil {
					t.Fatalf("RoundTrip: %v, want the 503", err)
				}
				if resp.ProtoMajor != 2 {
					t.Fatalf("answered in %s, want HTTP/2", resp.Proto)
				}
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				checkCutBodyError(t, err)
			})
		})
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
