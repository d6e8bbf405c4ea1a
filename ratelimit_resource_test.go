package resilient

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// githubRT answers like GitHub: every response names its resource and that
// resource's quota; search allows 1 call a minute, core 5000 an hour.
type githubRT struct {
	mu    sync.Mutex
	calls map[string][]time.Time
}

func (g *githubRT) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	res, limit, window := "core", 5000, time.Hour
	if strings.HasPrefix(req.URL.Path, "/search/") {
		res, limit, window = "search", 1, time.Minute
	}
	g.calls[res] = append(g.calls[res], time.Now())
	h := http.Header{}
	h.Set("X-RateLimit-Resource", res)
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(limit-len(g.calls[res]), 0)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(window).Unix(), 10))
	return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody, Request: req}, nil
}

// githubGet returns a function that GETs a path of api.github.com through
// tr and closes the response.
func githubGet(t *testing.T, tr http.RoundTripper) func(path string) {
	return func(path string) {
		t.Helper()
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "https://api.github.com"+path, nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
}

// TestRateLimitPerResource: a spent search quota holds search calls, not
// core ones.
func TestRateLimitPerResource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &githubRT{calls: map[string][]time.Time{}}
		tr := New(g, WithMaxRetryAfter(2*time.Minute))
		get := githubGet(t, tr)
		start := time.Now()
		get("/search/code?q=x") // spends search
		get("/repos/o/r")
		get("/repos/o/r/issues")
		if d := time.Since(start); d != 0 {
			t.Errorf("core calls waited %v after search was spent, want no wait", d)
		}
		get("/search/issues?q=y") // waits for the search reset
		if d := time.Since(start); d < time.Minute {
			t.Errorf("second search call after %v, want it to wait for the minute's reset", d)
		}
		if n := len(g.calls["core"]); n != 2 {
			t.Errorf("%d core calls, want 2", n)
		}
	})
}

func TestResourcesBounded(t *testing.T) {
	var rs resources
	k := partKey{scheme: "https", host: "api.test"}
	for i := range maxResourceRoutes + 5 {
		req, _ := http.NewRequest("GET", "https://api.test/r"+strconv.Itoa(i), nil)
		resp := &http.Response{Header: http.Header{"X-Ratelimit-Resource": {"core"}}, Request: req}
		if got := rs.learn(k, resp); got.resource != "core" || got.write {
			t.Fatalf("learn = %+v", got)
		}
	}
	if n := rs.n.Load(); n > maxResourceRoutes {
		t.Errorf("%d routes held, want at most %d", n, maxResourceRoutes)
	}
	req, _ := http.NewRequest("GET", "https://api.test/x", nil)
	resp := &http.Response{Header: http.Header{"X-Ratelimit-Resource": {strings.Repeat("a", 65)}}, Request: req}
	if got := rs.learn(k, resp); got != k {
		t.Errorf("a 65-byte resource name was learned: %+v", got)
	}
}

// TestRateLimitResourceSharedSegment: GitHub counts /search/code against
// code_search and the other searches against search, under the same first
// segment; a spent code_search quota must not hold /search/issues calls,
// which a plain client would send and the server would answer.
func TestRateLimitResourceSharedSegment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		calls := map[string]int{}
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			res, limit := "search", 30
			if strings.HasPrefix(req.URL.Path, "/search/code") {
				res, limit = "code_search", 1
			}
			calls[res]++
			h := http.Header{}
			h.Set("X-RateLimit-Resource", res)
			h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
			h.Set("X-RateLimit-Remaining", strconv.Itoa(max(limit-calls[res], 0)))
			h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))
			return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt, WithMaxRetryAfter(2*time.Minute))
		get := githubGet(t, tr)
		start := time.Now()
		get("/search/issues?q=a") // search: 29 left
		get("/search/code?q=x")   // spends code_search
		get("/search/issues?q=b") // search: 28 left
		if d := time.Since(start); d != 0 {
			t.Errorf("a search call waited %v after code_search was spent, want no wait", d)
		}
		if calls["search"] != 2 {
			t.Errorf("%d search calls, want 2", calls["search"])
		}
	})
}
