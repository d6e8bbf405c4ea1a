package redisquota_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestSubMicrosecondWindowNeitherLocksOutNorSpins: a server whose first
// response announces a quota with a reset 500ns away (X-RateLimit-Reset:
// 0.0000005, seconds from now), a window the Transport estimates at 500ns.
// Redis holds windows in µs: written as 0 there, the lease script read the
// quota as none, and the member wrote it again and leased again every
// millisecond (two Redis calls a millisecond, with no request at all),
// while its requests waited for a lease Redis never granted, refused with
// ErrRateLimited after WithMaxRetryAfter: calls a plain client sends at
// once, for as long as the quota is believed (an hour).
func TestSubMicrosecondWindowNeitherLocksOutNorSpins(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	c := new(scriptCounter)
	s := redisquota.New(newRedis(t, addr, c), redisquota.WithPrefix(prefix))
	defer s.Close()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("X-RateLimit-Limit", "100")
		w.Header().Set("X-RateLimit-Remaining", "99")
		if n == 1 {
			w.Header().Set("X-RateLimit-Reset", "0.0000005")
		}
	}))
	defer srv.Close()
	client := &http.Client{Transport: resilient.New(srv.Client().Transport, resilient.WithQuotaStore(s),
		resilient.WithMaxRetryAfter(time.Second),
		resilient.WithRateLimitKey(func(*http.Request) string { return "key" }))}
	if err := get(client, srv.URL, waitBound); err != nil {
		t.Fatal(err)
	}
	// The counter counts a script call as it is sent: wait for Redis to
	// have run it.
	rdb := newRedis(t, addr)
	var w string
	waitFor(t, "the quota written", func() bool {
		v, err := rdb.HGet(context.Background(), s.StateKey("key"), "window").Result()
		w = v
		return err == nil
	})
	if us, err := strconv.ParseInt(w, 10, 64); err != nil || us <= 0 {
		t.Errorf("the window of a quota of 100 per 500ns is %q µs in Redis, which the lease script reads as no quota", w)
	}
	// The quota allows 100 per 500ns: a plain client sends at once.
	for i := range 3 {
		if err := get(client, srv.URL, waitBound); err != nil {
			t.Fatalf("call %d: %v (rate limited: %v); server hits %d, stats %+v", i+2, err, errors.Is(err, resilient.ErrRateLimited), hits.Load(), s.Stats())
		}
	}
	if n := c.script(redisquota.LearnHash); n > 5 {
		t.Errorf("the quota written %d times; want it once or so", n)
	}
}
