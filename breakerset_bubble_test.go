package resilient

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerIdleSweepInsideBubble: a Transport made outside a
// testing/synctest bubble (a package's client, a test's fixture) and used
// inside it reads the bubble's clock, which is years behind the set's
// epoch: every time the set reads is negative, before its first sweep's
// zero. The idle breakers were then never swept (each insertion found the
// last sweep in its future), and the set grew to its bound.
func TestBreakerIdleSweepInsideBubble(t *testing.T) {
	hosts := bkNet{}
	for i := range 4 {
		hosts[fmt.Sprintf("h%d.test", i)] = new(bkHost)
	}
	tr := New(hosts, WithMaxRetries(0))
	synctest.Test(t, func(t *testing.T) {
		for i := range 3 {
			if err := getClosed(t, tr, fmt.Sprintf("http://h%d.test/", i)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * (defaultBreakerWindow + defaultBreakerOpenTimeout))
		if err := getClosed(t, tr, "http://h3.test/"); err != nil {
			t.Fatal(err)
		}
		if n := tr.breakers.len(); n != 1 {
			t.Errorf("%d breakers after the hosts were idle for 80s, want 1: the idle ones were not swept", n)
		}
	})
}
