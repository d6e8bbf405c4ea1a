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
