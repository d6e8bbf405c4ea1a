package resilient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRetryWaitCheckedAfterTheRewind: a retry whose seekable body the
// earlier attempt's writer is still reading (an early answer), in a Read
// that stalls, waits for that read only as long as the retry's own wait
// (its backoff) still ends before the call's deadline, and a backoff that
// would then pass the call's budget or its context's deadline is not
// started: the call returns the answer it has. The deadline was checked
// before the wait for the read only: the call then slept its whole backoff
// past its budget (and sent a retry cut at once), or until its context's
// deadline, where it failed with the deadline and dropped the 503 it had;
// and the rewind waited for the read until the deadline itself, holding
// the caller its whole backoff longer, for nothing.
func TestRetryWaitCheckedAfterTheRewind(t *testing.T) {
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
		for _, release := range []time.Duration{25 * time.Second, time.Hour} {
			t.Run(fmt.Sprintf("%s, read returns after %v", tc.name, release), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					body := &stuckSeeker{Reader: strings.NewReader("0123456789"), stuck: make(chan struct{}), release: make(chan struct{})}
					time.AfterFunc(release, func() { close(body.release) }) // the writer's Read returns then
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
					writers.Wait()
					if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
						t.Fatalf("RoundTrip = %v, %v after %v; want the 503", resp, err, d)
					}
					resp.Body.Close()
					// 20s less 1ms: the rewind stops waiting for the read
					// once the backoff would no longer end before the
					// deadline with the least a retry needs left (1ms
					// after an attempt of no time, see call.leastLeft).
					if want := 20*time.Second - durationFloor; d != want || calls != 1 || r.StopReason != StopDeadline {
						t.Errorf("returned after %v, %d attempts, stop %q; want %v (the last moment a 10s backoff still ends 1ms before the deadline), 1, %q",
							d, calls, r.StopReason, want, StopDeadline)
					}
				})
			})
		}
	}
}
