package resilient

import (
	"context"
	"net/http"
	"runtime"
	"testing"
	"time"
	"weak"
)

// okBase is a base that answers 200 to everything; each Transport of
// TestTransportPerCallIsCollected gets its own, so that a weak pointer to
// it tells whether the Transport's chain is still alive.
type okBase struct{ calls int }

func (b *okBase) RoundTrip(r *http.Request) (*http.Response, error) {
	b.calls++
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r, Header: http.Header{}}, nil
}

// A Transport made for one call (a careless caller's New per request, as
// with an http.Client made per request) is garbage once the call is done,
// with its chain and its base: the timer that fires the deadlines of its
// attempts, set for the call's budget (five minutes by default), does not
// keep them alive until it fires. It did: each Transport's chain, about
// 7 KB, and its base lived five minutes after the call (2 GB at 1,000
// requests a second).
func TestTransportPerCallIsCollected(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"default", nil},
		{"attempt timeout", []Option{WithAttemptTimeout(time.Minute)}},
		{"hedging", []Option{WithHedging(Hedging{Delay: time.Minute})}},
		{"everything", []Option{WithAttemptTimeout(time.Minute), WithMaxInFlight(4), WithRateLimit(1000, 10), WithHedging(Hedging{})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 50
			var bases [n]weak.Pointer[okBase]
			for i := range bases {
				b := new(okBase)
				bases[i] = weak.Make(b)
				tr := New(b, tc.opts...)
				resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "https://api.example.com/v1", nil))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			// A stopped timer (a hedge's) leaves the runtime's heap of
			// timers lazily, and holds its function until then: a few
			// collections may pass before the last of them goes.
			alive := n
			for range 10 {
				runtime.GC()
				alive = 0
				for _, p := range bases {
					if p.Value() != nil {
						alive++
					}
				}
				// The last one may still be referenced from this frame.
				if alive <= 1 {
					break
				}
				time.Sleep(time.Millisecond) // let the processors tidy their timers
			}
			if alive > 1 {
				t.Errorf("%d of %d Transports made for one call each are still alive after GC, want at most 1", alive, n)
			}
		})
	}
}
