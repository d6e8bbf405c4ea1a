package resilient

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingRenewDecidedMeanwhileSendsNoBody: the attempt whose body a
// copy took over and sent renews it from GetBody (see
// TestHedgingTakenOverBodyReadByCopyRenewed) only while it is undecided;
// when the copy's 201 decides it while that GetBody runs, the attempt, its
// base deaf to its canceled context, does not send the body made then, as
// it does not send one reclaimed once its context is done (see
// TestHedgingCopyGetBodyPanicKeepsTakenOverBody). It did: the server got
// the write a second time after the call had its answer.
func TestHedgingRenewDecidedMeanwhileSendsNoBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := []byte("abcdefghijkl")
		var got bodyLog
		base := numberedBase(func(i int, r *http.Request) (*http.Response, error) {
			if i == 1 {
				time.Sleep(20 * time.Millisecond) // the attempt's dial, past the hedging delay, deaf to its context
				return got.created(r)
			}
			// The copy, at 10ms: its body read whole, its 201 at 25ms.
			if err := got.read(r); err != nil {
				return nil, err
			}
			time.Sleep(15 * time.Millisecond)
			return &http.Response{StatusCode: 201, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithAttemptTimeout(5*time.Second))
		req := sharedSourcePost(data)
		slowRenewal(req, 10*time.Millisecond) // the attempt's renewal, from 20ms to 30ms
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		resp.Body.Close()
		time.Sleep(time.Second)
		synctest.Wait()
		if resp.StatusCode != 201 {
			t.Errorf("status = %d, want 201", resp.StatusCode)
		}
		got.checkOne(t, data) // the copy's
	})
}
