package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingTakenOverBodyBackFromHungCopy: a copy that took over the
// attempt's unread body (see TestHedgingCopyTakesOverUnreadBody) but whose
// own request hangs before it reads it (its dial to a black hole) gives
// the body back to the attempt when the attempt's connection is ready
// first: the attempt sends it, as without hedging, and the call gets its
// answer then, not after the copy's attempt timeout and a retry.
func TestHedgingTakenOverBodyBackFromHungCopy(t *testing.T) {
	for _, tc := range []struct {
		name string
		dial time.Duration // the copy's dial; 0: until it is canceled
	}{{"copy's dial hangs", 0}, {"copy's dial ends after the attempt's", 30 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) { testTakenOverBodyBack(t, tc.dial) })
	}
}

func testTakenOverBodyBack(t *testing.T, copyDial time.Duration) {
	synctest.Test(t, func(t *testing.T) {
		data := []byte("abcdefghijkl")
		var mu sync.Mutex
		var calls int
		var got bodyLog
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			calls++
			i := calls
			mu.Unlock()
			switch {
			case i == 2 && copyDial == 0:
				// The copy's dial hangs until it is canceled.
				<-r.Context().Done()
				r.Body.Close()
				return nil, r.Context().Err()
			case i == 2:
				time.Sleep(copyDial) // deaf to its context
			default:
				time.Sleep(20 * time.Millisecond) // the attempt's dial, past the hedging delay
			}
			return got.created(r)
		})
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithAttemptTimeout(5*time.Second))
		req := sharedSourcePost(data)
		t0 := time.Now()
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		resp.Body.Close()
		d := time.Since(t0)
		time.Sleep(time.Second) // a copy deaf to its context ends
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if resp.StatusCode != 201 || d != 20*time.Millisecond || calls != 2 {
			t.Errorf("the call got %d after %v in %d requests, want 201 after 20ms in 2: the attempt's answer", resp.StatusCode, d, calls)
		}
		got.checkOne(t, data)
	})
}
