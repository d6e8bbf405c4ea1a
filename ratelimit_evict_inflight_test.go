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

// TestResetHostWakesWaiterOfEvictedPartition: ResetHost wakes the attempts
// waiting for the host's rate limit, as its doc says, even when the host's
// partition was evicted while they waited (a table full of paused
// partitions evicts the back one whatever it holds): for its pause, its
// spent quota, its turn of the pace, and the token or the pause of a
// QuotaStore. They slept on to the end of the wait ResetHost had cleared,
// while the calls made after the eviction went at once.
func TestResetHostWakesWaiterOfEvictedPartition(t *testing.T) {
	pause := http.Header{"Retry-After": {"60"}}
	for _, c := range []struct {
		name  string
		store bool
		learn []http.Header // a.test's answers before the waiting call's: a 429 with a Retry-After, else a 200
	}{
		{"pause", false, []http.Header{pause}},
		{"spent quota", false, []http.Header{{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"60"}}}},
		{"turn of the pace", false, []http.Header{quotaHeader(100), quotaHeader(100)}}, // a turn every 37.9s
		{"store's token", true, []http.Header{quotaHeader(100), quotaHeader(100)}},
		{"store's pause", true, []http.Header{pause}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var aCalls atomic.Int32
				opts := []Option{WithMaxRetries(0)}
				if c.store {
					opts = append(opts, WithQuotaStore(new(memQuota)))
				}
				tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
					h := pause // every other host is paused for a minute
					if req.URL.Host == "a.test" {
						n := int(aCalls.Add(1))
						if n > len(c.learn) {
							return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
						}
						h = c.learn[n-1]
					}
					code := http.StatusOK
					if h.Get("Retry-After") != "" {
						code = http.StatusTooManyRequests
					}
					return &http.Response{StatusCode: code, Header: h.Clone(), Body: http.NoBody, Request: req}, nil
				}), opts...)
				rl := rlOf(t, tr)
				rl.maxParts = 2
				for range c.learn {
					getClosed(t, tr, "http://a.test/")
				}
				pa := rl.part(partKey{scheme: "http", host: "a.test"})
				if pa == nil {
					t.Fatal("a.test has no partition")
				}
				done := make(chan error)
				go func() { done <- getClosed(t, tr, "http://a.test/") }()
				synctest.Wait() // waiting in a.test's partition
				getClosed(t, tr, "http://b.test/")
				getClosed(t, tr, "http://c.test/") // a.test's partition evicted
				synctest.Wait()
				if !pa.removed.Load() {
					t.Fatal("a.test's partition was not evicted")
				}
				if n := aCalls.Load(); int(n) != len(c.learn) {
					t.Fatalf("a.test got %d calls before ResetHost, want %d", n, len(c.learn))
				}
				tr.ResetHost("b.test") // another host's: the call waits on
				synctest.Wait()
				if n := aCalls.Load(); int(n) != len(c.learn) {
					t.Fatalf("a.test got %d calls after ResetHost(b.test), want %d", n, len(c.learn))
				}
				start := time.Now()
				tr.ResetHost("a.test")
				err := <-done
				if waited := time.Since(start); waited > 0 || err != nil {
					t.Errorf("the call waiting in a.test's evicted partition returned %v after ResetHost(a.test), err %v; want at once, with a response", waited, err)
				}
			})
		})
	}
}

// TestResetHostResetsStoreOnceWithEvictedWaiter: a ResetHost of a host
// whose partition the table holds again, after the one a call waits in was
// evicted, clears the store's partition of that host once. The waiter of
// the evicted partition cleared it a second time, after ResetHost had
// returned, from its own goroutine: a pause the fleet learned in between
// (a 429 to a call that ResetHost let go) was wiped, and the calls of every
// member went into the server's 429s again.
func TestResetHostResetsStoreOnceWithEvictedWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pause := http.Header{"Retry-After": {"60"}}
		var aCalls atomic.Int32
		store := new(memQuota)
		tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Host == "a.test" && aCalls.Add(1) > 1 {
				return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
			}
			return &http.Response{StatusCode: http.StatusTooManyRequests, Header: pause.Clone(), Body: http.NoBody, Request: req}, nil
		}), WithMaxRetries(0), WithQuotaStore(store))
		rl := rlOf(t, tr)
		rl.maxParts = 2
		getClosed(t, tr, "http://a.test/") // a.test paused, in the store too
		pa := rl.part(partKey{scheme: "http", host: "a.test"})
		if pa == nil {
			t.Fatal("a.test has no partition")
		}
		done := make(chan error, 2)
		go func() { done <- getClosed(t, tr, "http://a.test/") }()
		synctest.Wait() // waiting in a.test's partition
		getClosed(t, tr, "http://b.test/")
		getClosed(t, tr, "http://c.test/") // a.test's partition evicted
		synctest.Wait()
		if !pa.removed.Load() {
			t.Fatal("a.test's partition was not evicted")
		}
		go func() { done <- getClosed(t, tr, "http://a.test/") }() // waits in a.test's new partition
		synctest.Wait()
		if p := rl.part(partKey{scheme: "http", host: "a.test"}); p == nil || p == pa {
			t.Fatal("the table holds no new partition of a.test")
		}
		sp := store.part(partKey{scheme: "http", host: "a.test"}.String())
		sp.mu.Lock()
		before := sp.resets
		sp.mu.Unlock()
		tr.ResetHost("a.test")
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("a call waiting for a.test: %v", err)
			}
		}
		synctest.Wait()
		sp.mu.Lock()
		resets := sp.resets - before
		sp.mu.Unlock()
		if resets != 1 {
			t.Errorf("one ResetHost(a.test) reset the store's partition of a.test %d times, want 1", resets)
		}
	})
}
