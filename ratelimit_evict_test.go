package resilient

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitFullTableKeepsAPause: a host paused for 30 minutes by a 429
// keeps its pause while another host fills the table of partitions with
// partitions that hold nothing in force: a careless caller that mints a
// token per request, or a server that names a fresh bucket on every
// response, each answer announcing a quota with some left, or spent
// (each of its partitions then holds a wait in force too). The least
// recently used partition was evicted whatever it held, the paused one
// first, and the paused host's next call was sent into its pause (as no
// breaker is removed while a closed one can go: see makeRoom); with spent
// buckets, after 16 of them skipped, the back one still went, until the
// flooding host's own make room (see evictTail).
func TestRateLimitFullTableKeepsAPause(t *testing.T) {
	for _, junk := range []string{"credentials", "buckets", "spent-buckets"} {
		t.Run(junk, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					if r.URL.Host == "a.test" {
						if n == 0 {
							w.Header().Set("Retry-After", "1800")
							w.WriteHeader(http.StatusTooManyRequests)
						}
						return
					}
					w.Header().Set("X-RateLimit-Limit", "100")
					if junk == "spent-buckets" {
						w.Header().Set("X-RateLimit-Remaining", "0")
					} else {
						w.Header().Set("X-RateLimit-Remaining", "99")
					}
					w.Header().Set("X-RateLimit-Reset", "60")
					if junk != "credentials" {
						w.Header().Set("X-RateLimit-Bucket", "b"+strconv.Itoa(n))
					}
				}}
				tr := New(handlerRT{srv}, WithMaxRetries(0))
				client := &http.Client{Transport: tr}
				if code, _ := do(t, client, "GET", "http://a.test/"); code != http.StatusTooManyRequests {
					t.Fatalf("first call: %d, want 429", code)
				}
				rl := rlOf(t, tr)
				const n = 2 * maxRatePartitions
				for i := range n {
					req, _ := http.NewRequest("GET", "http://b.test/x", nil)
					if junk == "credentials" {
						req.Header.Set("Authorization", "Bearer token-"+strconv.Itoa(i))
					}
					resp, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if l := rl.len(); l > maxRatePartitions {
						t.Fatalf("after %d calls: %d partitions, want at most %d", i+1, l, maxRatePartitions)
					}
				}
				time.Sleep(time.Minute)
				_, err := do(t, client, "GET", "http://a.test/")
				if !errors.Is(err, ErrRateLimited) {
					t.Errorf("a.test's call a minute into its 30-minute pause, after %d partitions of b.test's %s: err = %v, want ErrRateLimited", n, junk, err)
				}
				if got := len(srv.seen("")) - n; got != 1 {
					t.Errorf("a.test got %d calls, want 1 (the one its pause answers)", got)
				}
			})
		})
	}
}

// TestRateLimitPlainLimitsSplitOutlivesThePlainTable: X's per-endpoint
// quotas, split once two of its routes announced different plain limits,
// stay split while a caller that mints a token per request fills the table
// of plain limits with another host's (each token's first answer announces
// one): the spent users/me, sent again, gets a 429 that pauses its limit's
// partition alone. The table, full, was emptied, the split with it, and
// that 429 paused the host's partition, which held every other read of the
// token (its searches refused for 15 minutes, where a plain client's go
// through), as clearRoutes says a forgotten split does.
func TestRateLimitPlainLimitsSplitOutlivesThePlainTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newXRT()
		other := http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"99"}, "X-Ratelimit-Reset": {"60"}}
		tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Host == "api.other.test" {
				return &http.Response{StatusCode: http.StatusOK, Header: other, Body: http.NoBody, Request: req}, nil
			}
			return x.RoundTrip(req)
		}))
		get := func(path string) (int, error) { return xGet(t, tr, context.Background(), path) }
		splitXLimits(t, get)
		for i := range maxResourceRoutes + 4 {
			req := newRequest(t, context.Background(), http.MethodGet, "https://api.other.test/items", nil)
			req.Header.Set("Authorization", "Bearer minted-"+strconv.Itoa(i))
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		get("/2/users/me") // spent: a 429, or refused by its limit's partition
		for i := range 3 {
			if code, err := get("/2/tweets/search/recent"); code != 200 {
				t.Errorf("search %d after the plain limits' table filled: %d, %v; want 200", i+1, code, err)
			}
		}
		if x.over > 1 {
			t.Errorf("%d 429s, want users/me's one at most", x.over)
		}
	})
}

// TestRateLimitIdleSweepPastAHeldBack: a partition unused for the idle
// time whose announced reset is still ahead (GitHub's core quota resets
// up to an hour after its last call) is kept by the sweep of idle
// partitions, and must not stay at the back of the list for every later
// lookup to find idle again: each one, an attempt to any host, took the
// table's lock and the partition's, until that reset passed, some 50
// minutes later; and the idle partitions behind it, which hold nothing,
// were kept as long.
func TestRateLimitIdleSweepPastAHeldBack(t *testing.T) {
	held, idle, other := partKey{scheme: "https", host: "api.github.test"}, partKey{scheme: "https", host: "idle.test"}, partKey{scheme: "https", host: "other.test"}
	rl := rlOf(t, New(nil))
	start := time.Now()
	p := rl.lookup(held, true, &lazyNow{start})
	p.mu.Lock()
	p.limit, p.remaining, p.reset = 5000, 4999, start.Add(time.Hour)
	p.mu.Unlock()
	rl.lookup(idle, true, &lazyNow{start})
	later := start.Add(ratePartitionIdle + time.Minute)
	rl.lookup(other, false, &lazyNow{later}) // a success to another host, which sweeps
	if rl.part(held) == nil {
		t.Fatal("the partition whose reset is 49 minutes ahead was dropped")
	}
	if back := time.Duration(rl.since(later) - rl.oldest.Load()); back >= rl.idle {
		t.Errorf("after the sweep, the back of the list is %v idle: every lookup sweeps again, under the table's lock, until the reset 49 minutes ahead", back)
	}
	if rl.part(idle) == nil {
		return
	}
	rl.lookup(other, false, &lazyNow{later})
	if rl.part(idle) != nil {
		t.Errorf("a partition idle for %v that holds nothing is kept behind one whose reset is ahead", ratePartitionIdle+time.Minute)
	}
}
