package resilienttest

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// heapInUse returns the bytes of live heap objects, after a collection.
func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestFaultsFirstAttemptsOnlyKeepsNoKeys proves that FirstAttemptsOnly
// does not keep the idempotency keys it saw: 32 keys of 1 MiB each leave
// the server's memory as it was, and their retries are still told apart
// from first attempts.
func TestFaultsFirstAttemptsOnlyKeepsNoKeys(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	s := NewPipeServer(Altyaa, WithHandler(ok), WithFaults(Faults{Seed: 1, ServerError: 1, FirstAttemptsOnly: true}))
	defer s.Close()
	const n, size = 32, 1 << 20
	key := func(i int) string { return strconv.Itoa(i) + strings.Repeat("k", size) }
	attempt := func(i int) int {
		req := mustRequest(t, "POST", "/v1/charges")
		req.Header.Set("Idempotency-Key", key(i))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		return w.Code
	}
	before := heapInUse()
	for i := range n {
		if code := attempt(i); code != http.StatusServiceUnavailable {
			t.Fatalf("first attempt of key %d: status %d, want the fault's 503", i, code)
		}
	}
	grew := heapInUse() - before
	runtime.KeepAlive(s)
	if grew > 8<<20 {
		t.Errorf("the server kept %d MiB after %d first attempts with keys of 1 MiB; want at most 8 MiB (no keys kept)", grew>>20, n)
	}
	for i := range n {
		if code := attempt(i); code != http.StatusOK {
			t.Fatalf("retry of key %d: status %d, want 200 (no fault on a retry)", i, code)
		}
	}
}

// TestFaultsFirstAttemptsOnlyBoundsKeys proves that FirstAttemptsOnly
// remembers a bounded number of keys, those seen last: after a million
// keys its memory is a few MiB, a retry of a recent key is still told
// from a first attempt, and a forgotten key draws again (a retry taken
// for a first attempt, never the reverse).
func TestFaultsFirstAttemptsOnlyBoundsKeys(t *testing.T) {
	s := NewPipeServer(Altyaa, WithFaults(Faults{Seed: 1, ServerError: 1, FirstAttemptsOnly: true}))
	defer s.Close()
	const n = 1 << 20
	f := s.faults
	before := heapInUse()
	for i := range n {
		if !f.firstAttempt(RouteCreatePost, "key-"+strconv.Itoa(i)) {
			t.Fatalf("key %d, never seen, taken for a retry", i)
		}
	}
	grew := heapInUse() - before
	runtime.KeepAlive(s)
	if grew > 16<<20 {
		t.Errorf("FirstAttemptsOnly kept %d MiB after %d keys; want at most 16 MiB", grew>>20, n)
	}
	for i := n - 1000; i < n; i++ {
		if f.firstAttempt(RouteCreatePost, "key-"+strconv.Itoa(i)) {
			t.Fatalf("key %d, among the last seen, forgotten: its retry would draw a fault", i)
		}
	}
	if !f.firstAttempt(RouteCreatePost, "key-0") {
		t.Errorf("key 0, a million keys ago, still remembered: want it forgotten (the bound)")
	}
}
