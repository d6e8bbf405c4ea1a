package resilient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// drippingBody is a response body that yields a byte every half second,
// for ever, until it is closed or its request's context is done.
type drippingBody struct {
	ctx    context.Context
	closed chan struct{}
	once   sync.Once
}

func newDrippingBody(ctx context.Context) *drippingBody {
	return &drippingBody{ctx: ctx, closed: make(chan struct{})}
}

func (b *drippingBody) Read(p []byte) (int, error) {
	timer := time.NewTimer(500 * time.Millisecond)
	defer timer.Stop()
	select {
	case <-timer.C:
		return copy(p, "x"), nil
	case <-b.closed:
		return 0, errors.New("read on a closed body")
	case <-b.ctx.Done():
		return 0, context.Cause(b.ctx)
	}
}

func (b *drippingBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// TestRetryWaitCheckedAfterTheDrain: the response retried past is drained
// (up to 2s for a body that drips) after the retry's wait was checked
// against the call's deadline; a wait that, once the drain ended, would
// pass the deadline is not started: the call returns the answer it has at
// once, as a plain client would. It was slept all the same: under a
// context deadline, the call ended at the deadline with the context's
// error, the 503 thrown away; under WithMaxElapsed, past the budget.
func TestRetryWaitCheckedAfterTheDrain(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		ctx  func(context.Context) (context.Context, context.CancelFunc)
	}{
		{"budget", []Option{WithMaxElapsed(10 * time.Second)}, func(ctx context.Context) (context.Context, context.CancelFunc) {
			return ctx, func() {}
		}},
		{"context deadline", nil, func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 10*time.Second)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if calls.Add(1) == 1 {
						return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: newDrippingBody(req.Context()), Request: req}, nil
					}
					return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
				})
				ctx, cancel := tc.ctx(context.Background())
				defer cancel()
				var r Report
				req := newRequest(t, WithReport(ctx, &r), http.MethodGet, "http://api.test/x", nil)
				start := time.Now()
				resp, err := New(base, append([]Option{WithBackoff(8*time.Second, 8*time.Second), WithoutBreaker()}, tc.opts...)...).RoundTrip(req)
				d := time.Since(start)
				if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("RoundTrip = %v, %v after %v; want the 503", resp, err, d)
				}
				resp.Body.Close()
				if d >= 8*time.Second || calls.Load() != 1 || r.StopReason != StopDeadline {
					t.Errorf("returned after %v, %d attempts, stop %q; want it at once after the drain, 1, %q",
						d, calls.Load(), r.StopReason, StopDeadline)
				}
			})
		})
	}
}
