package resilient

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestBudgetLookupRateLimitKeyAllocs: a write with a body in memory that
// succeeds at once, under WithRateLimitKey alone, costs no allocation more
// when some host's retry budget is not full (its lookup, to deposit the
// answer) than when every budget is. The budget is keyed by
// BreakerSettings.Key only: the lookup gave it a copy of the request for
// the functions that key a layer (see call.keyRequest), which none of the
// budget's reads, made on the success path.
func TestBudgetLookupRateLimitKeyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items at random")
	}
	const data = `{"model":"gpt-4o","input":"hello"}`
	allocs := func(drawn bool) float64 {
		t.Helper()
		other := 0
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			code := http.StatusOK
			if req.URL.Host == "other.test" {
				if other++; other == 1 {
					code = http.StatusServiceUnavailable // a retry: other.test's budget is not full
				}
			}
			return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithMaxElapsed(0), WithBackoff(1, 1), WithRateLimitKey(func(*http.Request) string { return "tenant" }))
		if drawn {
			get, err := http.NewRequest(http.MethodGet, "http://other.test/v1/items", nil)
			if err != nil {
				t.Fatal(err)
			}
			roundTripOK(t, tr, get)
			if tr.budgets.notFull.Load() == 0 {
				t.Fatal("other.test's retry budget is full after a retry")
			}
		}
		src := strings.NewReader(data)
		req, err := http.NewRequest(http.MethodPost, "http://api.test/v1/responses", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Body, req.ContentLength = io.NopCloser(src), int64(len(data))
		req.GetBody = func() (io.ReadCloser, error) { return req.Body, nil }
		req.Header.Set("Idempotency-Key", "k1")
		call := func() {
			src.Seek(0, io.SeekStart)
			roundTripOK(t, tr, req)
		}
		call() // the pools, the budget, the partition
		return testing.AllocsPerRun(1000, call)
	}
	full := allocs(false)
	if n := allocs(true); n != full {
		t.Errorf("a success allocates %v times while a budget is not full, want %v as while every budget is", n, full)
	}
}
