package resilient

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// newHostState is the state of a host the Transport does not hold, under
// the default options.
func newHostState() HostState {
	unknown := RateLimitState{RateLimitInfo: RateLimitInfo{Limit: -1, Remaining: -1}}
	return HostState{Reads: unknown, Writes: unknown, RetryBudget: DefaultRetryBudgetBurst, InFlight: -1, Waiting: -1}
}

// hostState returns tr's state of the host of a request for rawURL with
// the header name: value pairs of kv.
func hostState(t *testing.T, tr *Transport, rawURL string, kv ...string) HostState {
	t.Helper()
	req := newRequest(t, context.Background(), http.MethodGet, rawURL, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	s, err := tr.HostState(req)
	if err != nil {
		t.Fatalf("HostState(%q): %v", rawURL, err)
	}
	return s
}

func TestHostStateNewHost(t *testing.T) {
	want := newHostState()
	if got := hostState(t, New(&rtScript{}), "https://api.example.com/v1/posts"); got != want {
		t.Errorf("a new host: %+v, want %+v", got, want)
	}
	var zero Transport
	if got := hostState(t, &zero, "https://api.example.com"); got != want {
		t.Errorf("the zero Transport: %+v, want %+v", got, want)
	}

	// Layers turned off have nothing to read; a static limit paces a
	// partition before any server spoke.
	tr := New(&rtScript{}, WithoutRetryBudget(), WithoutRateLimit(), WithoutBreaker())
	want.RetryBudget = -1
	if got := hostState(t, tr, "https://api.example.com"); got != want {
		t.Errorf("layers off: %+v, want %+v", got, want)
	}
	tr = New(&rtScript{}, WithRateLimit(5, 1), WithMaxInFlight(4))
	got := hostState(t, tr, "https://api.example.com")
	if got.Reads.Rate != 5 || got.Writes.Rate != 5 || got.InFlight != 0 || got.Waiting != 0 {
		t.Errorf("WithRateLimit(5, 1), WithMaxInFlight(4): rates %v/%v, in flight %d, waiting %d; want 5/5, 0, 0",
			got.Reads.Rate, got.Writes.Rate, got.InFlight, got.Waiting)
	}
}

func TestHostStateBadRequest(t *testing.T) {
	tr := New(&rtScript{})
	bad := []*http.Request{nil, {Method: http.MethodGet}}
	// A URL missing its slashes is opaque: its user info is no host's.
	for _, raw := range []string{"/v1/posts", "api.example.com", "https://user:pass@/v1?token=secret", "https:user:pass@api.example.com/v1?token=secret"} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		bad = append(bad, &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}})
	}
	for _, req := range bad {
		s, err := tr.HostState(req)
		if err == nil {
			t.Errorf("HostState(%v) = %+v, nil; want an error", req, s)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "resilient: HostState: ") || strings.Contains(msg, "secret") || strings.Contains(msg, "pass") {
			t.Errorf("HostState: error %q; want it prefixed and without the URL's secrets", msg)
		}
		if s != (HostState{}) {
			t.Errorf("HostState = %+v with its error; want the zero HostState", s)
		}
	}
}

func TestHostStateRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		quota := http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"42"}, "X-Ratelimit-Reset": {"60"}}
		throttled := http.Header{"Retry-After": {"30"}}
		base := &rtScript{steps: []rtStep{{header: quota}, {status: http.StatusTooManyRequests, header: throttled}}}
		tr := New(base, WithMaxRetries(0))
		get(t, tr, "https://api.example.com/v1/posts")
		s := hostState(t, tr, "https://api.example.com/v1/posts")
		r := s.Reads
		if r.Limit != 100 || r.Remaining != 42 || !r.Reset.Equal(t0.Add(time.Minute)) || r.Rate <= 0 || !r.PausedUntil.IsZero() || r.InFlight != 0 {
			t.Errorf("reads after the quota's announcement: %+v; want limit 100, 42 left until t0+1m, a pace, no pause", r)
		}
		if w := s.Writes; w.Limit != -1 || w.Rate != 0 {
			t.Errorf("writes: %+v; want their own partition, unknown", w)
		}

		// A 429 asking for 30 s pauses the partition.
		get(t, tr, "https://api.example.com/v1/posts")
		if r := hostState(t, tr, "https://api.example.com").Reads; !r.PausedUntil.Equal(t0.Add(30*time.Second)) || r.Remaining != 0 {
			t.Errorf("reads after a 429 with Retry-After: 30: %+v; want paused until t0+30s, none left", r)
		}
		time.Sleep(31 * time.Second)
		if r := hostState(t, tr, "https://api.example.com").Reads; !r.PausedUntil.IsZero() {
			t.Errorf("reads once the pause ended: paused until %v", r.PausedUntil.Sub(t0))
		}
		tr.ResetHost("api.example.com")
		if r := hostState(t, tr, "https://api.example.com").Reads; r.Limit != -1 || r.Remaining != -1 {
			t.Errorf("reads after ResetHost: %+v; want nothing known", r)
		}
	})
}

func TestHostStateBreakerAndBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &rtScript{steps: []rtStep{{status: http.StatusServiceUnavailable}}}
		tr := New(base, WithBackoff(time.Millisecond, time.Millisecond),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 3}))
		get(t, tr, "https://api.example.com/v1/posts")
		// Three failures trip the breaker: the first attempt and two
		// retries, the third refused.
		s := hostState(t, tr, "https://API.example.com:443/other")
		if s.Breaker != BreakerOpen {
			t.Errorf("breaker after 3 failures in a row: %v, want open (the URL's alias names the host's breaker)", s.Breaker)
		}
		if want := float64(DefaultRetryBudgetBurst - 2); s.RetryBudget != want {
			t.Errorf("budget after two retries: %v, want %v", s.RetryBudget, want)
		}
		if s := hostState(t, tr, "https://other.example.com"); s.Breaker != BreakerClosed || s.RetryBudget != DefaultRetryBudgetBurst {
			t.Errorf("another host: %+v; want it untouched", s)
		}
		// ResetHost closes the breaker and leaves the budget as it was
		// (see HostState): the retries it paid for were sent.
		tr.ResetHost("api.example.com")
		s = hostState(t, tr, "https://api.example.com/v1/posts")
		if want := float64(DefaultRetryBudgetBurst - 2); s.Breaker != BreakerClosed || s.RetryBudget != want {
			t.Errorf("after ResetHost: breaker %v, budget %v; want closed, %v", s.Breaker, s.RetryBudget, want)
		}
	})
}

func TestHostStateInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		base := &rtScript{steps: []rtStep{{before: func(*http.Request) { <-release }}}}
		tr := New(base, WithMaxInFlight(2))
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { get(t, tr, "https://api.example.com/v1/posts") })
		}
		synctest.Wait()
		s := hostState(t, tr, "https://api.example.com")
		if s.InFlight != 2 || s.Waiting != 1 || s.Reads.InFlight != 0 {
			t.Errorf("3 calls, 2 slots: in flight %d, waiting %d (limiter: %d); want 2, 1 (0: no quota known, none counted)", s.InFlight, s.Waiting, s.Reads.InFlight)
		}
		close(release)
		wg.Wait()
		if s := hostState(t, tr, "https://api.example.com"); s.InFlight != 0 || s.Waiting != 0 {
			t.Errorf("after the calls: in flight %d, waiting %d; want 0, 0", s.InFlight, s.Waiting)
		}
	})
}

func TestHostStateKeys(t *testing.T) {
	// Custom keys name the partition and the breaker as attempts have
	// them; a key of "" exempts the host from both, not from its retry
	// budget (full: 10).
	base := &rtScript{steps: []rtStep{{header: http.Header{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"9"}, "X-Ratelimit-Reset": {"60"}}}}}
	tenant := func(r *http.Request) string {
		if r.URL.Host == "free.example.com" {
			return ""
		}
		return "tenant-" + r.URL.Host
	}
	tr := New(base, WithRateLimitKey(tenant), WithBreaker(BreakerSettings{Key: tenant}))
	get(t, tr, "https://api.example.com/v1/posts")
	if r := hostState(t, tr, "https://api.example.com").Reads; r.Limit != 10 || r.Remaining != 9 {
		t.Errorf("partition under a custom key: %+v; want limit 10, 9 left", r)
	}
	// One key for reads and writes: the POST's partition is the GET's.
	if w := hostState(t, tr, "https://api.example.com").Writes; w.Limit != 10 {
		t.Errorf("writes under the same custom key: %+v; want the one partition", w)
	}
	s := hostState(t, tr, "https://free.example.com")
	if s.RetryBudget != 10 || s.Reads.Limit != -1 || s.Reads.Rate != 0 {
		t.Errorf("an exempt host: %+v; want a full budget and no partition", s)
	}
	// A host the breaker's key exempts has no limit of attempts in
	// flight either: -1, as without WithMaxInFlight.
	tr = New(base, WithMaxInFlight(4), WithBreaker(BreakerSettings{Key: tenant}))
	if s := hostState(t, tr, "https://free.example.com"); s.InFlight != -1 || s.Waiting != -1 {
		t.Errorf("a host exempt from WithMaxInFlight: in flight %d, waiting %d; want -1, -1", s.InFlight, s.Waiting)
	}
	if s := hostState(t, tr, "https://api.example.com"); s.InFlight != 0 || s.Waiting != 0 {
		t.Errorf("a host under WithMaxInFlight: in flight %d, waiting %d; want 0, 0", s.InFlight, s.Waiting)
	}
}

func TestHostStateConcurrent(t *testing.T) {
	// Read while calls run: no race, no lock held across a call.
	base := &rtScript{steps: []rtStep{{header: http.Header{"X-Ratelimit-Limit": {"1000"}, "X-Ratelimit-Remaining": {"999"}, "X-Ratelimit-Reset": {"60"}}}}}
	tr := New(base, WithMaxInFlight(8))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "https://api.example.com/v1/posts", nil))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		})
	}
	req := newRequest(t, context.Background(), http.MethodGet, "https://api.example.com", nil)
	for range 200 {
		if s, err := tr.HostState(req); err != nil || s.InFlight < 0 || s.InFlight > 8 {
			t.Errorf("HostState = %+v, %v; want at most 8 in flight", s, err)
		}
	}
	cancel()
	wg.Wait()
}
