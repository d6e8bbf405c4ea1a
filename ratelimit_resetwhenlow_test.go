package resilient

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitResetWhenLowNewWindowBurst: a host's quota is 100 an hour,
// counted in clock hours, and it announces the reset only when fewer than
// 10 requests are left, or only with a 429 (vendors' habits). A client
// spends the quota in the last ten minutes of an hour: the resets of the
// last responses, ten minutes ahead at most, estimate the window, and the
// pace, and the last says that none is left until the hour. A minute into the next hour, a
// batch of 50 calls is made, which the server takes (its responses say
// that 50 and more remain, without a reset), as a plain client's would
// be. Paced by the spent window's bucket, refilled a turn every six
// seconds, all but a few were held up to WithMaxRetryAfter, then refused.
func TestRateLimitResetWhenLowNewWindowBurst(t *testing.T) {
	for _, tc := range []struct {
		name  string
		calls int // the first hour's, its quota spent
		// reset says whether a response with left requests left
		// announces the reset; spent, whether one that found none left
		// is a 429.
		reset func(left int) bool
		spent bool
	}{
		{"reset when low", 100, func(left int) bool { return left < 10 }, false},
		{"reset on 429 only", 101, func(int) bool { return false }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var hour time.Time
				used := 0
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					now := time.Now()
					mu.Lock()
					if h := now.Truncate(time.Hour); !h.Equal(hour) {
						hour, used = h, 0
					}
					left, over := 100-used, used == 100
					if !over {
						used++
						left--
					}
					mu.Unlock()
					w.Header().Set("RateLimit-Limit", "100")
					w.Header().Set("RateLimit-Remaining", strconv.Itoa(left))
					if tc.reset(left) || over && tc.spent {
						w.Header().Set("RateLimit-Reset", strconv.Itoa(int(hour.Add(time.Hour).Sub(now)/time.Second)))
					}
					if over && tc.spent {
						w.WriteHeader(http.StatusTooManyRequests)
					}
				}}
				client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
				start := time.Now().Truncate(time.Hour)
				time.Sleep(time.Until(start.Add(50 * time.Minute)))
				for i := range tc.calls {
					code, err := do(t, client, "GET", "http://api.test/x")
					if err != nil || code != 200 && (i < 100 || code != http.StatusTooManyRequests) {
						t.Fatalf("call %d of the first hour: %d, %v", i, code, err)
					}
				}
				time.Sleep(time.Until(start.Add(61 * time.Minute)))
				if ok, refused := sendBatch(t, client, 50); ok != 50 {
					t.Errorf("batch of 50 in a new window of 100: %d sent, %d refused; want all sent, as a plain client's", ok, refused)
				}
			})
		})
	}
}

// sendBatch makes n GETs of http://api.test/x through client at once, and
// returns how many were answered 200 and how many the Transport refused
// (ErrRateLimited); any other outcome is an error of t.
func sendBatch(t *testing.T, client *http.Client, n int) (ok, refused int64) {
	t.Helper()
	var sent, held atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			code, err := do(t, client, "GET", "http://api.test/x")
			switch {
			case code == 200:
				sent.Add(1)
			case errors.Is(err, ErrRateLimited):
				held.Add(1)
			default:
				t.Errorf("call of the batch: %d, %v", code, err)
			}
		})
	}
	wg.Wait()
	return sent.Load(), held.Load()
}
