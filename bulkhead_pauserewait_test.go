package resilient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxInFlightSlotWaitsAroundAPauseWithinTheAttemptTimeout pins that
// an attempt that passes its slot on for a pause learned while it waited
// (see errSlotPaused), and then waits for a slot again, waits for slots
// no longer than its attempt timeout in all (README, WithMaxInFlight: a
// full host's attempts wait "no longer than the attempt's deadline"),
// not a whole attempt timeout anew on each wait. Distilled from
// TestBoundsProperty's seed 193606.
//
// One slot, attempt timeout 5s. A GET holds the slot 2s and gets a 429
// with Retry-After: 1; a GET queued behind it is given the slot at 2s,
// passes it on for the pause and waits for it until about 3s; a POST,
// whose partition no pause holds, takes the free slot at 2.5s and hangs
// until its attempt timeout, 7.5s. The queued GET has waited 2s for a
// slot already: its second wait ends about 3s later, not 5s.
func TestMaxInFlightSlotWaitsAroundAPauseWithinTheAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const attemptTimeout = 5 * time.Second
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}
			switch r.URL.Path {
			case "/throttled":
				time.Sleep(2 * time.Second)
				resp.StatusCode = http.StatusTooManyRequests
				resp.Header.Set("Retry-After", "1")
			case "/hangs":
				<-r.Context().Done()
				return nil, context.Cause(r.Context())
			}
			return resp, nil
		})
		var obs observed
		tr := New(base, WithMaxInFlight(1), WithMaxRetries(0), WithAttemptTimeout(attemptTimeout), WithObserver(obs.add))
		var wg sync.WaitGroup
		wg.Go(func() { getIn(t, tr, context.Background(), "http://api.test/throttled") })
		wg.Go(func() {
			time.Sleep(2500 * time.Millisecond) // once the slot was passed on
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodPost, "http://api.test/hangs", nil))
			if err == nil {
				resp.Body.Close()
			}
		})
		time.Sleep(time.Millisecond)
		_, err := getIn(t, tr, context.Background(), "http://api.test/queued")
		wg.Wait()
		a := obs.path("/queued")
		if len(a) != 1 {
			t.Fatalf("attempts of the queued call observed %+v, want 1", a)
		}
		if a[0].SlotWait > attemptTimeout {
			t.Errorf("the queued call waited %v for a slot in all (err %v), past its attempt timeout %v; attempt %+v",
				a[0].SlotWait, err, attemptTimeout, a[0])
		}
		if !errors.Is(err, ErrTooManyInFlight) {
			t.Errorf("the queued call: err %v, want ErrTooManyInFlight (refused at the end of its waits for a slot)", err)
		}
	})
}
