package resilient

import (
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitScoutAnsweredAsWaitEnds: a host's quota is 100 an hour,
// counted in clock hours, its reset announced with every answer, and it
// answers at once. A client spends the first hour's quota, its last call a
// second before the hour ends, which leaves the pace's bucket without a
// token at the reset; half a second into the new hour it makes a batch of
// 50 calls, which the server takes. The attempts whose turn of the old pace
// passes WithMaxRetryAfter wait for one of them to go as the new window's
// scout (see nextScout), and wake together when that wait ends: one goes,
// and its answer, learned at once, fills the pace's bucket. One that took
// the partition's lock after that answer, having found it not come yet
// just before, was sent to nextScout, which the answer leaves no scout to
// wait for, and refused: the goroutines' order decided, 1 to 40 of the 50
// refused in some 3% of the runs on two cores or more. Each looks at the
// answer as one it woke does, and takes a token of the filled bucket. The
// interleaving needs goroutines running at once: the test runs on two
// cores at least, and makes the batch in many bubbles.
func TestRateLimitScoutAnsweredAsWaitEnds(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	const runs = 400
	failed, first := 0, ""
	for run := range runs {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now().Truncate(time.Hour)
			srv := &hourQuotaServer{announce: func(int) bool { return true }, start: start, ok: map[int]int{}, throttled: map[int]int{}}
			tr := New(handlerRT{srv}, WithMaxRetries(0))
			client := &http.Client{Transport: tr}
			useFirstHour(t, client, start, 99)
			time.Sleep(time.Until(start.Add(time.Hour - time.Second)))
			if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
				t.Fatalf("the first hour's last call: %d, %v", code, err)
			}
			time.Sleep(time.Until(start.Add(time.Hour + 500*time.Millisecond)))
			counts := map[int]int{}
			eachOfBatch(t, client, 50, func(code int, err error, _ time.Duration) {
				counts[code]++
			})
			if counts[200] != 50 {
				if failed++; first == "" {
					first = fmt.Sprintf("run %d: %v (0: refused)", run, counts)
				}
			}
			if n := srv.throttled[0] + srv.throttled[1]; n > 0 {
				t.Errorf("run %d: the host answered %d requests 429; want none", run, n)
			}
			checkNoneInFlight(t, tr)
		})
	}
	if failed > 0 {
		t.Errorf("batch of 50 made after the reset refused calls in %d of %d runs, first %s; want all 50 answered, as a plain client's", failed, runs, first)
	}
}
