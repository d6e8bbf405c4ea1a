package resilient

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerSpellingsKeepOpenBreaker: a caller that spells a failing
// host many ways (the case of its name, the leading zeros of its port,
// as URLs built from input do) fills the set with the aliases of the
// host's open breaker. A spelling that finds the set full must not remove
// that breaker to make room for itself: the host's next attempts would
// find a new, closed one, and reach the failing host.
func TestBreakerSpellingsKeepOpenBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			hits.Add(1)
			return &http.Response{StatusCode: http.StatusInternalServerError, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		bkCall(t, tr, "http://api.test/") // trips
		for i := 1; i <= maxBreakers+10; i++ {
			name := []byte("apitest")
			for b := range name {
				if i>>b&1 != 0 {
					name[b] -= 'a' - 'A'
				}
			}
			u := fmt.Sprintf("http://%s.%s:%s80/", name[:3], name[3:], strings.Repeat("0", i>>7))
			if _, _, err := bkCall(t, tr, u); !errors.Is(err, ErrCircuitOpen) {
				t.Fatalf("spelling %d (%s): err = %v, want ErrCircuitOpen", i, u, err)
			}
		}
		_, _, err := bkCall(t, tr, "http://api.test/")
		bkWantOpen(t, err)
		if n := hits.Load(); n != 1 {
			t.Errorf("the host got %d requests, want 1 (the one that tripped its breaker)", n)
		}
	})
}

// TestBreakerSpellingAfterIdle: a host's breaker idle for longer than
// Window + OpenTimeout is removed by the pass that the next insertion
// makes; when that insertion is another spelling of the same host, the
// spelling must not be stored as an alias of the removed breaker, which
// no pass, eviction or ResetHost reaches any more: the host would have two
// breakers, each counting part of its failures, and one of them out of
// ResetHost's reach.
func TestBreakerSpellingAfterIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var status, hits atomic.Int32
		status.Store(http.StatusOK)
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			hits.Add(1)
			return &http.Response{StatusCode: int(status.Load()), Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
		bkCall(t, tr, "http://api.test/")
		time.Sleep(defaultBreakerWindow + defaultBreakerOpenTimeout + time.Second) // idle
		bkCall(t, tr, "http://API.test/")                                          // another spelling, after the idle spell

		// Two failures in a row, one under each spelling, trip the
		// host's one breaker.
		status.Store(http.StatusInternalServerError)
		bkCall(t, tr, "http://API.test/")
		bkCall(t, tr, "http://api.test/")
		for _, u := range []string{"http://api.test/", "http://API.test/"} {
			if s := tr.BreakerState(u); s != BreakerOpen {
				t.Errorf("BreakerState(%q) = %v, want open", u, s)
			}
		}
		before := hits.Load()
		_, _, err := bkCall(t, tr, "http://API.test/")
		bkWantOpen(t, err)
		if hits.Load() != before {
			t.Errorf("the host got a request through its open breaker")
		}

		// ResetHost reaches the breaker under every spelling.
		tr.ResetHost("api.test")
		status.Store(http.StatusOK)
		if code, _, err := bkCall(t, tr, "http://API.test/"); err != nil || code != http.StatusOK {
			t.Errorf("after ResetHost: %d, %v; want 200", code, err)
		}
	})
}

// TestBreakerNewHostDropsSpellingsBeforeOpenBreaker: when a new host
// finds the set full of open breakers, some of them also held under other
// spellings of their host, a spelling goes first: it costs its next
// attempt a lookup, while the open breaker removed in its place would let
// that host's next attempts reach it as it fails.
func TestBreakerNewHostDropsSpellingsBeforeOpenBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api, b := bkDead(), bkDead()
		hosts := bkNet{"api.test": api, "b.test": b, "B.test": b, "b.TEST": b, "new.test": new(bkHost)}
		tr := New(hosts, WithMaxRetries(0), WithoutHedging(), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		tr.breakers.max = 4
		bkCall(t, tr, "http://api.test/") // trips: the least recently used
		bkCall(t, tr, "http://b.test/")   // trips
		for _, u := range []string{"http://B.test/", "http://b.TEST/"} {
			_, _, err := bkCall(t, tr, u) // aliases of b.test's open breaker
			bkWantOpen(t, err)
		}
		if n := tr.breakers.len(); n != 4 {
			t.Fatalf("the set holds %d keys, want 4 (full)", n)
		}
		if code, _, err := bkCall(t, tr, "http://new.test/"); err != nil || code != http.StatusOK {
			t.Fatalf("new.test: %d, %v; want 200", code, err)
		}
		if n := tr.breakers.len(); n > 4 {
			t.Errorf("the set holds %d keys, want at most 4", n)
		}
		if _, _, err := bkCall(t, tr, "http://api.test/"); !errors.Is(err, ErrCircuitOpen) {
			t.Errorf("api.test after a call to another host: err = %v, want ErrCircuitOpen", err)
		}
		for _, u := range []string{"http://b.test/", "http://B.test/", "http://b.TEST/"} {
			if _, _, err := bkCall(t, tr, u); !errors.Is(err, ErrCircuitOpen) {
				t.Errorf("%s after a call to another host: err = %v, want ErrCircuitOpen", u, err)
			}
		}
		if n, m := api.hits.Load(), b.hits.Load(); n != 1 || m != 1 {
			t.Errorf("the failing hosts got %d and %d requests, want 1 each (the ones that tripped their breakers)", n, m)
		}
	})
}

// TestBreakerFullOfStaleOpenBreakers: when the set is full of the open
// breakers of hosts no longer called (dead hosts, called long ago), those
// are dropped as idle once they have seen no attempt for Window +
// OpenTimeout since the set filled, rather than kept while the hosts still
// called share what room is left: two hosts called in turn then removed
// each other's breaker at every call, for ever, and one failing every
// call never tripped its own (it got every request, where its breaker
// lets one probe through per OpenTimeout).
func TestBreakerFullOfStaleOpenBreakers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hosts := bkNet{"a.test": new(bkHost), "failing.test": bkDead()}
		for i := range 3 {
			hosts[fmt.Sprintf("dead%d.test", i)] = bkDead()
		}
		tr := New(hosts, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
		tr.breakers.max = 4
		for i := range 3 {
			for range 2 { // trips
				bkCall(t, tr, fmt.Sprintf("http://dead%d.test/", i))
			}
		}
		time.Sleep(time.Hour) // the dead hosts are called no more
		// call makes n calls to each host, one a second, and returns the
		// requests failing.test got.
		call := func(n int) int32 {
			before := hosts["failing.test"].hits.Load()
			for range n {
				bkCall(t, tr, "http://a.test/")
				bkCall(t, tr, "http://failing.test/")
				time.Sleep(time.Second)
			}
			return hosts["failing.test"].hits.Load() - before
		}
		call(60) // the dead hosts' breakers go idle since the set filled
		want := int32(time.Minute / defaultBreakerOpenTimeout)
		if n := call(60); n > want {
			t.Errorf("failing.test got %d requests in its next 60 calls, want at most %d (a probe per OpenTimeout)", n, want)
		}
	})
}
