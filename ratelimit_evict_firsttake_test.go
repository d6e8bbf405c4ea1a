package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// hookedQuota is a memQuota whose partition named slow calls, once each,
// the hooks set for its PauseChanged and its Take, outside the partition's
// lock, as a store's round trip runs.
type hookedQuota struct {
	m     *memQuota
	slow  string
	mu    sync.Mutex
	watch func()
	take  func() (time.Duration, bool, <-chan struct{})
}

type hookedPart struct {
	*memPart
	q    *hookedQuota
	slow bool
}

func (q *hookedQuota) Partition(name string) QuotaPartition {
	return &hookedPart{memPart: q.m.Partition(name).(*memPart), q: q, slow: name == q.slow}
}

func (p *hookedPart) PauseChanged() <-chan struct{} {
	if p.slow {
		p.q.mu.Lock()
		watch := p.q.watch
		p.q.watch = nil
		p.q.mu.Unlock()
		if watch != nil {
			watch()
		}
	}
	return p.memPart.PauseChanged()
}

func (p *hookedPart) Take(now time.Time) (time.Duration, bool, <-chan struct{}) {
	if p.slow {
		p.q.mu.Lock()
		take := p.q.take
		p.q.take = nil
		p.q.mu.Unlock()
		if take != nil {
			return take()
		}
	}
	return p.memPart.Take(now)
}

// TestResetHostResetsStoreOfEvictedFirstTake: a call that found a.test's
// partition just before the table evicted it, and asks the store for its
// token in that partition when ResetHost(a.test) is made, has the store's
// partition of a.test reset by ResetHost before it returns, once, and not
// again when the call wakes: the pause another member learned after
// ResetHost returned is kept, and the evicted partition is no longer held
// for ResetHost once its call is done.
func TestResetHostResetsStoreOfEvictedFirstTake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		key := partKey{scheme: "http", host: "a.test"}
		store := &hookedQuota{m: new(memQuota), slow: key.String()}
		a, b, rl, pa := evictedFleet(t, store)
		inWatch, evicted := make(chan struct{}), make(chan struct{})
		inTake, gate := make(chan struct{}), make(chan struct{})
		store.mu.Lock()
		store.watch = func() {
			close(inWatch)
			<-evicted // the call holds a.test's partition, not yet its lock
		}
		store.take = func() (time.Duration, bool, <-chan struct{}) {
			close(inTake)
			<-gate                        // the store's round trip
			return time.Second, true, nil // a token, at its turn
		}
		store.mu.Unlock()
		done := make(chan error, 1)
		go func() { done <- getClosed(t, a, "http://a.test/") }()
		<-inWatch
		getClosed(t, a, "http://b.test/")
		getClosed(t, a, "http://c.test/") // a.test's partition evicted
		if !pa.removed.Load() || rl.part(key) != nil {
			t.Fatal("a.test's partition was not evicted, or the table holds a new one")
		}
		close(evicted)
		<-inTake // the call asks the store in the evicted partition
		sp := store.m.part(store.slow)
		sp.mu.Lock()
		before := sp.resets
		sp.mu.Unlock()
		a.ResetHost("a.test")
		sp.mu.Lock()
		resets := sp.resets - before
		sp.mu.Unlock()
		if resets != 1 {
			t.Errorf("ResetHost(a.test) reset the store's partition of a.test %d times before it returned, want 1", resets)
		}
		if err := getClosed(t, b, "http://a.test/"); err != nil { // the fleet's pause, after ResetHost
			t.Fatal(err)
		}
		sp.mu.Lock()
		want := sp.pause
		sp.mu.Unlock()
		if want.IsZero() {
			t.Fatal("the store holds no pause after b's 429")
		}
		close(gate)
		if err := <-done; err != nil {
			t.Errorf("the call in a.test's evicted partition: %v", err)
		}
		synctest.Wait()
		sp.mu.Lock()
		got, resets := sp.pause, sp.resets-before
		sp.mu.Unlock()
		if !got.Equal(want) || resets != 1 {
			t.Errorf("the store's partition of a.test: pause %v after %d resets once the call woke, want %v after 1", got, resets, want)
		}
		rl.orphans.mu.Lock()
		held := len(rl.orphans.set)
		rl.orphans.mu.Unlock()
		if held != 0 || pa.waiters.Load() != 0 {
			t.Errorf("%d evicted partitions held for ResetHost, a.test's with %d waiters, once no call waits; want none", held, pa.waiters.Load())
		}
	})
}

// TestEvictedWaiterWhoseStorePanicsIsNotHeld: a call counted a waiter of
// a.test's evicted partition (it asks the store for its token there) whose
// store's Take panics leaves the partition held for no ResetHost: the
// panic goes to the call's caller, and the count of waiters with it.
func TestEvictedWaiterWhoseStorePanicsIsNotHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			h := http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"99"}, "X-Ratelimit-Reset": {"60"}}
			code := http.StatusOK
			if req.URL.Host != "a.test" {
				h, code = http.Header{"Retry-After": {"60"}}, http.StatusTooManyRequests
			}
			return &http.Response{StatusCode: code, Header: h, Body: http.NoBody, Request: req}, nil
		})
		key := partKey{scheme: "http", host: "a.test"}
		store := &hookedQuota{m: new(memQuota), slow: key.String()}
		a := New(base, WithMaxRetries(0), WithQuotaStore(store))
		rl := rlOf(t, a)
		rl.maxParts = 2
		if err := getClosed(t, a, "http://a.test/"); err != nil {
			t.Fatal(err)
		}
		pa := rl.part(key)
		if pa == nil {
			t.Fatal("a.test has no partition")
		}
		inWatch, evicted := make(chan struct{}), make(chan struct{})
		store.mu.Lock()
		store.watch = func() {
			close(inWatch)
			<-evicted
		}
		store.take = func() (time.Duration, bool, <-chan struct{}) { panic("store exploded") }
		store.mu.Unlock()
		done := make(chan any, 1)
		go func() {
			defer func() { done <- recover() }()
			getClosed(t, a, "http://a.test/")
		}()
		<-inWatch
		getClosed(t, a, "http://b.test/")
		getClosed(t, a, "http://c.test/") // a.test's partition evicted
		if !pa.removed.Load() {
			t.Fatal("a.test's partition was not evicted")
		}
		close(evicted)
		if p := <-done; p != "store exploded" {
			t.Fatalf("the call recovered %v, want the store's panic", p)
		}
		rl.orphans.mu.Lock()
		held := len(rl.orphans.set)
		rl.orphans.mu.Unlock()
		if held != 0 || pa.waiters.Load() != 0 {
			t.Errorf("%d evicted partitions held for ResetHost, a.test's with %d waiters, after its only call panicked; want none", held, pa.waiters.Load())
		}
	})
}
