package resilient

import (
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingCopyGetBodyPanicKeepsTakenOverBody: a copy that took over the
// attempt's unread body (see TestHedgingCopyTakesOverUnreadBody) and whose
// GetBody panics decides the attempt with its panic, which goes to the
// caller: the attempt, whose base is deaf to its canceled context and
// reads its body later, does not get the body back and send it. It did:
// the server got the write whole although the call had already ended in
// the caller's panic.
func TestHedgingCopyGetBodyPanicKeepsTakenOverBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := []byte("abcdefghijkl")
		var got bodyLog
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			time.Sleep(20 * time.Millisecond) // the attempt's dial, deaf to its context
			return got.created(r)
		})
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithAttemptTimeout(5*time.Second))
		req := sharedSourcePost(data)
		var mu sync.Mutex
		gets := 0
		req.GetBody = func() (io.ReadCloser, error) {
			mu.Lock()
			gets++
			mu.Unlock()
			panic("GetBody exploded") // the copy's, at 10ms
		}
		var p any
		func() {
			defer func() { p = recover() }()
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		if p != "GetBody exploded" {
			t.Errorf("RoundTrip panicked with %v, want GetBody exploded", p)
		}
		got.mu.Lock()
		defer got.mu.Unlock()
		if len(got.bodies) != 0 {
			t.Errorf("the server got bodies %q after the copy's GetBody panicked, want none", got.bodies)
		}
	})
}
