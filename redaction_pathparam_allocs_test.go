package resilient

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestPathParameterSuccessAllocs: a path with a segment's parameter that
// carries no credential (";v=2", a matrix parameter) costs a success no
// allocation more than one without it. routeTemplate redacts the path of
// every response that announces a plain limit (see learnPlain), and the
// redaction of a parameter's credential split every path with a ';'.
func TestPathParameterSuccessAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items at random")
	}
	reset := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	base := &stubOK{header: http.Header{"X-Ratelimit-Limit": {"5000"}, "X-Ratelimit-Remaining": {"4999"}, "X-Ratelimit-Reset": {reset}}}
	allocs := func(path string) float64 {
		req, err := http.NewRequest(http.MethodGet, "https://api.example.com"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		tr := New(base, WithMaxElapsed(0))
		roundTripOK(t, tr, req) // the pools, the partition
		return testing.AllocsPerRun(1000, func() { roundTripOK(t, tr, req) })
	}
	plain := allocs("/v1/posts_v=2/items")
	for _, path := range []string{"/v1/posts;v=2/items", "/v1/posts;v=2;lang=en/items", "/v1/posts;jsessionid=REDACTED/items"} {
		if n := allocs(path); n != plain {
			t.Errorf("GET %s: a success allocates %v times, want %v as without its parameter", path, n, plain)
		}
	}
}
