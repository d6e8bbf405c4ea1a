package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitDroppedPaceWakesItsWaiters: a host announced its policy
// once (60 in 50 minutes), then, for more than MaxBelievedReset, a quota
// in use (1 left) without a reset nor the policy: the window learned
// stays, and paces the host at a turn every 53 seconds. Call A takes the
// turn; call B, a second later, waits for the next one. A's answer, late,
// says 59 left, still without a reset: the window no reset confirms is
// dropped, and its pace with it (update). B, which waited for a turn of
// that pace, goes then, as a call made after the answer does, not at the
// turn of a pace no longer known (up to WithMaxRetryAfter later).
func TestRateLimitDroppedPaceWakesItsWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var answered time.Time // when A's answer came
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("RateLimit-Limit", "60")
			switch r.URL.Path {
			case "/a":
				time.Sleep(5 * time.Second)
				w.Header().Set("RateLimit-Remaining", "59")
				mu.Lock()
				answered = time.Now()
				mu.Unlock()
			default:
				w.Header().Set("RateLimit-Remaining", "1")
				if n == 0 {
					w.Header().Set("RateLimit-Policy", "60;w=3000")
				}
			}
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
		for range 8 { // a call every ten minutes: the quota in use
			if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
				t.Fatalf("call: %d, %v", code, err)
			}
			time.Sleep(10 * time.Minute)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if code, err := do(t, client, "GET", "http://api.test/a"); code != 200 || err != nil {
				t.Errorf("A: %d, %v", code, err)
			}
		})
		time.Sleep(time.Second)
		sent := time.Now()
		if code, err := do(t, client, "GET", "http://api.test/b"); code != 200 || err != nil {
			t.Fatalf("B: %d, %v", code, err)
		}
		wg.Wait()
		b := srv.seen("/b")
		mu.Lock()
		defer mu.Unlock()
		if len(b) != 1 || b[0].at.After(answered) {
			t.Errorf("B, called %v before A's answer dropped the pace, sent %v after it (%d sent); want at it", answered.Sub(sent), b[len(b)-1].at.Sub(answered), len(b))
		}
	})
}
