package resilient

import (
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
)

// TestSchemelessHostPartitionNames: the QuotaStore names the partitions of
// the host of a URL without a scheme ("//api.test/x", which a custom base
// may serve) as it names a URL host's, by class and credential, not as a
// custom key's, which is the key alone: named by its host only, the
// partitions of every credential and class shared one state in the store,
// and one tenant's 429 held the calls of another, which a plain client
// sends, in every member of the fleet.
func TestSchemelessHostPartitionNames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := throttlingServer("30")
		store := new(memQuota)
		tr := New(handlerRT{srv}, WithMaxRetries(0), WithoutHedging(), WithQuotaStore(store))
		call := func(method, path, cred string) {
			t.Helper()
			req, err := http.NewRequest(method, "//api.test"+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+cred)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Errorf("%s %s as %s: %v", method, path, cred, err)
				return
			}
			resp.Body.Close()
		}
		call(http.MethodGet, "/throttle", "tenant-a") // tenant A's 429: Retry-After 30
		done := make(chan struct{})
		go func() {
			defer close(done)
			call(http.MethodGet, "/x", "tenant-b")
		}()
		synctest.Wait()
		if n := len(srv.seen("/x")); n != 1 {
			t.Errorf("tenant B's call: %d requests sent while tenant A's pause is in force, want 1 (its own partition's state)", n)
		}
		<-done
		call(http.MethodPost, "/x", "tenant-b")
		store.mu.Lock()
		names := slices.Clone(store.names)
		store.mu.Unlock()
		slices.Sort(names)
		if names = slices.Compact(names); len(names) != 3 {
			t.Errorf("QuotaStore names %q, want one for each credential and class (3)", names)
		}
	})
}
