package resilient

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitEvictionKeepsAPartitionInFlight: a partition may be
// evicted while one of its attempts is in flight (a caller that mints a
// token per request fills the table), and the 429 that attempt gets then
// pauses the partition its credential's next calls find. It was learned
// in the evicted partition, no longer in the table, and a.test's next
// call, which found a new one that knew nothing, was sent into the
// 30-minute pause the server had just asked for.
func TestRateLimitEvictionKeepsAPartitionInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		quota := http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"99"}, "X-Ratelimit-Reset": {"60"}}
		release := make(chan struct{})
		var aCalls atomic.Int32
		tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Host != "a.test" {
				return &http.Response{StatusCode: http.StatusOK, Header: quota.Clone(), Body: http.NoBody, Request: req}, nil
			}
			switch aCalls.Add(1) {
			case 1:
				return &http.Response{StatusCode: http.StatusOK, Header: quota.Clone(), Body: http.NoBody, Request: req}, nil
			case 2:
				<-release
				h := http.Header{"Retry-After": {"1800"}}
				return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h, Body: http.NoBody, Request: req}, nil
			}
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
		}), WithMaxRetries(0))
		get := func(url, token string) (*http.Response, error) {
			req := newRequest(t, context.Background(), http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			return resp, err
		}
		if _, err := get("http://a.test/", "a"); err != nil {
			t.Fatal(err)
		}
		done := make(chan int)
		go func() {
			resp, err := get("http://a.test/", "a")
			if err != nil {
				t.Error(err)
				done <- 0
				return
			}
			done <- resp.StatusCode
		}()
		synctest.Wait() // a.test's second attempt is in flight
		rl := rlOf(t, tr)
		for i := range 3 * maxRatePartitions {
			if _, err := get("http://b.test/x", "minted-"+strconv.Itoa(i)); err != nil {
				t.Fatal(err)
			}
		}
		close(release)
		if code := <-done; code != http.StatusTooManyRequests {
			t.Fatalf("a.test's second call: %d, want 429", code)
		}
		if l := rl.len(); l > maxRatePartitions {
			t.Errorf("%d partitions, want at most %d", l, maxRatePartitions)
		}
		time.Sleep(time.Minute)
		_, err := get("http://a.test/", "a")
		if !errors.Is(err, ErrRateLimited) {
			t.Errorf("a.test's call a minute into the 30-minute pause its in-flight attempt's 429 asked for, after %d partitions of other credentials: err = %v, want ErrRateLimited", 3*maxRatePartitions, err)
		}
		if n := aCalls.Load(); n != 2 {
			t.Errorf("a.test got %d calls, want 2 (the third is held by the pause)", n)
		}
	})
}
