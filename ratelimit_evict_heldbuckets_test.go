package resilient

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitFullTableKeepsAPauseFromSpentBuckets: a host paused for 30
// minutes by a 429 keeps its pause while another host, polled at one URL,
// names a fresh bucket on every response, each bucket announced spent
// (Remaining 0) until a reset a minute away, so that each of its
// partitions holds a wait in force. evictTail skipped 16 held partitions
// and then removed the back one whatever it held: the hostile host's
// partitions, cycling through the table, took the paused host's pause with
// them, and its next call was sent into its pause.
func TestRateLimitFullTableKeepsAPauseFromSpentBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			if r.URL.Host == "a.test" {
				if n == 0 {
					w.Header().Set("Retry-After", "1800")
					w.WriteHeader(http.StatusTooManyRequests)
				}
				return
			}
			w.Header().Set("X-RateLimit-Limit", "100")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", "60")
			w.Header().Set("X-RateLimit-Bucket", "b"+strconv.Itoa(n))
		}}
		tr := New(handlerRT{srv}, WithMaxRetries(0))
		client := &http.Client{Transport: tr}
		if code, _ := do(t, client, "GET", "http://a.test/"); code != http.StatusTooManyRequests {
			t.Fatalf("first call: %d, want 429", code)
		}
		rl := rlOf(t, tr)
		const n = 2 * maxRatePartitions
		for i := range n {
			resp, err := client.Get("http://b.test/x")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if l := rl.len(); l > maxRatePartitions {
				t.Fatalf("after %d calls: %d partitions, want at most %d", i+1, l, maxRatePartitions)
			}
		}
		time.Sleep(time.Second)
		_, err := do(t, client, "GET", "http://a.test/")
		if !errors.Is(err, ErrRateLimited) {
			t.Errorf("a.test's call into its 30-minute pause, after %d spent buckets of b.test: err = %v, want ErrRateLimited", n, err)
		}
		if got := len(srv.seen("")) - n; got != 1 {
			t.Errorf("a.test got %d calls, want 1 (the one its pause answers)", got)
		}
	})
}
