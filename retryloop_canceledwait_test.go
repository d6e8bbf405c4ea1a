package resilient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestCanceledWaitAfterTimeoutIsNoTimeout: a call its caller cancels while
// it waits to retry an attempt that timed out (its attempt timeout, an i/o
// timeout of the network) ends as a cancel, as a plain client's call
// canceled then would, and as the call's Report and log say it did: its
// error is context.Canceled, neither context.DeadlineExceeded for
// errors.Is nor a timeout for os.IsTimeout, net.Error or the *url.Error of
// http.Client. The error told both, and a caller branching on a timeout
// first (a proxy answering 504 rather than 499, a metric of timeouts, a
// retry of its own on timeouts) took its own cancel for the host's
// timeout. The earlier attempt's error is still told in the message, and
// one that is no timeout (a reset) is still found by errors.Is (see
// TestCanceledWaitKeepsTheNetworkError).
func TestCanceledWaitAfterTimeoutIsNoTimeout(t *testing.T) {
	ioTimeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		name  string
		first rtStep
		opts  []Option
		told  string // in the message
	}{
		{"attempt timeout", rtStep{hang: true}, []Option{WithAttemptTimeout(time.Second)}, "attempt timed out"},
		{"i/o timeout", rtStep{err: ioTimeout}, nil, "i/o timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{tc.first, {status: 200}}}
				tr := New(s, append(tc.opts, WithBackoff(5*time.Second, 5*time.Second))...)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var report Report
				req := newRequest(t, WithReport(ctx, &report), "GET", "http://api.test/", nil)
				time.AfterFunc(3*time.Second, cancel) // during the wait to retry
				resp, err := (&http.Client{Transport: tr}).Do(req)
				if resp != nil {
					resp.Body.Close()
					t.Fatalf("got a %d; want the cancel", resp.StatusCode)
				}
				var ne net.Error
				timeout := errors.As(err, &ne) && ne.Timeout()
				if s.numCalls() != 1 || report.Outcome != OutcomeCanceled || !errors.Is(err, context.Canceled) {
					t.Fatalf("%d requests, outcome %v, error %v; want one request, canceled", s.numCalls(), report.Outcome, err)
				}
				if errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err) || timeout {
					t.Errorf("error %v: DeadlineExceeded %v, os.IsTimeout %v, net.Error timeout %v; want a cancel, no timeout",
						err, errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err), timeout)
				}
				if !strings.Contains(err.Error(), tc.told) {
					t.Errorf("error %v; want the attempt before told (%q)", err, tc.told)
				}
			})
		})
	}
}

// TestCanceledRewindAfterTimeoutIsNoTimeout is
// TestCanceledWaitAfterTimeoutIsNoTimeout for a call canceled while its
// retry waits for the earlier attempt's read of its seekable body (a
// writer still sending it when that attempt timed out): the call ends as
// a cancel, no timeout.
func TestCanceledRewindAfterTimeoutIsNoTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := &stuckSeeker{Reader: strings.NewReader("0123456789"), stuck: make(chan struct{}), release: make(chan struct{})}
		var writers sync.WaitGroup
		defer writers.Wait()
		defer close(body.release) // the writer's Read returns once the call ended
		var calls atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			calls.Add(1)
			writers.Go(func() { // net/http's writer, still sending as the attempt fails
				io.Copy(io.Discard, req.Body)
				req.Body.Close()
			})
			<-body.stuck
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var report Report
		req := newRequest(t, WithReport(ctx, &report), http.MethodPut, "http://api.test/upload", body)
		time.AfterFunc(3*time.Second, cancel) // while the rewind waits for the read
		resp, err := (&http.Client{Transport: New(base, WithoutBreaker())}).Do(req)
		if resp != nil {
			resp.Body.Close()
			t.Fatalf("got a %d; want the cancel", resp.StatusCode)
		}
		var ne net.Error
		timeout := errors.As(err, &ne) && ne.Timeout()
		if calls.Load() != 1 || report.StopReason != StopCanceled || !errors.Is(err, context.Canceled) {
			t.Fatalf("%d requests, stop %q, error %v; want one request, canceled", calls.Load(), report.StopReason, err)
		}
		if errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err) || timeout {
			t.Errorf("error %v: DeadlineExceeded %v, os.IsTimeout %v, net.Error timeout %v; want a cancel, no timeout",
				err, errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err), timeout)
		}
		if !strings.Contains(err.Error(), "i/o timeout") {
			t.Errorf("error %v; want the attempt's timeout told", err)
		}
	})
}
