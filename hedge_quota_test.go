package resilient

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestHedgingTakesNoSharedToken: a hedged copy takes no token of a fleet's
// quota (WithQuotaStore) that paces what the host announced, since a
// store's token is never given back. Before, each copy took the store's
// next token and waited for it, to be canceled when the attempt answered:
// six calls of 300ms to a host of 60 a minute, hedged at 100ms, took 9s
// instead of 4.8s, the store handing out 12 tokens for 6 requests.
func TestHedgingTakesNoSharedToken(t *testing.T) {
	for _, hedged := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
				resilienttest.WithQuota(resilienttest.Quota{Limit: 60, Window: time.Minute, ResetFormat: resilienttest.IETF}),
				resilienttest.WithLatency(300*time.Millisecond))
			defer srv.Close()
			store := new(memQuota)
			opts := []Option{WithQuotaStore(store)}
			if hedged {
				opts = append(opts, WithHedging(Hedging{Delay: 100 * time.Millisecond}))
			}
			tr := New(srv.Transport(), opts...)
			start := time.Now()
			for range 6 {
				if got := get(t, tr, srv.URL+"/v1/usage"); got != 200 {
					t.Fatalf("status %d", got)
				}
			}
			// The first call's takes are free (no quota known yet), its copy's
			// included; the five others take a token each, at 0.95 a second.
			took := time.Since(start)
			perToken := 0.95
			want := 300*time.Millisecond + 4*time.Duration(float64(time.Second)/perToken) + 300*time.Millisecond
			part := store.part("http://altyaa.test reads")
			if took < want || took > want+time.Millisecond || part.takes > 7 {
				t.Errorf("hedged %v: 6 calls took %v and %d tokens of the store, want %v and at most 7", hedged, took, part.takes, want)
			}
		})
	}
}

// TestHedgingNoWaitForSpentQuota: a hedged copy to a host whose announced
// quota is spent (X-RateLimit-Remaining: 0) is not sent, as a copy to a
// host paused after a 429 is not: it does not wait for the quota's reset
// to go out then, seconds after its hedging delay, as one more request of
// the new window. Before, the copy of a slow call waited 3s for the reset
// and was sent.
func TestHedgingNoWaitForSpentQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &latencyRT{
			latency: func(i int) time.Duration {
				if i == 0 {
					return 5 * time.Second // the slow call
				}
				return 0
			},
			header: func(i int) http.Header {
				if i == 1 { // the other call's answer spends the quota
					return http.Header{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"3"}}
				}
				return nil
			},
		}
		tr := New(rt, WithHedging(Hedging{Delay: 100 * time.Millisecond}))
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/slow", nil))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}()
		time.Sleep(10 * time.Millisecond)
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/fast", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		<-done
		if n := rt.count(); n != 2 {
			t.Errorf("%d requests, want 2: no copy while the quota is spent", n)
		}
	})
}

// TestHedgingTakesNoTokenOfAQuotaAnotherMemberLearned: a hedged copy takes
// no token of a QuotaStore that paces a quota another member of the fleet
// heard announced, though this Transport has heard none yet (its partition
// made by its static WithRateLimit). Before, the copy asked the store,
// waited for the token it held for it, and threw it away when the attempt
// answered: two calls of 300ms to a host the fleet paces at one a second,
// its token spent by another member, hedged at 100ms, took 4 tokens of
// the store and answered at 1.3s and 3.3s instead of 1.3s and 2.3s.
func TestHedgingTakesNoTokenOfAQuotaAnotherMemberLearned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &latencyRT{latency: func(int) time.Duration { return 300 * time.Millisecond }}
		fleet := rate.NewLimiter(1, 1)
		fleet.Allow() // another member spent the token of this second
		part := &memPart{lim: fleet}
		store := &memQuota{parts: map[string]*memPart{"http://api.test reads": part}}
		tr := New(rt, WithRateLimit(100, 10), WithQuotaStore(store), WithHedging(Hedging{Delay: 100 * time.Millisecond}))
		start := time.Now()
		var answered []time.Duration
		hedges := 0
		for range 2 {
			var r Report
			resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			answered = append(answered, time.Since(start))
			hedges += r.Hedges
		}
		time.Sleep(time.Minute) // the copies end
		want := []time.Duration{1300 * time.Millisecond, 2300 * time.Millisecond}
		if !slices.Equal(answered, want) || part.takes != 2 || hedges != 0 || rt.count() != 2 {
			t.Errorf("answered at %v with %d hedges, %d requests, %d tokens of the store; want %v, 0, 2 and 2", answered, hedges, rt.count(), part.takes, want)
		}
	})
}

// TestHedgingOfAHostTheStoreNoLongerPaces: a partition whose QuotaStore
// paces no quota hedges its slow calls, though the store made one of its
// attempts wait before: for its first read of the partition's state
// (redisquota's: no token until Redis answers, which is no pace), or to
// pace a quota that ResetHost then cleared for the fleet, or that it last
// paced longer ago than a quota no response announces is believed
// (MaxBelievedReset). Before, that one wait marked the partition paced by
// the store for its whole life: the slow call after it got no copy, and
// answered at 1m instead of 100ms+10ms.
func TestHedgingOfAHostTheStoreNoLongerPaces(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first func() (time.Duration, bool) // the store's answer to the first call
		then  func(tr *Transport)
	}{
		{"the store's first read", func() (time.Duration, bool) { return 5 * time.Millisecond, false }, func(*Transport) {}},
		{"ResetHost", func() (time.Duration, bool) { return time.Second, true }, func(tr *Transport) { tr.ResetHost("api.test") }},
		{"paced an hour ago", func() (time.Duration, bool) { return time.Second, true }, func(*Transport) { time.Sleep(MaxBelievedReset) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &latencyRT{latency: func(i int) time.Duration {
					if i == 1 {
						return time.Minute // the second call's attempt: the slow tail
					}
					return 10 * time.Millisecond
				}}
				part := &memPart{take: func(n int, now time.Time) (time.Duration, bool, <-chan struct{}) {
					if n == 1 {
						d, ok := tc.first()
						return d, ok, nil
					}
					return 0, true, nil // unpaced: the fleet knows no quota (now)
				}}
				store := &memQuota{parts: map[string]*memPart{"http://api.test reads": part}}
				tr := New(rt, WithQuotaStore(store), WithHedging(Hedging{Delay: 100 * time.Millisecond}))
				if got := get(t, tr, "http://api.test/first"); got != 200 {
					t.Fatalf("status %d", got)
				}
				tc.then(tr)
				took, r := timedGet(t, tr, "http://api.test/slow")
				if want := 110 * time.Millisecond; took != want || r.Hedges != 1 {
					t.Errorf("the slow call answered after %v with %d hedges, want %v and 1: the store paces no quota", took, r.Hedges, want)
				}
			})
		})
	}
}

// TestHedgingWaitsForNoTokenTheStoreHoldsForLater: a hedged copy that the
// QuotaStore would let go only later (a token held for it at the fleet's
// next turn, or none yet) is refused at once, though the store had paced
// no attempt of the partition before: it does not wait for the store to
// go out then, long after its hedging delay, with a token it would throw
// away once the attempt answered first.
func TestHedgingWaitsForNoTokenTheStoreHoldsForLater(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool // the store holds a token for the copy
	}{{"token held for later", true}, {"no token yet", false}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &latencyRT{latency: func(i int) time.Duration {
					if i == 0 {
						return time.Minute // the attempt: the slow tail
					}
					return 10 * time.Millisecond
				}}
				part := &memPart{take: func(n int, now time.Time) (time.Duration, bool, <-chan struct{}) {
					if n == 2 {
						return 5 * time.Second, tc.ok, nil // the copy's: go in 5s
					}
					return 0, true, nil
				}}
				store := &memQuota{parts: map[string]*memPart{"http://api.test reads": part}}
				tr := New(rt, WithQuotaStore(store), WithHedging(Hedging{Delay: 100 * time.Millisecond}))
				took, r := timedGet(t, tr, "http://api.test/slow")
				if took != time.Minute || r.Hedges != 0 || rt.count() != 1 {
					t.Errorf("answered after %v with %d hedges, %d requests; want 1m, 0 and 1: the copy waits for none of the store's turns", took, r.Hedges, rt.count())
				}
			})
		})
	}
}
