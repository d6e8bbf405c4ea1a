package resilient

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
)

// TestRateLimitFullTableKeepsTheInsertingHostsPauseAtTheBack: a host that
// names its second bucket in a table full of spent buckets of many hosts,
// one each, keeps its first bucket's wait wherever that bucket lies in the
// table's order. When the first bucket lay just past the held partitions
// that one eviction looks at (maxHeldSkips of them), it was the back one
// once those went to the front, and it went: the host lost its spent
// bucket's 30-minute wait to its own next partition and sent into it.
func TestRateLimitFullTableKeepsTheInsertingHostsPauseAtTheBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("X-RateLimit-Limit", "100")
			w.Header().Set("X-RateLimit-Remaining", "0")
			if r.URL.Host == "a.test" {
				w.Header().Set("X-RateLimit-Reset", "1800")
				w.Header().Set("X-RateLimit-Bucket", r.URL.Path[1:])
				return
			}
			w.Header().Set("X-RateLimit-Reset", "60")
			w.Header().Set("X-RateLimit-Bucket", "b"+strconv.Itoa(n))
		}}
		tr := New(handlerRT{srv}, WithMaxRetries(0))
		client := &http.Client{Transport: tr}
		rl := rlOf(t, tr)
		rl.maxParts = 4 * maxHeldSkips
		host := 0
		other := func() {
			t.Helper()
			if _, err := do(t, client, "GET", "http://b"+strconv.Itoa(host)+".test/x"); err != nil {
				t.Fatal(err)
			}
			host++
		}
		for range maxHeldSkips {
			other() // the back of the table: what the eviction looks at
		}
		if _, err := do(t, client, "GET", "http://a.test/spent"); err != nil {
			t.Fatal(err)
		}
		for rl.len() < rl.maxParts {
			other()
		}
		if _, err := do(t, client, "GET", "http://a.test/other"); err != nil {
			t.Fatal(err)
		}
		before := len(srv.seen(""))
		_, err := do(t, client, "GET", "http://a.test/spent")
		if !errors.Is(err, ErrRateLimited) {
			t.Errorf("a.test's call into its spent bucket, after a second bucket of its own in a table full of spent buckets of other hosts: err = %v, want ErrRateLimited", err)
		}
		if got := len(srv.seen("")) - before; got != 0 {
			t.Errorf("a.test's spent route got %d calls, want 0", got)
		}
	})
}
