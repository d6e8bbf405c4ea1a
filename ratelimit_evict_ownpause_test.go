package resilient

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
)

// TestRateLimitFullTableKeepsTheInsertingHostsPause: a host whose one
// bucket is spent for 30 minutes, and that then names a second bucket of
// its own on another route, keeps the first's wait while another host's
// spent buckets fill the table, or the spent buckets of many other hosts,
// one each: when every partition looked at holds a wait, the one that
// goes is the flooding host's, or the back one, not the inserting host's
// only pause, whose next call on the spent route was otherwise sent into
// its spent quota.
func TestRateLimitFullTableKeepsTheInsertingHostsPause(t *testing.T) {
	for _, many := range []bool{false, true} {
		t.Run("many-hosts="+strconv.FormatBool(many), func(t *testing.T) { testKeepsInsertingHostsPause(t, many) })
	}
}

func testKeepsInsertingHostsPause(t *testing.T, manyHosts bool) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("X-RateLimit-Limit", "100")
			if r.URL.Host == "a.test" {
				// Its own buckets, one per route, each spent for 30 minutes.
				w.Header().Set("X-RateLimit-Remaining", "0")
				w.Header().Set("X-RateLimit-Reset", "1800")
				w.Header().Set("X-RateLimit-Bucket", r.URL.Path[1:])
				return
			}
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", "60")
			w.Header().Set("X-RateLimit-Bucket", "b"+strconv.Itoa(n))
		}}
		tr := New(handlerRT{srv}, WithMaxRetries(0))
		client := &http.Client{Transport: tr}
		rl := rlOf(t, tr)
		rl.maxParts = 4 * maxHeldSkips
		if _, err := do(t, client, "GET", "http://a.test/spent"); err != nil {
			t.Fatal(err)
		}
		for i := 0; rl.len() < rl.maxParts; i++ {
			host := "b.test"
			if manyHosts {
				host = "b" + strconv.Itoa(i) + ".test"
			}
			if _, err := do(t, client, "GET", "http://"+host+"/x"); err != nil {
				t.Fatal(err)
			}
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
