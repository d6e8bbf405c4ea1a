package resilient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRewindWaitEndsWhenTheRetryNoLongerFits: a retry whose seekable body
// the earlier attempt's writer is still reading, in a Read that stalls,
// waits for that read only as long as the retry's own wait (its backoff)
// still ends before the call's deadline: past that point no retry can be
// sent (the retry loop gives up as soon as the read ends, see
// TestRetryWaitCheckedAfterTheRewind), and the call returns the answer it
// has. The rewind waited for the read until the deadline itself: the
// caller was held its whole backoff longer, for nothing.
func TestRewindWaitEndsWhenTheRetryNoLongerFits(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		ctx  func(context.Context) (context.Context, context.CancelFunc)
	}{
		{"budget", []Option{WithMaxElapsed(30 * time.Second)}, func(ctx context.Context) (context.Context, context.CancelFunc) {
			return ctx, func() {}
		}},
		{"context deadline", nil, func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 30*time.Second)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				body := &stuckSeeker{Reader: strings.NewReader("0123456789"), stuck: make(chan struct{}), release: make(chan struct{})}
				var mu sync.Mutex
				calls := 0
				var writers sync.WaitGroup
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					calls++
					first := calls == 1
					mu.Unlock()
					writers.Go(func() { // net/http's writer, still sending as the answer comes
						io.Copy(io.Discard, req.Body)
						req.Body.Close()
					})
					if first {
						<-body.stuck // the answer comes as the writer's Read stalls
					}
					return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: http.NoBody, Request: req}, nil
				})
				ctx, cancel := tc.ctx(context.Background())
				defer cancel()
				var r Report
				req := newRequest(t, WithReport(ctx, &r), http.MethodPut, "http://api.test/upload", body)
				start := time.Now()
				resp, err := New(base, append([]Option{WithBackoff(10*time.Second, 10*time.Second), WithoutBreaker()}, tc.opts...)...).RoundTrip(req)
				d := time.Since(start)
				close(body.release) // the stalled source, long after
				writers.Wait()
				if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("RoundTrip = %v, %v after %v; want the 503", resp, err, d)
				}
				resp.Body.Close()
				if d != 20*time.Second || calls != 1 || r.StopReason != StopDeadline {
					t.Errorf("returned after %v, %d attempts, stop %q; want 20s (the last moment a 10s backoff still ends before the deadline), 1, %q",
						d, calls, r.StopReason, StopDeadline)
				}
			})
		})
	}
}
