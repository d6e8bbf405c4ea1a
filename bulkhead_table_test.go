package resilient

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxInFlightAliasOfTheOldestHost checks that a host called under a
// new spelling, when the table is full and the host's canonical key is the
// oldest (the first an eviction would remove), keeps its slots: another
// idle host makes room, and the new spelling shares the host's slots. Were
// the host removed to make room for its own alias, the alias would name
// slots gone from the table, and an attempt would look them up for ever.
func TestMaxInFlightAliasOfTheOldestHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := New(&flightRT{}, WithMaxInFlight(1))
		tr.bulkhead.max = 2
		for _, url := range []string{"http://a.test/x", "http://b.test/x"} {
			if code, err := getIn(t, tr, context.Background(), url); code != 200 {
				t.Fatalf("%s: %d, %v", url, code, err)
			}
		}
		// The table is full (a.test, b.test), a.test the oldest.
		s := tr.bulkhead.slots(breakerKey{"http", "A.test"})
		if s == nil || s.gone() {
			t.Fatalf("the slots of A.test = %p, gone %v; want a.test's, in the table", s, s != nil && s.gone())
		}
		if a := tr.bulkhead.table.load(breakerKey{"http", "a.test"}); a != s {
			t.Errorf("A.test has slots %p, a.test %p: want one host's", s, a)
		}
		if tr.bulkhead.table.load(breakerKey{"http", "b.test"}) != nil {
			t.Error("b.test, idle, is still in the table: it was to make room")
		}
		if code, err := getIn(t, tr, context.Background(), "http://A.test/x"); code != 200 {
			t.Fatalf("A.test: %d, %v", code, err)
		}
	})
}

// TestMaxInFlightSchemeInCapitals: a request whose URL spells its scheme
// in capitals (a URL built by hand: url.Parse lower-cases it) and its
// default port shares the slots of its host, as it shares its breaker: the
// host's canonical key drops the default port of the scheme lower-cased.
// Read as spelled, "HTTP" has no default port, and "HTTP://api.test:80"
// had slots of its own beside those of "http://api.test": a limit of 1 let
// 2 attempts to the host at once.
func TestMaxInFlightSchemeInCapitals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{latency: func(int, *http.Request) time.Duration { return time.Second }}
		tr := New(srv, WithMaxInFlight(1))
		var holder sync.WaitGroup
		defer holder.Wait()
		holder.Go(func() { getIn(t, tr, context.Background(), "http://api.test/hold") })
		synctest.Wait()
		req := newRequest(t, context.Background(), http.MethodGet, "http://api.test:80/x", nil)
		req.URL.Scheme = "HTTP"
		start := time.Now()
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if d := time.Since(start); d != 2*time.Second || srv.maxSeen() != 1 {
			t.Errorf("the call to HTTP://api.test:80 took %v, the host answered %d at once; want 2s (after the holder's slot) and 1", d, srv.maxSeen())
		}
	})
}
