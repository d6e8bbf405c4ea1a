package resilient

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestQuotaStoreRefusalsBoundPerAttempt: the bound in all of the waits
// for the server's limits (WithMaxRetryAfter), which a QuotaStore's
// refusals start, is an attempt's: a retry, whose store has no token for
// it for a while again, starts a bound of its own, and is sent. Carried
// over from the attempt before it (50s then 20s, against 60s), the retry
// would be refused, and the call would return the first attempt's 503.
func TestQuotaStoreRefusalsBoundPerAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hits := 0
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			hits++
			h := http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"99"},
				"X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)}}
			code := http.StatusOK
			if hits == 2 {
				code = http.StatusServiceUnavailable // the first attempt of the call
			}
			return &http.Response{StatusCode: code, Header: h, Body: http.NoBody, Request: req}, nil
		})
		store := &memQuota{}
		tr := New(rt, WithQuotaStore(store), WithBackoff(time.Second, time.Second), WithoutBreaker())
		send := func() (int, error) {
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "https://api.example.com/v1/posts", nil))
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		if _, err := send(); err != nil { // makes the partition
			t.Fatal(err)
		}
		part := store.part(store.names[0])
		var dryUntil time.Time
		asked := 0 // the requests sent when the store was last asked
		part.mu.Lock()
		part.take = func(_ int, now time.Time) (time.Duration, bool, <-chan struct{}) {
			if hits != asked {
				// The first Take of an attempt: the first attempt's
				// store has no token for 50s, the retry's for 20s.
				asked = hits
				dryUntil = now.Add([]time.Duration{0, 50 * time.Second, 20 * time.Second}[min(hits, 2)])
			}
			if now.Before(dryUntil) {
				return time.Second, false, nil
			}
			return 0, true, nil
		}
		part.mu.Unlock()
		start := time.Now()
		code, err := send()
		if err != nil || code != http.StatusOK {
			t.Errorf("send = %d, %v, want 200, <nil>", code, err)
		}
		if hits != 3 {
			t.Errorf("requests sent = %d, want 3", hits)
		}
		if took, want := time.Since(start), 71*time.Second+500*time.Millisecond; took > want {
			t.Errorf("send took %v, want at most %v", took, want)
		}
	})
}
