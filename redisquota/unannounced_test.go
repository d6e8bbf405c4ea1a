package redisquota_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestFleetQuotaNoLongerAnnounced: one response to member A announces a
// quota of 10 an hour; the responses after it, to A and to B, announce
// none. The fleet is paced by it (B's calls past its first token are
// refused: no token within the second WithMaxRetryAfter allows), but no
// longer than resilient.MaxBelievedReset after a response last announced
// it, as a Transport without a store is: once that long has passed (in
// Redis's state, and in the members' times, moved back), the calls of both
// members go unpaced, and neither member's stale view writes the quota
// again. A fresh announcement to A paces the fleet again, B included. (The
// quota paced the fleet until the state expired, a day after its last
// use: B's calls were refused.)
func TestFleetQuotaNoLongerAnnounced(t *testing.T) {
	f := twoMembers(t)
	rdb := newRedis(t, f.addr)
	var announce atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if announce.Load() {
			w.Header().Set("X-RateLimit-Limit", "10")
			w.Header().Set("X-RateLimit-Remaining", "9")
			w.Header().Set("X-RateLimit-Reset", "3600")
		}
	}))
	defer srv.Close()
	opts := []resilient.Option{resilient.WithMaxRetries(0), resilient.WithMaxRetryAfter(time.Second)}
	a := &http.Client{Transport: resilient.New(srv.Client().Transport, append(opts, resilient.WithQuotaStore(f.a))...)}
	b := &http.Client{Transport: resilient.New(srv.Client().Transport, append(opts, resilient.WithQuotaStore(f.b))...)}
	name := "http://" + strings.TrimPrefix(srv.URL, "http://") + " reads"
	key := f.a.StateKey(name)
	// calls makes n calls through c, and returns how many the fleet's
	// pace refused.
	calls := func(c *http.Client, n int) (refused int) {
		t.Helper()
		for range n {
			resp, err := c.Get(srv.URL)
			switch {
			case errors.Is(err, resilient.ErrRateLimited):
				refused++
			case err != nil:
				t.Fatal(err)
			default:
				resp.Body.Close()
			}
		}
		return refused
	}

	announce.Store(true)
	calls(a, 1)
	announce.Store(false)
	waitFor(t, "Redis holds the quota", func() bool { return readWindow(t, rdb, key).limit == 10 })
	calls(b, 1) // B's partition, which loads the state
	qa, qb := f.a.Partition(name), f.b.Partition(name)
	waitFor(t, "B knows the quota", func() bool { l, _ := redisquota.Known(qb); return l == 10 })
	if n := calls(b, 3); n == 0 {
		t.Fatalf("B's calls: none refused while the quota is announced; want it paced")
	}

	// MaxBelievedReset and more pass without a response announcing it.
	age := resilient.MaxBelievedReset + time.Minute
	// A, which heard it, first, so that a lease of A's meanwhile does not
	// tell Redis of a time since; B, which asks for a lease once it finds
	// its view that old, after Redis, so that its lease reads Redis's
	// state aged; and A again, in case a lease of its own read it before.
	redisquota.Unheard(qa, age)
	st := readWindow(t, rdb, key)
	if err := rdb.HSet(context.Background(), key, "lset", us(st.lset-age.Microseconds()),
		"lseen", us(st.lseen-age.Microseconds()), "lheard", us(st.lseen-age.Microseconds())).Err(); err != nil {
		t.Fatal(err)
	}
	redisquota.Unheard(qa, age)
	redisquota.Unheard(qb, age)
	nb := calls(b, 5)
	na := calls(a, 5)
	if na+nb != 0 {
		t.Errorf("%d of B's 5 calls and %d of A's refused by a quota no response has announced for %v; want none", nb, na, age)
	}
	if l := readWindow(t, rdb, key).limit; l != 0 {
		t.Errorf("Redis holds a quota of %d; want none: no response announced it", l)
	}

	// A fresh announcement paces the fleet again.
	announce.Store(true)
	calls(a, 1)
	announce.Store(false)
	waitFor(t, "B knows the quota again", func() bool { l, _ := redisquota.Known(qb); return l == 10 })
	if n := calls(b, 3); n == 0 {
		t.Errorf("B's calls: none refused after A's fresh announcement; want it paced again")
	}
}
