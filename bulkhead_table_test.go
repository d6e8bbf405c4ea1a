package resilient

import (
	"context"
	"testing"
	"testing/synctest"
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
