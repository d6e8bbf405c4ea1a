package redisquota_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// spentServer is a base RoundTripper for a host with fixed windows of
// limit requests from start, announced with X-RateLimit-Limit, -Remaining
// and -Reset (seconds from now) on every answer, and answered with a 429
// when spent. Of its first window, other clients of the key have spent
// all but two requests, and every answer of it says none remain.
type spentServer struct {
	limit  int
	window time.Duration
	start  time.Time

	mu        sync.Mutex
	used      map[int64]int
	hits      int
	throttled int
}

func (s *spentServer) RoundTrip(req *http.Request) (*http.Response, error) {
	now := time.Now()
	s.mu.Lock()
	s.hits++
	w := int64(now.Sub(s.start) / s.window)
	if s.used == nil {
		s.used = map[int64]int{0: s.limit - 2}
	}
	status := http.StatusOK
	if s.used[w] < s.limit {
		s.used[w]++
	} else {
		status = http.StatusTooManyRequests
		s.throttled++
	}
	remaining := s.limit - s.used[w]
	if w == 0 {
		remaining = 0
	}
	reset := s.start.Add(time.Duration(w+1) * s.window).Sub(now)
	s.mu.Unlock()
	h := http.Header{}
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(reset.Seconds(), 'f', 3, 64))
	return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
}

// TestFleetSpentQuotaWaitersGoAtTheReset: the quota of 400 requests each
// 6 s is spent at t=0 (member A's answer says none remain, the reset 6 s
// ahead), and 8 calls of A wait for its reset, within
// WithMaxRetryAfter(6s); B is the fleet's other member. At the reset the
// fleet's bucket paces the new window (a token each 16 ms), and the
// server takes them all: none may be refused after waiting the whole
// window. Before, all but the first one or two were refused at the reset,
// their tokens a few ms past the bound of the server's waits in all.
func TestFleetSpentQuotaWaitersGoAtTheReset(t *testing.T) {
	f := twoMembers(t)
	srv := &spentServer{limit: 400, window: 6 * time.Second, start: time.Now()}
	var trs []http.RoundTripper
	for _, s := range []*redisquota.Store{f.a, f.b} {
		trs = append(trs, resilient.New(srv, resilient.WithQuotaStore(s), resilient.WithMaxRetryAfter(6*time.Second),
			resilient.WithoutBreaker(), resilient.WithoutRetryBudget()))
	}
	get := func(tr http.RoundTripper) (int, error) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://api.test/v1/items", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if status, err := get(trs[0]); status != http.StatusOK {
		t.Fatalf("member A's first call: %d, %v", status, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused, served := 0, 0
	for i := range 8 {
		wg.Go(func() {
			status, err := get(trs[0])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && status == http.StatusOK:
				served++
			case errors.Is(err, resilient.ErrRateLimited):
				refused++
				t.Logf("waiter %d refused at %v: %v", i, time.Since(srv.start), err)
			default:
				t.Errorf("waiter %d: %d, %v", i, status, err)
			}
		})
	}
	wg.Wait()
	srv.mu.Lock()
	hits, throttled := srv.hits, srv.throttled
	srv.mu.Unlock()
	if refused != 0 || served != 8 || throttled != 0 {
		t.Errorf("%d waiters refused, %d served; the server got %d requests, %d answered 429; want none refused, 8 served, none 429", refused, served, hits, throttled)
	}
}
