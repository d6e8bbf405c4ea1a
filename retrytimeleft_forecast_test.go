package resilient

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestWriteRetryNeedRefusedAtOnceByThePause: a write's retry that the
// host's pause (another call's 429) holds past the time the retry needs
// before the deadline (see TestWriteRetryNeedsTimeAfterLocalWaits) is
// refused at once, as the rate limiter's forecast says, not after its
// backoff's wait for a refusal already known. The write's attempt takes
// 20ms and its dial is refused; meanwhile another write's 429 pauses the
// host's writes until 3.005s; the deadline is 3.015s away: the retry would have to
// start by 2.995s. The call returns at 20ms; with the forecast reading the
// deadline alone, it waited its 1s backoff to be refused then.
func TestWriteRetryNeedRefusedAtOnceByThePause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{
			{err: errRefused, before: func(*http.Request) { time.Sleep(20 * time.Millisecond) }}, // the write's attempt
			{status: 429, header: http.Header{"Retry-After": {"3"}}},                             // another write's, at 5ms
		}}
		tr := New(s, WithoutBreaker(), WithBackoff(time.Second, time.Second))
		go func() {
			time.Sleep(5 * time.Millisecond)
			ctx := WithCallOptions(context.Background(), WithMaxRetries(0))
			if resp, err := tr.RoundTrip(newRequest(t, ctx, "POST", "http://api.test/v1/media", strings.NewReader("{}"))); err == nil {
				resp.Body.Close()
			}
		}()
		ctx := timeoutCtx(t, 3015*time.Millisecond)
		start := time.Now()
		_, err := roundTrip(t, tr, newRequest(t, ctx, "POST", "http://api.test/v1/posts", strings.NewReader(`{"content":"hello"}`)))
		if err == nil || s.numCalls() != 2 {
			t.Fatalf("%v after %d requests in all; want the refused dial's error after the write's one attempt", err, s.numCalls())
		}
		if d := time.Since(start); d != 20*time.Millisecond {
			t.Errorf("the call returned after %v, want 20ms: its retry refused at once, the pause holding past its start-by time", d)
		}
		synctest.Wait()
	})
}

// pausedRetry runs a GET whose attempt takes 20ms and whose dial is
// refused, while another GET's 429 (Retry-After: 3) pauses the host from
// 5ms until 3.005s; its retry would start after a 1s backoff, at 1.02s. The
// third step answers the retry, if it is sent. It returns the call's
// response, when it returned, the script, and the call's error.
func pausedRetry(t *testing.T, ctx context.Context, opts ...Option) (*http.Response, time.Duration, *rtScript, error) {
	t.Helper()
	s := &rtScript{steps: []rtStep{
		{err: errRefused, before: func(*http.Request) { time.Sleep(20 * time.Millisecond) }}, // the call's attempt
		{status: 429, header: http.Header{"Retry-After": {"3"}}},                             // another call's, at 5ms
		{status: 200}, // the call's retry
	}}
	tr := New(s, append([]Option{WithoutBreaker(), WithBackoff(time.Second, time.Second)}, opts...)...)
	go func() {
		time.Sleep(5 * time.Millisecond)
		ctx := WithCallOptions(context.Background(), WithMaxRetries(0))
		if resp, err := tr.RoundTrip(newRequest(t, ctx, "GET", "http://api.test/v1/other", nil)); err == nil {
			resp.Body.Close()
		}
	}()
	start := time.Now()
	resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/v1/posts", nil))
	return resp, time.Since(start), s, err
}

// TestRetryRefusedAtOnceByAPauseEndingAtTheDeadline: a retry that the
// host's pause holds until the call's deadline itself is refused at once,
// as the rate limiter refuses an attempt that could start no earlier than
// the deadline; the forecast took a pause ending at the deadline for one
// that ends before it, and the call waited its 1s backoff for a refusal
// already known.
func TestRetryRefusedAtOnceByAPauseEndingAtTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, d, s, err := pausedRetry(t, timeoutCtx(t, 3005*time.Millisecond))
		if err == nil || s.numCalls() != 2 {
			t.Fatalf("%v after %d requests in all; want the refused dial's error after the call's one attempt", err, s.numCalls())
		}
		if d != 20*time.Millisecond {
			t.Errorf("the call returned after %v, want 20ms: its retry refused at once, the pause holding until its deadline", d)
		}
		synctest.Wait()
	})
}

// TestRetryWaitsAPauseOfTheLongestWait: a retry that the host's pause
// holds for exactly WithMaxRetryAfter once its backoff ends (the pause
// ends at 3.005s, the retry would start at 1.02s: 1.985s) waits for it, as
// the rate limiter does, which refuses only a longer wait; the forecast
// refused it at once, and the call failed where it would have succeeded.
func TestRetryWaitsAPauseOfTheLongestWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		resp, d, s, err := pausedRetry(t, context.Background(), WithMaxRetryAfter(1985*time.Millisecond))
		if err != nil {
			t.Fatalf("the call failed after %v and %d requests in all: %v; want its retry sent once the pause ended", d, s.numCalls(), err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || s.numCalls() != 3 {
			t.Errorf("status %d after %d requests in all, want 200 after 3", resp.StatusCode, s.numCalls())
		}
		if d < 3005*time.Millisecond {
			t.Errorf("the call returned after %v, before the pause ended", d)
		}
		synctest.Wait()
	})
}
