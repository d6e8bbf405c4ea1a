package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// failFirstAfter answers the first request it gets at or after from with
// a 500 that announces no quota (a proxy's, or the host's error page),
// without passing it to h; h answers the others.
type failFirstAfter struct {
	h    http.Handler
	from time.Time

	mu     sync.Mutex
	failed bool
}

func (f *failFirstAfter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	fail := !f.failed && !time.Now().Before(f.from)
	f.failed = f.failed || fail
	f.mu.Unlock()
	if !fail {
		f.h.ServeHTTP(w, r)
		return
	}
	time.Sleep(300 * time.Millisecond)
	w.WriteHeader(http.StatusInternalServerError)
}

// TestRateLimitNewWindowScoutFailed: as in
// TestRateLimitLowWindowNewWindowBurst, a batch of 50 calls is made a
// minute into the next hour of a quota of 100 an hour, the old window's
// last count 1 left, and the host answers in 300 ms; but the first
// request of the batch, the new window's scout, is answered 500 without a
// count. The others, which the server takes, are answered, as a plain
// client's would be, but for the one that failed.
func TestRateLimitNewWindowScoutFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now().Truncate(time.Hour)
		srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 300 * time.Millisecond, ok: map[int]int{}, throttled: map[int]int{}}
		client := &http.Client{Transport: New(handlerRT{&failFirstAfter{h: srv, from: start.Add(61 * time.Minute)}}, WithMaxRetries(0))}
		time.Sleep(time.Until(start.Add(50 * time.Minute)))
		for i := range 99 {
			if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
				t.Fatalf("call %d of the first hour: %d, %v", i, code, err)
			}
		}
		time.Sleep(time.Until(start.Add(61 * time.Minute)))
		var sent, failed, refused int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				code, err := do(t, client, "GET", "http://api.test/x")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case code == 200:
					sent++
				case code == 500:
					failed++
				default:
					refused++
					if refused == 1 {
						t.Logf("refused: %d, %v", code, err)
					}
				}
			})
		}
		wg.Wait()
		if sent != 49 || failed != 1 {
			t.Errorf("batch of 50 in a new window of 100, its scout answered 500: %d sent, %d failed, %d refused; want 49 sent and 1 failed, as a plain client's", sent, failed, refused)
		}
	})
}
