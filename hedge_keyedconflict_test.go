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

// TestHedgingKeyedWriteConflictSendsTheNextCopy checks that a copy of a
// keyed write that the server answers with a 409 while the attempt itself
// holds the key (the IETF draft's "a request with this key is in
// progress") does not stop the copies that follow: the 409 is no failure
// of the host, and no answer (see hedgeRun.finish), and a copy sent once
// the server has processed the write gets its stored answer at once, when
// the attempt's own answer is slow on its way back (the tail hedging cuts).
// (Stopped by the first copy's 409, the call waited a second for the
// attempt's answer, MaxHedges 2 working as 1.)
func TestHedgingKeyedWriteConflictSendsTheNextCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		done := map[string]bool{}     // keys whose write was processed
		inFlight := map[string]bool{} // keys whose write is being processed
		n := 0
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			io.Copy(io.Discard, req.Body)
			req.Body.Close()
			key := wireHeader(req.Header, "Idempotency-Key")
			mu.Lock()
			n++
			switch {
			case done[key]:
				mu.Unlock()
				return &http.Response{StatusCode: http.StatusCreated, Header: http.Header{"Idempotent-Replayed": {"true"}}, Body: http.NoBody, Request: req}, nil
			case inFlight[key]:
				mu.Unlock()
				return &http.Response{StatusCode: http.StatusConflict, Request: req, Header: http.Header{"Content-Type": {"application/json"}},
					Body: io.NopCloser(strings.NewReader(`{"error":{"code":"conflict","message":"a request with this key is in progress"}}`))}, nil
			}
			inFlight[key] = true
			mu.Unlock()
			time.Sleep(100 * time.Millisecond) // processed
			mu.Lock()
			delete(inFlight, key)
			done[key] = true
			mu.Unlock()
			select {
			case <-time.After(time.Second): // its answer, slow on its way back
				return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
			case <-req.Context().Done():
				return nil, context.Cause(req.Context())
			}
		})
		tr := New(rt, WithHedging(Hedging{Delay: 60 * time.Millisecond, MaxHedges: 2}), WithKeyHonoringHosts("api.test"))
		var r Report
		start := time.Now()
		resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "POST", "http://api.test/", strings.NewReader("x")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		elapsed := time.Since(start)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if resp.StatusCode != http.StatusCreated || r.Hedges != 2 || n != 3 {
			t.Errorf("status %d, %d copies, %d requests; want 201, 2 and 3", resp.StatusCode, r.Hedges, n)
		}
		if elapsed != 120*time.Millisecond {
			t.Errorf("answered after %v, want 120ms (the second copy's stored answer)", elapsed)
		}
	})
}
