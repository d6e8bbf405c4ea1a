package resilient

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingFailedCopyKeepsBodyAfterRetryBegan: a copy that took over the
// attempt's unread body (see TestHedgingCopyTakesOverUnreadBody) and fails
// only once the attempt was decided and the retry loop took the run's body
// (see hedgeRun.sealBody), its dial deaf to its cancel, does not give the
// body back (see TestHedgingFailedCopyLeavesUnreadBody): the host answered
// the attempt 503 before its writer began to send the body (net/http's
// sends it on, in a goroutine of its own, once Expect: 100-continue's wait
// ends), and the retry's GetBody waits for the copy's body, not the
// attempt's. Given back, the writer read the one source on while the
// retry's GetBody rewound it and the retry sent it: the retry's body came
// out short.
func TestHedgingFailedCopyKeepsBodyAfterRetryBegan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := []byte("abcdefghijkl")
		var calls atomic.Int32
		var got bodyLog
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			switch calls.Add(1) {
			case 1:
				time.Sleep(20 * time.Millisecond) // the attempt's dial, past the hedging delay
				go func() {
					time.Sleep(40 * time.Millisecond) // the writer begins at 60ms
					defer r.Body.Close()
					io.Copy(io.Discard, bytewise{r.Body})
				}()
				return &http.Response{StatusCode: 503, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
			case 2:
				time.Sleep(40 * time.Millisecond) // the copy's dial, from 10ms to 50ms, deaf to its cancel
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "connection refused"}}
			}
			r.Body = struct {
				io.Reader
				io.Closer
			}{bytewise{r.Body}, r.Body}
			return got.created(r)
		})
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithAttemptTimeout(5*time.Second))
		resp, err := tr.RoundTrip(sharedSourcePost(data))
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		resp.Body.Close()
		time.Sleep(time.Second)
		synctest.Wait()
		if resp.StatusCode != 201 || calls.Load() != 3 {
			t.Errorf("the call got %d in %d requests, want 201 in 3: the retry's answer", resp.StatusCode, calls.Load())
		}
		got.checkOne(t, data)
	})
}

// bytewise reads r a byte every 5ms: a slow upload.
type bytewise struct{ r io.Reader }

func (b bytewise) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := b.r.Read(p[:1])
	if err == nil {
		time.Sleep(5 * time.Millisecond)
	}
	return n, err
}
