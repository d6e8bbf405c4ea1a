package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// lateAnswer delays the answer to a request that carries X-Late by ten
// seconds, after the server counted it: an answer that arrives after
// later ones. ceil announces its reset rounded up to a second ahead (a
// server that rounds up), not h's own (rounded down).
type lateAnswer struct {
	h    http.Handler
	ceil bool
}

func (l lateAnswer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.h.ServeHTTP(w, r)
	if r.Header.Get("X-Late") != "" {
		if l.ceil {
			w.Header().Set("RateLimit-Reset", "1")
		}
		time.Sleep(10 * time.Second)
	}
}

// TestRateLimitLateAnswerOldWindow: a host's quota is 100 an hour,
// counted in clock hours, its reset announced only when the quota runs
// low, in whole seconds. The last request of an hour is sent half a
// second before its end, and counted in it (none left, "Reset: 0"), but
// its answer arrives after the answer to the first request of the next
// hour (99 left, no reset), which filled the pace's bucket. A minute
// later a batch of 50 calls is made, which the server takes, as a plain
// client's would be. The late answer's count, of the old window, set the
// bucket's burst to 1: all but a few of the batch were held to the pace,
// then refused. (Announced a second ahead, "Reset: 1", the late count
// holds the host's calls for that second, and the next answer fills the
// bucket again.)
func TestRateLimitLateAnswerOldWindow(t *testing.T) {
	for _, ceil := range []bool{false, true} {
		t.Run(map[bool]string{false: "reset 0", true: "reset 1"}[ceil], func(t *testing.T) {
			testRateLimitLateAnswerOldWindow(t, ceil)
		})
	}
}

func testRateLimitLateAnswerOldWindow(t *testing.T, ceil bool) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now().Truncate(time.Hour)
		srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, ok: map[int]int{}, throttled: map[int]int{}}
		client := &http.Client{Transport: New(handlerRT{lateAnswer{srv, ceil}}, WithMaxRetries(0))}
		useFirstHour(t, client, start, 99)
		time.Sleep(time.Until(start.Add(time.Hour - 500*time.Millisecond)))
		var wg sync.WaitGroup
		wg.Go(func() {
			req, _ := http.NewRequest("GET", "http://api.test/x", nil)
			req.Header.Set("X-Late", "1")
			resp, err := client.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("the last call of the first hour: %v, %v", resp, err)
				return
			}
			resp.Body.Close()
		})
		time.Sleep(600 * time.Millisecond)
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
			t.Fatalf("the first call of the second hour: %d, %v", code, err)
		}
		wg.Wait()
		time.Sleep(time.Until(start.Add(61 * time.Minute)))
		if ok, refused := sendBatch(t, client, 50); ok != 50 {
			t.Errorf("batch of 50 in a new window of 100, after a late answer of the old one: %d sent, %d refused; want all sent, as a plain client's", ok, refused)
		}
	})
}
