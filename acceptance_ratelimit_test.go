package resilient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// This file checks issue 6's rate limiter from outside the package, as a
// user who read the issue would: through the public API and a
// resilienttest server only.

// TestRateLimitPartitionIsTheHost: issue 6 keeps "one state per host and
// class", and a host is one whatever the case of its name or whether its
// URL spells the scheme's default port: a 429 that pauses the reads of
// http://altyaa.test holds those of http://ALTYAA.test and
// http://altyaa.test:80 too (the server sees nothing during the pause),
// and HostState reads the same partition under every spelling.
func TestRateLimitPartitionIsTheHost(t *testing.T) {
	for _, spelling := range []string{"ALTYAA.test", "Altyaa.Test", "altyaa.test:80"} {
		t.Run(spelling, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const route = "GET /v1/posts"
				srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
					resilienttest.WithScript(route, resilienttest.RateLimited(20*time.Second)))
				defer srv.Close()
				tr := resilient.New(srv.Transport(), resilient.WithMaxRetries(0))
				if code, _, err := call(t, tr, context.Background(), "GET", srv.URL+"/v1/posts", nil); code != 429 {
					t.Fatalf("first call: %d, %v; want the scripted 429", code, err)
				}
				other := "http://" + spelling + "/v1/posts"
				if !strings.HasPrefix(srv.URL, "http://altyaa.test") {
					t.Fatalf("the server's URL is %s, want http://altyaa.test", srv.URL)
				}
				req, err := http.NewRequest("GET", other, nil)
				if err != nil {
					t.Fatal(err)
				}
				hs, err := tr.HostState(req)
				if err != nil || hs.Reads.PausedUntil.IsZero() {
					t.Errorf("HostState(%s).Reads = %+v, %v; want the pause of %s", other, hs.Reads, err, srv.URL)
				}
				start := time.Now()
				code, _, err := call(t, tr, context.Background(), "GET", other, nil)
				waited := time.Since(start)
				if code != 200 || waited < 20*time.Second {
					t.Errorf("a read of %s during the pause: %d, %v after %v; want the 200 once the 20s pause is over", other, code, err, waited)
				}
				if got := srv.Stats().Attempts[route]; got != 2 {
					t.Errorf("the server saw %d attempts, want 2 (the 429, then the read after the pause)", got)
				}
			})
		})
	}
}

// TestRetryOf429WithoutTheLimiter: the README says of WithoutRateLimit and
// of a partition WithRateLimitKey exempts ("") that the retry of a 429
// still waits for its Retry-After, or without one for its quota's reset (a
// minute at most when the quota is not spent), and that beyond
// WithMaxRetryAfter the 429 is returned at once. So it does with the
// limiter on.
func TestRetryOf429WithoutTheLimiter(t *testing.T) {
	const url = "http://api.test/v1/posts"
	quota := func(remaining, reset string) http.Header {
		return http.Header{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {remaining}, "X-Ratelimit-Reset": {reset}}
	}
	for _, o := range []struct {
		name string
		opt  resilient.Option
	}{
		{"WithoutRateLimit", resilient.WithoutRateLimit()},
		{`WithRateLimitKey ""`, resilient.WithRateLimitKey(func(*http.Request) string { return "" })},
		{"limiter on", resilient.Options()},
	} {
		for _, tc := range []struct {
			name   string
			header http.Header
			wait   time.Duration // 0: the 429 returned at once
		}{
			{"Retry-After 7", http.Header{"Retry-After": {"7"}}, 7 * time.Second},
			{"spent quota, reset in 20s", quota("0", "20"), 20 * time.Second},
			{"quota not spent, reset in 50m", quota("5", "3000"), time.Minute},
			{"spent quota, reset in 50m", quota("0", "3000"), 0},
			{"Retry-After 61", http.Header{"Retry-After": {"61"}}, 0},
		} {
			t.Run(o.name+"/"+tc.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					base := &answers{steps: []answer{{status: 429, header: tc.header}, {status: 200}}}
					status, _, err := call(t, resilient.New(base, o.opt), context.Background(), "GET", url, nil)
					at, _, _ := base.sent()
					switch {
					case tc.wait == 0 && (status != 429 || len(at) != 1):
						t.Errorf("%d, %v after %d attempts; want the 429 at once", status, err, len(at))
					case tc.wait != 0 && (status != 200 || len(at) != 2):
						t.Errorf("%d, %v after %d attempts; want the 200 after one retry", status, err, len(at))
					case tc.wait != 0:
						// The wait's spread: a tenth at most, and a second.
						if d := at[1].Sub(at[0]); d < tc.wait || d > tc.wait+tc.wait/10+time.Second {
							t.Errorf("waited %v, want %v (and its spread)", d, tc.wait)
						}
					}
				})
			})
		}
	}
}

// TestMaxRetryAfterBoundsTheLimitersWaits: WithMaxRetryAfter "also bounds
// the rate limiter's waits (a pause, …): a longer one is refused with
// ErrRateLimited": after a 429 asking for 30s, returned at once under
// WithMaxRetryAfter(10s), the next call to the host is refused at once,
// nothing sent, rather than held for 30s.
func TestMaxRetryAfterBoundsTheLimitersWaits(t *testing.T) {
	const url = "http://api.test/v1/posts"
	synctest.Test(t, func(t *testing.T) {
		base := &answers{steps: []answer{{status: 429, header: http.Header{"Retry-After": {"30"}}}, {status: 200}}}
		tr := resilient.New(base, resilient.WithMaxRetryAfter(10*time.Second))
		if status, _, err := call(t, tr, context.Background(), "GET", url, nil); status != 429 {
			t.Fatalf("first call: %d, %v; want the 429 at once", status, err)
		}
		start := time.Now()
		_, _, err := call(t, tr, context.Background(), "GET", url, nil)
		if at, _, _ := base.sent(); !errors.Is(err, resilient.ErrRateLimited) || time.Since(start) != 0 || len(at) != 1 {
			t.Errorf("second call: %v after %v, %d sent in all; want ErrRateLimited at once, nothing sent", err, time.Since(start), len(at))
		}
	})
}

// TestRateLimitHeadersSpelledByHand: a response built by hand below the
// Transport (a stub, a cache) may hold its rate-limit headers under keys
// that are not canonical, as http.Header{"X-RateLimit-Remaining": …} does;
// net/http's own are canonical. The limiter reads them as well: the
// attempt reports the quota, a spent quota holds the next call until its
// reset, a 429 of Discord's global limit pauses the host, and the caller
// reads them with Header.Get, as from net/http. They were ignored: every
// lookup is by canonical key.
func TestRateLimitHeadersSpelledByHand(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header func(reset time.Time) http.Header
		status int
		get    string // a header the caller reads back with Get
	}{
		{"X-RateLimit triple", func(reset time.Time) http.Header {
			return http.Header{"X-RateLimit-Limit": {"10"}, "X-RateLimit-Remaining": {"0"}, "X-RateLimit-Reset": {strconv.FormatInt(reset.Unix(), 10)}}
		}, 200, "X-RateLimit-Remaining"},
		{"IETF RateLimit fields", func(reset time.Time) http.Header {
			return http.Header{"RateLimit-Limit": {"10"}, "RateLimit-Remaining": {"0"}, "RateLimit-Reset": {strconv.Itoa(int(time.Until(reset).Seconds()))}}
		}, 200, "RateLimit-Remaining"},
		{"Discord global 429", func(reset time.Time) http.Header {
			return http.Header{"Retry-After": {strconv.Itoa(int(time.Until(reset).Seconds()))}, "X-RateLimit-Global": {"true"}, "x-ratelimit-scope": {"global"}}
		}, 429, "X-RateLimit-Global"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits int
				reset := time.Now().Add(30 * time.Second)
				base := roundTrip(func(req *http.Request) (*http.Response, error) {
					hits++
					h := http.Header{"Content-Type": {"application/json"}}
					status := http.StatusOK
					if hits == 1 {
						h, status = tc.header(reset), tc.status
					}
					return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
				})
				var first resilient.Attempt
				tr := resilient.New(base, resilient.WithMaxRetries(0), resilient.WithObserver(func(a resilient.Attempt) {
					if a.Number == 1 && first.Number == 0 {
						first = a
					}
				}))
				req, _ := http.NewRequest("GET", "https://api.test/v1/posts", nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.Header.Get(tc.get) == "" {
					t.Errorf("resp.Header.Get(%q) = \"\", want the value the base set (%v)", tc.get, resp.Header)
				}
				if tc.status == 200 && (first.RateLimit.Limit != 10 || first.RateLimit.Remaining != 0) {
					t.Errorf("Attempt.RateLimit = %+v, want Limit 10, Remaining 0", first.RateLimit)
				}
				start := time.Now()
				req, _ = http.NewRequest("GET", "https://api.test/v1/posts", nil)
				resp, err = tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if waited := time.Since(start); waited < 29*time.Second || hits != 2 {
					t.Errorf("the next call went after %v, the base hit %d times; want it held until the reset, 30s after the first", waited, hits)
				}
			})
		})
	}
}

// TestRateLimited403SpelledByHand: a 403 whose X-RateLimit-Remaining: 0
// (GitHub's spent quota) a stub or a cache below the Transport spelled by
// hand is the rate limit's refusal, retried after X-RateLimit-Reset, as
// the same 403 from net/http is (the README's "What is retried": the
// built-in families are read under any spelling of their names).
func TestRateLimited403SpelledByHand(t *testing.T) {
	for _, canonical := range []bool{true, false} {
		t.Run(fmt.Sprintf("canonical=%v", canonical), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits int
				reset := time.Now().Add(10 * time.Second)
				base := roundTrip(func(req *http.Request) (*http.Response, error) {
					hits++
					if hits > 1 {
						return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
					}
					h := http.Header{"X-RateLimit-Limit": {"60"}, "X-RateLimit-Remaining": {"0"}, "X-RateLimit-Reset": {strconv.FormatInt(reset.Unix(), 10)}}
					if canonical {
						for k, v := range h {
							delete(h, k)
							h[http.CanonicalHeaderKey(k)] = v
						}
					}
					return &http.Response{StatusCode: http.StatusForbidden, Header: h, Body: http.NoBody, Request: req}, nil
				})
				tr := resilient.New(base, resilient.WithMaxRetries(1))
				req, _ := http.NewRequest("GET", "https://api.test/repos", nil)
				start := time.Now()
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || hits != 2 {
					t.Fatalf("status %d after %d hits; want the 403 retried once, then 200", resp.StatusCode, hits)
				}
				if waited := time.Since(start); waited < 9*time.Second {
					t.Errorf("the retry went after %v; want it held until X-RateLimit-Reset, 10s", waited)
				}
			})
		})
	}
}
