package resilient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingGetBodyAfterACopysBodyReadInPartNotShorter: a hedged copy
// that took the attempt's body over (its dial slow) and lost its
// connection midway through the body (a reset) read it in part, not to
// its end: the bodies made after it, a later copy's and the attempt's own
// renewed from GetBody (see hedgeRun.renew), learned no length from it.
// A careless GetBody (see carelessGetBodies) handed them what the copy
// left of the body, its tail, which the server stored as a whole POST,
// where a plain client sends the caller's bytes once. They must be at
// least as long as what the copy read (see checkedBody.replayLength).
func TestHedgingGetBodyAfterACopysBodyReadInPartNotShorter(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10)
	for _, tc := range carelessGetBodies {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				got := new(bodyLog)
				base := renewBase(got, func(r *http.Request) (*http.Response, error) {
					io.ReadFull(r.Body, make([]byte, 60))
					r.Body.Close()
					return nil, errors.New("read tcp: connection reset by peer")
				})
				tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithoutRateLimit(), WithoutBreaker())
				req := carelessRequest(t, WithIdempotencyKey(context.Background(), "k1"), http.MethodPost, data, tc.getBody)
				resp, err := tr.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}
				time.Sleep(time.Minute) // every copy ends
				synctest.Wait()
				got.mu.Lock()
				defer got.mu.Unlock()
				for _, b := range got.bodies {
					if b != string(data) {
						t.Errorf("the server stored a POST of %d bytes, want only the caller's %d", len(b), len(data))
					}
				}
			})
		})
	}
}
