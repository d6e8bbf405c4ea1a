package resilient

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestStoreWaitBreakerKeyPanicKeepsThePartitionUsable: an attempt that a
// QuotaStore holds for later asks the breaker whether it would refuse the
// attempt when that wait ends (see rateLimiter.openPast), which calls the
// caller's BreakerSettings.Key. A Key that panics on a request there
// takes the panic to the caller, as everywhere, and leaves the partition
// usable: the partition's lock was held across the call and never
// released, so that every later attempt of the partition (another
// request, whose Key answers) hung on it for ever, deaf to its context,
// and so did ResetHost and HostState for the host.
func TestStoreWaitBreakerKeyPanicKeepsThePartitionUsable(t *testing.T) {
	key := func(req *http.Request) string {
		if req.Header.Get("X-Tenant") == "" {
			panic("Key exploded")
		}
		return req.URL.Host
	}
	store := storeFunc(func(string) QuotaPartition {
		// The fleet's quota holds a token for each attempt 1ms ahead.
		return &memPart{take: func(int, time.Time) (time.Duration, bool, <-chan struct{}) {
			return time.Millisecond, true, nil
		}}
	})
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	tr := New(base, WithMaxRetries(0), WithQuotaStore(store), WithBreaker(BreakerSettings{Key: key}))
	mustPanic(t, "Key's panic did not reach the caller", func() {
		tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // generous: a busy machine
	defer cancel()
	req := newRequest(t, ctx, "GET", "http://api.test/", nil)
	req.Header.Set("X-Tenant", "acme")
	done := make(chan error, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the next call of the partition, whose Key answers: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the next call of the partition hung past its context's deadline: the panic left the partition's lock held")
	}
}
