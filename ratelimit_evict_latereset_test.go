package resilient

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// slowTakeQuota is a memQuota whose partition named slow answers its
// Takes by script: each Take of it calls take, outside the partition's
// lock, as a store's round trip runs.
type slowTakeQuota struct {
	m    *memQuota
	slow string
	mu   sync.Mutex
	n    int
	take func(n int, now time.Time) (time.Duration, bool, <-chan struct{})
}

type slowTakePart struct {
	*memPart
	q    *slowTakeQuota
	name string
}

func (q *slowTakeQuota) Partition(name string) QuotaPartition {
	return &slowTakePart{memPart: q.m.Partition(name).(*memPart), q: q, name: name}
}

func (p *slowTakePart) Take(now time.Time) (time.Duration, bool, <-chan struct{}) {
	q := p.q
	q.mu.Lock()
	take := q.take
	if p.name == q.slow && take != nil {
		q.n++
	}
	n := q.n
	q.mu.Unlock()
	if p.name == q.slow && take != nil {
		return take(n, now)
	}
	return p.memPart.Take(now)
}

// TestResetHostOfEvictedWaiterKeepsLaterPause: a ResetHost of a host
// whose only partition the table evicted while a call waits in it, that
// call being in a store's round trip (its Take) then, does not wipe a
// pause the fleet learned after ResetHost returned: the waiter reset the
// store's partition only when it next looked at the reset signal, after
// its Take, and the 429 another member had got meanwhile was forgotten by
// every member.
func TestResetHostOfEvictedWaiterKeepsLaterPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &slowTakeQuota{m: new(memQuota), slow: partKey{scheme: "http", host: "a.test"}.String()}
		a, b, rl, pa := evictedFleet(t, store)
		gate := make(chan struct{})
		inTake := make(chan struct{})
		store.mu.Lock()
		store.take = func(n int, now time.Time) (time.Duration, bool, <-chan struct{}) {
			switch n {
			case 1:
				return time.Second, false, nil // no token yet: ask again in 1s
			case 2:
				close(inTake)
				<-gate                        // the store's round trip
				return time.Second, true, nil // a token, at its turn
			}
			return 0, true, nil
		}
		store.mu.Unlock()
		done := make(chan error, 1)
		go func() {
			// The call waits 1s for the store, 1s for its token, then
			// b's pause of 60s: longer in all than a's WithMaxRetryAfter
			// (60s), which would refuse it. It may wait that long: what
			// is looked at is the store's pause once it wakes.
			ctx := WithCallOptions(context.Background(), WithMaxRetryAfter(2*time.Minute))
			resp, err := roundTrip(t, a, newRequest(t, ctx, http.MethodGet, "http://a.test/", nil))
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		synctest.Wait() // waiting in a.test's partition for the store
		getClosed(t, a, "http://b.test/")
		getClosed(t, a, "http://c.test/") // a.test's partition evicted
		synctest.Wait()
		if !pa.removed.Load() || rl.part(partKey{scheme: "http", host: "a.test"}) != nil {
			t.Fatal("a.test's partition was not evicted, or the table holds a new one")
		}
		<-inTake // the waiter asks the store again, in a round trip
		a.ResetHost("a.test")
		// Another member gets a 429 from a.test after ResetHost returned:
		// the fleet's pause, which the store keeps.
		if err := getClosed(t, b, "http://a.test/"); err != nil {
			t.Fatal(err)
		}
		sp := store.m.part(store.slow)
		sp.mu.Lock()
		want := sp.pause
		sp.mu.Unlock()
		if want.IsZero() {
			t.Fatal("the store holds no pause after b's 429")
		}
		close(gate)
		if err := <-done; err != nil {
			t.Errorf("the call waiting in a.test's evicted partition: %v", err)
		}
		synctest.Wait()
		sp.mu.Lock()
		got, resets := sp.pause, sp.resets
		sp.mu.Unlock()
		if !got.Equal(want) {
			t.Errorf("the store's pause of a.test is %v after the evicted waiter woke (%d resets), want %v: the 429 b got after ResetHost returned", got, resets, want)
		}
	})
}

// evictedFleet returns the Transports a and b of two members sharing
// store, with no retries, of a server that announces a quota to a's calls
// of a.test and pauses b's, and any call of another host, for 60s with a
// 429; a's rate limiter, whose table holds two partitions, and a.test's
// partition in it, made by one call.
func evictedFleet(t *testing.T, store QuotaStore) (a, b *Transport, rl *rateLimiter, pa *partition) {
	t.Helper()
	quota := http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"99"}, "X-Ratelimit-Reset": {"60"}}
	pause := http.Header{"Retry-After": {"60"}}
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		h := quota.Clone()
		code := http.StatusOK
		if req.URL.Host != "a.test" || req.Header.Get("X-Member") == "b" {
			h, code = pause.Clone(), http.StatusTooManyRequests
		}
		return &http.Response{StatusCode: code, Header: h, Body: http.NoBody, Request: req}, nil
	})
	a = New(base, WithMaxRetries(0), WithQuotaStore(store))
	b = New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
		req = req.Clone(req.Context())
		req.Header.Set("X-Member", "b")
		return base(req)
	}), WithMaxRetries(0), WithQuotaStore(store))
	rl = rlOf(t, a)
	rl.maxParts = 2
	if err := getClosed(t, a, "http://a.test/"); err != nil { // a.test's partition, with its quota
		t.Fatal(err)
	}
	pa = rl.part(partKey{scheme: "http", host: "a.test"})
	if pa == nil {
		t.Fatal("a.test has no partition")
	}
	return a, b, rl, pa
}
