package resilient

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestBreakerIdleAfterUse checks that a breaker whose host was called more
// than once, then not at all for longer than Window + OpenTimeout, is
// removed by the sweeps as one called once is (TestBreakerEviction): the
// sweep that finds it used gives it its second chance, and the next one
// that finds it unused since removes it.
func TestBreakerIdleAfterUse(t *testing.T) {
	bkSynctestRun(t, "used twice", func(t *testing.T) {
		bt := bkMiddleware(newCannedRT(http.StatusOK, http.Header{}), 64)
		for i := range 8 {
			for range 2 { // the second call finds the breaker: used
				bkCall(t, bt, fmt.Sprintf("http://h%d.test/", i))
			}
		}
		time.Sleep(41 * time.Second)       // Window + OpenTimeout + 1s
		bkCall(t, bt, "http://new1.test/") // a sweep: h0…h7 were used
		time.Sleep(41 * time.Second)
		bkCall(t, bt, "http://new2.test/") // a sweep: they were not since
		for i := range 8 {
			if bkHas(bt, "http", fmt.Sprintf("h%d.test", i)) {
				t.Errorf("h%d.test, idle for 82s, is still in the set", i)
			}
		}
		if n := bt.set.len(); n > 2 {
			t.Errorf("%d breakers after two sweeps, want at most 2", n)
		}
	})
}
