package resilient

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestDocumentedNestedTransportAttempts checks the Transport's doc comment
// and docs/sdks.md: with the defaults, a Transport over another makes a
// first call to a failing host reach it 16 times where one Transport sends
// 6, and the retry budgets bound the calls after it: 6, then 1; one
// Transport alone, its budget spent by the same calls, costs 6, 6 (the
// budget's last 5 retries), then 1.
func TestDocumentedNestedTransportAttempts(t *testing.T) {
	for _, c := range []struct {
		name   string
		nested bool
		want   []int64
	}{
		{"New(New(base))", true, []int64{16, 6, 1}},
		{"New(base)", false, []int64{6, 6, 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var attempts atomic.Int64
				var tr http.RoundTripper = roundTripFunc(func(req *http.Request) (*http.Response, error) {
					attempts.Add(1)
					return &http.Response{StatusCode: http.StatusInternalServerError, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				})
				tr = New(tr)
				if c.nested {
					tr = New(tr)
				}
				var got []int64
				for range c.want {
					attempts.Store(0)
					resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "https://api.test/v1/items", nil))
					if err == nil {
						readBody(t, resp)
					}
					got = append(got, attempts.Load())
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("%s against a host answering 500: %v server attempts for %d calls in a row, the docs say %v", c.name, got, len(c.want), c.want)
				}
			})
		})
	}
}
