package resilient

import (
	"net/http"
	"testing"
	"time"
)

// TestQuotaStoreOpenBreakerTakesNoToken proves that an attempt whose
// host's breaker is open, and refuses it at once, takes no token of the
// fleet's quota: a store's token cannot be given back, and each call
// refused by the breaker spent one for nothing. A member whose breaker
// opened (its own network path broken, a spell of 5xx) and whose callers
// keep calling took the fleet's quota at the pace it granted, for as
// long as the breaker stayed open, while the other members, which could
// reach the host, waited for the tokens it threw away.
func TestQuotaStoreOpenBreakerTakesNoToken(t *testing.T) {
	bkSynctestRun(t, "open", func(t *testing.T) {
		store := new(memQuota)
		tr := New(bkNet{"api.test": bkDead()}, WithQuotaStore(store), WithMaxRetries(0),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 30 * time.Second}))
		if code, _, err := bkCall(t, tr, "https://api.test/v1/posts"); code != http.StatusInternalServerError {
			t.Fatalf("first call = %d %v, want 500", code, err)
		}
		q := store.part("https://api.test reads")
		q.mu.Lock()
		before := q.takes
		q.mu.Unlock()
		const calls = 10
		for range calls {
			_, _, err := bkCall(t, tr, "https://api.test/v1/posts")
			bkWantOpen(t, err)
		}
		q.mu.Lock()
		defer q.mu.Unlock()
		if n := q.takes - before; n != 0 {
			t.Errorf("%d calls refused by the open breaker took %d tokens of the shared quota, want 0", calls, n)
		}
	})
}
