package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestCallAttemptTimeoutBelowFloorNotRetried: a per-call attempt timeout
// below 1ms (WithAttemptTimeout(5), meant as five seconds, is 5ns) counts
// as 1ms, and an attempt it cuts is not retried: every retry would be
// cut alike. Against a host that takes 50ms, the call used to make 6
// attempts over about 20s of backoff, where a plain http.Client with the
// same Timeout fails at once; it now fails after its first, with the
// cut's error and StopDeadline. A 1ms timeout given as such is retried as
// any attempt timeout.
func TestCallAttemptTimeoutBelowFloorNotRetried(t *testing.T) {
	for _, tc := range []struct {
		d        time.Duration
		wantHits int32
	}{
		{5, 1},
		{999 * time.Microsecond, 1},
		{time.Millisecond, 6},
	} {
		synctest.Test(t, func(t *testing.T) {
			var hits atomic.Int32
			tr := New(slowOK(50*time.Millisecond, &hits))
			var rep Report
			ctx := WithReport(WithCallOptions(context.Background(), WithAttemptTimeout(tc.d)), &rep)
			start := time.Now()
			resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, "http://api.test/", nil))
			if err == nil {
				resp.Body.Close()
				t.Fatalf("WithAttemptTimeout(%v) per call against a 50ms host: a response, want the cut's error", tc.d)
			}
			if !errors.Is(err, ErrAttemptTimeout) {
				t.Errorf("WithAttemptTimeout(%v): error %v, want ErrAttemptTimeout", tc.d, err)
			}
			if n := hits.Load(); n != tc.wantHits {
				t.Errorf("WithAttemptTimeout(%v) per call: the host was hit %d times over %v, want %d", tc.d, n, time.Since(start), tc.wantHits)
			}
			if tc.wantHits == 1 && (rep.StopReason != StopDeadline || rep.Attempts != 1) {
				t.Errorf("WithAttemptTimeout(%v): Report StopReason %q after %d attempts, want %q after 1", tc.d, rep.StopReason, rep.Attempts, StopDeadline)
			}
		})
	}
}

// stalledErrorBody is the body of an error response that never comes: its
// Read waits for the attempt's context, and fails with its cause.
type stalledErrorBody struct{ ctx context.Context }

func (b stalledErrorBody) Read([]byte) (int, error) {
	<-b.ctx.Done()
	return 0, context.Cause(b.ctx)
}

func (b stalledErrorBody) Close() error { return nil }

// TestCallAttemptTimeoutBelowFloorPeekCutNotRetried: a per-call attempt
// timeout below 1ms that cuts the attempt while the Transport peeks at its
// error body (a 503 whose JSON body stalls) is a cut as one before the
// headers is: each retry would be cut alike. The call returns the 503
// after its first attempt, StopDeadline, as a plain client with such a
// Timeout returns the status and fails the body's read; it used to make 6
// attempts over about 20s of backoff. A 1ms timeout given as such is
// retried as before.
func TestCallAttemptTimeoutBelowFloorPeekCutNotRetried(t *testing.T) {
	for _, tc := range []struct {
		d        time.Duration
		wantHits int32
	}{
		{5, 1},
		{time.Millisecond, 6},
	} {
		synctest.Test(t, func(t *testing.T) {
			var hits atomic.Int32
			tr := New(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				hits.Add(1)
				h := http.Header{"Content-Type": {"application/json"}}
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: h, ContentLength: -1, Body: stalledErrorBody{r.Context()}, Request: r}, nil
			}))
			var rep Report
			ctx := WithReport(WithCallOptions(context.Background(), WithAttemptTimeout(tc.d)), &rep)
			start := time.Now()
			resp, err := roundTrip(t, tr, newRequest(t, ctx, http.MethodGet, "http://api.test/", nil))
			if err != nil {
				t.Fatalf("WithAttemptTimeout(%v) per call, a 503 whose body stalls: %v, want the 503", tc.d, err)
			}
			resp.Body.Close()
			if n := hits.Load(); n != tc.wantHits {
				t.Errorf("WithAttemptTimeout(%v) per call, a 503 whose body stalls: the host was hit %d times over %v, want %d", tc.d, n, time.Since(start), tc.wantHits)
			}
			if tc.wantHits == 1 && (rep.StopReason != StopDeadline || rep.Attempts != 1) {
				t.Errorf("WithAttemptTimeout(%v), a 503 whose body stalls: Report StopReason %q after %d attempts, want %q after 1", tc.d, rep.StopReason, rep.Attempts, StopDeadline)
			}
		})
	}
}

// TestCallAttemptTimeoutBelowFloorWriteSaysUnsafe: a write that a per-call
// attempt timeout below 1ms cut after it may have reached the server is
// not resent, and says so as any such write does (StopUnsafeWrite, see
// WithKeyHonoringHosts): the caller must learn that it may have been
// processed, which StopDeadline does not tell. A keyed write to a host
// that honors keys, which could be resent, ends with StopDeadline.
func TestCallAttemptTimeoutBelowFloorWriteSaysUnsafe(t *testing.T) {
	for _, tc := range []struct {
		honors bool
		want   StopReason
	}{
		{false, StopUnsafeWrite},
		{true, StopDeadline},
	} {
		synctest.Test(t, func(t *testing.T) {
			var hits atomic.Int32
			var opts []Option
			if tc.honors {
				opts = append(opts, WithKeyHonoringHosts("api.test"))
			}
			tr := New(slowOK(50*time.Millisecond, &hits), opts...)
			var rep Report
			ctx := WithReport(WithCallOptions(context.Background(), WithAttemptTimeout(5)), &rep)
			resp, err := roundTrip(t, tr, newRequest(t, ctx, http.MethodPost, "http://api.test/", strings.NewReader("{}")))
			if err == nil {
				resp.Body.Close()
				t.Fatalf("a POST cut by WithAttemptTimeout(5ns) per call (honoring host %v): a response, want the cut's error", tc.honors)
			}
			if n := hits.Load(); n != 1 || rep.StopReason != tc.want {
				t.Errorf("a POST cut by WithAttemptTimeout(5ns) per call (honoring host %v): %d hits, Report StopReason %q, want 1 hit and %q", tc.honors, n, rep.StopReason, tc.want)
			}
		})
	}
}

// TestCallAttemptTimeoutBelowFloorWholeAnswerRetried: the floored per-call
// attempt timeout ends the call only when it cut the attempt. A 503 whose
// body was read whole within the 1ms (a host on the same machine) was not
// cut, even when that 1ms then passed before the retry loop decided (a
// Classifier that takes its time, here 2ms): it is retried as any 503, and
// no Report says StopDeadline of a deadline that cut nothing. With a body
// that is not JSON, which is not peeked at all, the same.
func TestCallAttemptTimeoutBelowFloorWholeAnswerRetried(t *testing.T) {
	for _, ct := range []string{"application/json", "text/html"} {
		synctest.Test(t, func(t *testing.T) {
			var hits atomic.Int32
			tr := New(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				hits.Add(1)
				h := http.Header{"Content-Type": {ct}}
				body := `{"error":{"code":"unavailable","message":"try again"}}`
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: h, ContentLength: int64(len(body)), Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
			}))
			slow := func(resp *http.Response, apiErr *APIError, err error, def Class) Class {
				time.Sleep(2 * time.Millisecond) // a Classifier that takes its time
				return def
			}
			var rep Report
			ctx := WithReport(WithCallOptions(context.Background(), WithAttemptTimeout(5), WithClassifier(slow)), &rep)
			resp, err := roundTrip(t, tr, newRequest(t, ctx, http.MethodGet, "http://api.test/", nil))
			if err != nil {
				t.Fatalf("%s: a 503 read whole within WithAttemptTimeout(5ns) per call: %v, want the 503", ct, err)
			}
			resp.Body.Close()
			if n := hits.Load(); n != 6 || rep.StopReason == StopDeadline {
				t.Errorf("%s: a 503 read whole within WithAttemptTimeout(5ns) per call: %d hits, Report StopReason %q, want 6 hits and no %q", ct, n, rep.StopReason, StopDeadline)
			}
		})
	}
}
