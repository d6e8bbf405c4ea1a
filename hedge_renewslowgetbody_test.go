package resilient

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingRenewSlowGetBodyIsNoStall: the GetBody that renews the
// attempt's body (see TestHedgingTakenOverBodyReadByCopyRenewed) is the
// Transport's wait, not the caller's body stalling: when it outlasts the
// attempt's timeout, the attempt times out, and the call retries, as after
// a copy's slow GetBody. It failed at once with a *RequestError, "request
// body stalled", where a plain client, which calls no GetBody for its
// first send, got a 201 at 20ms. The base writes the body on a goroutine
// of its own, and returns once the attempt's context is done, as
// net/http's does.
func TestHedgingRenewSlowGetBodyIsNoStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := []byte("abcdefghijkl")
		var got bodyLog
		base := numberedBase(func(i int, r *http.Request) (*http.Response, error) {
			switch i {
			case 1:
				time.Sleep(20 * time.Millisecond) // the attempt's dial, past the hedging delay
			case 2:
				return readThenHang(r) // the copy
			}
			type result struct {
				resp *http.Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := got.created(r)
				done <- result{resp, err}
			}()
			select {
			case res := <-done:
				return res.resp, res.err
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
		})
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithAttemptTimeout(time.Second))
		req := sharedSourcePost(data)
		slowRenewal(req, 1500*time.Millisecond) // the attempt's renewal, past its timeout
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		var re *RequestError
		if errors.As(err, &re) || err != nil || resp.StatusCode != 201 {
			t.Errorf("RoundTrip = %v, %v; want a 201 (the renewal's slow GetBody is no stall of the caller's body)", resp, err)
		}
	})
}

// slowRenewal makes the second call of req's GetBody, the attempt's
// renewal of its body (the first is the hedged copy's), take d.
func slowRenewal(req *http.Request, d time.Duration) {
	rewind := req.GetBody
	var gets atomic.Int32
	req.GetBody = func() (io.ReadCloser, error) {
		if gets.Add(1) == 2 {
			time.Sleep(d)
		}
		return rewind()
	}
}

// readThenHang answers a hedged copy as a host that reads its body whole,
// then never answers: it returns once the copy's context is done.
func readThenHang(r *http.Request) (*http.Response, error) {
	io.ReadAll(r.Body)
	r.Body.Close()
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// numberedBase returns a base RoundTripper that hands fn each request with
// its number, from 1, in the order the requests arrive.
func numberedBase(fn func(n int, r *http.Request) (*http.Response, error)) roundTripFunc {
	var calls atomic.Int32
	return func(r *http.Request) (*http.Response, error) { return fn(int(calls.Add(1)), r) }
}
