package resilient

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingRenewCanceledSaysSo: a caller who cancels its call while the
// attempt's Read renews its body from GetBody (see
// TestHedgingTakenOverBodyReadByCopyRenewed) gets an error that says so
// (errors.Is context.Canceled), as when it cancels while that Read waits
// for a copy's GetBody (see TestHedgingTakenOverBodyWaitCanceled). The
// base reads the body on the caller's goroutine and fails with the body's
// error, as net/http's HTTP/1 client does when its write fails first.
func TestHedgingRenewCanceledSaysSo(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Second} {
		synctest.Test(t, func(t *testing.T) {
			data := []byte("abcdefghijkl")
			var got bodyLog
			base := renewBase(&got, readThenHang)
			opts := []Option{WithHedging(Hedging{Delay: 10 * time.Millisecond})}
			if timeout > 0 {
				opts = append(opts, WithAttemptTimeout(timeout))
			}
			tr := New(base, opts...)
			ctx, cancel := context.WithCancel(WithIdempotencyKey(context.Background(), "k1"))
			defer cancel()
			req := sharedSourcePost(data).WithContext(ctx)
			slowRenewal(req, 20*time.Millisecond)       // the attempt's renewal, from 20ms to 40ms
			time.AfterFunc(30*time.Millisecond, cancel) // while the renewal's GetBody runs
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			time.Sleep(time.Minute)
			synctest.Wait()
			if !errors.Is(err, context.Canceled) {
				t.Errorf("attempt timeout %v: RoundTrip = %v, %v; want context.Canceled", timeout, resp, err)
			}
			got.mu.Lock()
			defer got.mu.Unlock()
			if len(got.bodies) != 0 {
				t.Errorf("attempt timeout %v: the server got bodies %q after the cancel, want none", timeout, got.bodies)
			}
		})
	}
}
