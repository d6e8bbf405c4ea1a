package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingTakenOverBodyWaitCanceled: a caller who cancels its call
// while the attempt's Read waits for the GetBody of a copy that took its
// body over (see TestHedgingTakenOverBodyWaitBounded) gets its call back
// at once with an error that says so (errors.Is context.Canceled), as a
// plain client's canceled call does, whatever the attempt timeout. The
// wait's end detached the body, and the base failed with the body's
// error, which hid the cancel: the call failed with "request body read
// after a newer attempt started" alone.
func TestHedgingTakenOverBodyWaitCanceled(t *testing.T) {
	for _, timeout := range []time.Duration{0, 50 * time.Millisecond} {
		synctest.Test(t, func(t *testing.T) {
			data := []byte("abcdefghijkl")
			var got bodyLog
			var calls atomic.Int32
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				calls.Add(1)
				time.Sleep(20 * time.Millisecond) // the attempt's dial, past the hedging delay
				return got.created(r)
			})
			opts := []Option{WithHedging(Hedging{Delay: 10 * time.Millisecond, MaxHedges: 3})}
			if timeout > 0 {
				opts = append(opts, WithAttemptTimeout(timeout))
			}
			tr := New(base, opts...)
			ctx, cancel := context.WithCancel(WithIdempotencyKey(context.Background(), "k1"))
			defer cancel()
			req := sharedSourcePost(data).WithContext(ctx)
			rewind := req.GetBody
			var gets atomic.Int32
			req.GetBody = func() (io.ReadCloser, error) {
				if gets.Add(1) == 1 {
					time.Sleep(10 * time.Second) // the copy's, from 10ms
				}
				return rewind()
			}
			time.AfterFunc(30*time.Millisecond, cancel) // while the attempt's Read waits
			t0 := time.Now()
			resp, err := tr.RoundTrip(req)
			d := time.Since(t0)
			if err == nil {
				resp.Body.Close()
			}
			time.Sleep(time.Minute)
			synctest.Wait()
			if !errors.Is(err, context.Canceled) || d != 30*time.Millisecond {
				t.Errorf("attempt timeout %v: the call ended after %v with %v, want context.Canceled after 30ms", timeout, d, err)
			}
			got.mu.Lock()
			defer got.mu.Unlock()
			for _, b := range got.bodies {
				if b != string(data) {
					t.Errorf("the server got body %q, want %q", b, data)
				}
			}
		})
	}
}
