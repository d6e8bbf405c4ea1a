package resilient

import (
	"context"
	"errors"
	"net/http"
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
