package redisquota_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestSeededCapFollowsALimitChange: the first response of a fleet of two
// says that 49 of 100 remain for the 10s left of the window: the bucket
// is seeded with a cap of 44 tokens until the reset. The server then
// raises the quota to 1000 (950 left), and says so from its next
// response on. The cap counted the old quota's remaining: kept, the fleet
// got 44 tokens and then none until the reset (up to MaxBelievedReset
// away), its calls refused with ErrRateLimited while the server said 900
// remain, which a Transport without a store sends (it paces by the new
// limit). A new limit seeds anew from the response that announced it.
func TestSeededCapFollowsALimitChange(t *testing.T) {
	var mu sync.Mutex
	limit, used := 100, 51
	end := time.Now().Add(10 * time.Second)
	var accepted, rejected int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ok := used < limit
		if ok {
			used++
			accepted++
		} else {
			rejected++
		}
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(limit-used))
		h.Set("X-RateLimit-Reset", strconv.FormatFloat(time.Until(end).Seconds(), 'f', 6, 64))
		mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	var clients []*http.Client
	var stores []*redisquota.Store
	for range 2 {
		s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
		defer s.Close()
		stores = append(stores, s)
		clients = append(clients, &http.Client{Transport: resilient.New(srv.Client().Transport,
			resilient.WithQuotaStore(s), resilient.WithMaxRetries(0), resilient.WithMaxRetryAfter(2*time.Second),
			resilient.WithRateLimitKey(func(*http.Request) string { return "key" }))})
	}
	if err := get(clients[0], srv.URL, waitBound); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the quota seeded", func() bool { return stores[0].Stats().Calls >= 2 })
	mu.Lock()
	limit = 1000 // 949 left
	mu.Unlock()
	// 120 calls: at the new pace (95 a second), a second or so.
	for i := range 120 {
		if err := get(clients[i%2], srv.URL, waitBound); err != nil {
			mu.Lock()
			left := limit - used
			mu.Unlock()
			t.Fatalf("call %d after the limit rose to 1000: %v (rate limited: %v), the server saying %d remain for %v",
				i+1, err, errors.Is(err, resilient.ErrRateLimited), left, time.Until(end).Round(time.Second))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if rejected > 0 {
		t.Errorf("%d requests past the quota", rejected)
	}
}
