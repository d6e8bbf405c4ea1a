package resilient

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestParseRateLimitVendors reads the headers real APIs send, as they send
// them (names in their own capitalisation).
func TestParseRateLimitVendors(t *testing.T) {
	none := RateLimitInfo{-1, -1, time.Time{}}
	tests := []struct {
		name   string
		h      http.Header
		want   RateLimitInfo
		window time.Duration
	}{
		{"GitHub core", hdr("x-ratelimit-limit", "5000", "x-ratelimit-remaining", "4987", "x-ratelimit-reset", "1771336800",
			"x-ratelimit-used", "13", "x-ratelimit-resource", "core"), RateLimitInfo{5000, 4987, time.Unix(1771336800, 0)}, 0},
		{"GitHub search spent", hdr("x-ratelimit-limit", "30", "x-ratelimit-remaining", "0", "x-ratelimit-reset", "1771336830",
			"x-ratelimit-resource", "search"), RateLimitInfo{30, 0, time.Unix(1771336830, 0)}, 0},
		{"X (Twitter)", hdr("x-rate-limit-limit", "900", "x-rate-limit-remaining", "899", "x-rate-limit-reset", "1771336800"),
			RateLimitInfo{900, 899, time.Unix(1771336800, 0)}, 0},
		{"Okta", hdr("X-Rate-Limit-Limit", "600", "X-Rate-Limit-Remaining", "598", "X-Rate-Limit-Reset", "1771336800"),
			RateLimitInfo{600, 598, time.Unix(1771336800, 0)}, 0},
		{"Discord", hdr("X-RateLimit-Limit", "5", "X-RateLimit-Remaining", "4", "X-RateLimit-Reset", "1771336800.250",
			"X-RateLimit-Reset-After", "1.000", "X-RateLimit-Bucket", "abcd"), RateLimitInfo{5, 4, time.Unix(1771336800, 250e6)}, 0},
		{"Reddit", hdr("x-ratelimit-used", "1", "x-ratelimit-remaining", "599.0", "x-ratelimit-reset", "30"),
			RateLimitInfo{-1, 599, rlNow.Add(30 * time.Second)}, 0},
		{"Jira (ISO 8601 reset)", hdr("X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "97", "X-RateLimit-Reset", "2026-02-17T14:00:00Z"),
			RateLimitInfo{100, 97, rlNow.Add(30 * time.Second)}, 0},
		{"Aidelly", hdr("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "59", "X-RateLimit-Reset", "2026-02-17T14:00:00Z"),
			RateLimitInfo{60, 59, rlNow.Add(30 * time.Second)}, 0},
		{"GitLab", hdr("RateLimit-Limit", "600", "RateLimit-Remaining", "599", "RateLimit-Reset", "1771336800",
			"RateLimit-Observed", "1"), RateLimitInfo{600, 599, time.Unix(1771336800, 0)}, 0},
		{"Docker Hub", hdr("ratelimit-limit", "100;w=21600", "ratelimit-remaining", "76;w=21600"),
			RateLimitInfo{100, 76, time.Time{}}, 21600 * time.Second},
		{"IETF draft structured (Cloudflare)", hdr("RateLimit", `"default";r=50;t=30`, "RateLimit-Policy", `"default";q=100;w=60`),
			RateLimitInfo{100, 50, rlNow.Add(30 * time.Second)}, time.Minute},
		{"IETF older draft", hdr("RateLimit-Limit", "10, 10;w=1", "RateLimit-Remaining", "9", "RateLimit-Reset", "1"),
			RateLimitInfo{10, 9, rlNow.Add(time.Second)}, time.Second},
		{"OpenAI", hdr("x-ratelimit-limit-requests", "60", "x-ratelimit-limit-tokens", "150000",
			"x-ratelimit-remaining-requests", "59", "x-ratelimit-remaining-tokens", "149984",
			"x-ratelimit-reset-requests", "1s", "x-ratelimit-reset-tokens", "6m0s"), RateLimitInfo{60, 59, rlNow.Add(time.Second)}, 0},
		{"OpenAI milliseconds", hdr("x-ratelimit-limit-requests", "5000", "x-ratelimit-remaining-requests", "4999",
			"x-ratelimit-reset-requests", "12ms"), RateLimitInfo{5000, 4999, rlNow.Add(12 * time.Millisecond)}, 0},
		{"OpenAI tokens spent: not paced", hdr("x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "40",
			"x-ratelimit-reset-requests", "20s", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "6m0s"),
			RateLimitInfo{60, 40, rlNow.Add(20 * time.Second)}, 0},
		{"OpenAI reset as a Unix time", hdr("x-ratelimit-remaining-requests", "5", "x-ratelimit-reset-requests", "1771336800"),
			RateLimitInfo{-1, 5, time.Unix(1771336800, 0)}, 0},
		{"OpenAI negative reset ignored", hdr("x-ratelimit-remaining-requests", "5", "x-ratelimit-reset-requests", "-1s"),
			RateLimitInfo{-1, 5, time.Time{}}, 0},
		// The tokens quota alone tells the vendor's family, which wins
		// over those after it: its tokens quota is not read, nor theirs.
		{"OpenAI tokens alone", hdr("x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "6m0s",
			"ratelimit-remaining", "0", "ratelimit-reset", "30"), none, 0},
		{"Anthropic tokens alone", hdr("anthropic-ratelimit-tokens-remaining", "0", "anthropic-ratelimit-tokens-reset", "2026-02-17T14:06:00Z",
			"ratelimit-remaining", "0", "ratelimit-reset", "30"), none, 0},
		{"OpenAI compound duration", hdr("x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "1m30.5s"),
			RateLimitInfo{-1, 0, rlNow.Add(90500 * time.Millisecond)}, 0},
		{"Anthropic", hdr("anthropic-ratelimit-requests-limit", "50", "anthropic-ratelimit-requests-remaining", "49",
			"anthropic-ratelimit-requests-reset", "2026-02-17T14:00:00Z", "anthropic-ratelimit-tokens-remaining", "39000",
			"anthropic-ratelimit-tokens-reset", "2026-02-17T14:00:00Z"), RateLimitInfo{50, 49, rlNow.Add(30 * time.Second)}, 0},
		{"Anthropic, server clock 3m30s ahead", hdr("anthropic-ratelimit-requests-limit", "50", "anthropic-ratelimit-requests-remaining", "49",
			"anthropic-ratelimit-requests-reset", "2026-02-17T14:03:30Z", "date", "Tue, 17 Feb 2026 14:03:00 GMT"),
			RateLimitInfo{50, 49, rlNow.Add(30 * time.Second)}, 0},
		{"Anthropic output tokens spent: not paced", hdr("anthropic-ratelimit-requests-limit", "50", "anthropic-ratelimit-requests-remaining", "49",
			"anthropic-ratelimit-requests-reset", "2026-02-17T14:00:00Z", "anthropic-ratelimit-output-tokens-remaining", "0",
			"anthropic-ratelimit-output-tokens-reset", "2026-02-17T14:01:00Z"), RateLimitInfo{50, 49, rlNow.Add(30 * time.Second)}, 0},
		{"Shopify", hdr("X-Shopify-Shop-Api-Call-Limit", "32/40"), RateLimitInfo{40, 8, time.Time{}}, 20 * time.Second},
		{"Shopify Plus, bucket full", hdr("X-Shopify-Shop-Api-Call-Limit", "400/400"),
			RateLimitInfo{400, 0, rlNow.Add(50 * time.Millisecond)}, 20 * time.Second},
		{"Shopify, one call left", hdr("X-Shopify-Shop-Api-Call-Limit", "39/40"), RateLimitInfo{40, 1, time.Time{}}, 20 * time.Second},
		{"Shopify malformed", hdr("X-Shopify-Shop-Api-Call-Limit", "41/40"), none, 0},
		{"Slack (Retry-After only)", hdr("Retry-After", "30"), none, 0},
		{"Stripe (none)", hdr("Request-Id", "req_123", "Stripe-Version", "2024-06-20"), none, 0},
	}
	if len(tests) < 20 {
		t.Fatalf("%d header sets, want at least 20", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := lazyNow{t: rlNow}
			got := parseRateLimit(canonical(tt.h), &now)
			if got.info.Limit != tt.want.Limit || got.info.Remaining != tt.want.Remaining || !got.info.Reset.Equal(tt.want.Reset) {
				t.Errorf("parseRateLimit = %+v, want %+v", got.info, tt.want)
			}
			if got.window != tt.window {
				t.Errorf("window = %v, want %v", got.window, tt.window)
			}
		})
	}
}

// canonical returns h with canonical keys, as net/http delivers a response's
// headers.
func canonical(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		out[http.CanonicalHeaderKey(k)] = v
	}
	return out
}

// TestWithRateLimitParser: a caller's parser is asked when no built-in
// family is present, and what it finds is learned.
func TestWithRateLimitParser(t *testing.T) {
	parser := func(h http.Header, now time.Time) (RateLimitInfo, bool) {
		v := h.Get("X-Quota-Left")
		if v == "" {
			return RateLimitInfo{}, false
		}
		n, _ := parseCount(v)
		return RateLimitInfo{Limit: 10, Remaining: n, Reset: now.Add(time.Minute)}, true
	}
	// A nil parser is ignored, and one after a parser that found the
	// quota is not asked.
	later := func(http.Header, time.Time) (RateLimitInfo, bool) {
		return RateLimitInfo{Limit: 99, Remaining: 99}, true
	}
	s := &rtScript{steps: []rtStep{{status: 200, header: http.Header{"X-Quota-Left": {"0"}}}}}
	var infos []RateLimitInfo
	tr := New(s, WithRateLimitParser(nil), WithRateLimitParser(parser), WithRateLimitParser(later), WithMaxRetryAfter(time.Second),
		WithObserver(func(a Attempt) { infos = append(infos, a.RateLimit) }))
	resp, _ := roundTrip(t, tr, newRequest(t, t.Context(), "GET", "http://api.test/", nil))
	resp.Body.Close()
	if len(infos) != 1 || infos[0].Limit != 10 || infos[0].Remaining != 0 {
		t.Fatalf("observed %+v, want the parser's quota", infos)
	}
	// The quota is spent until the reset, a minute away: past
	// WithMaxRetryAfter, the next call is refused at once.
	_, err := tr.RoundTrip(newRequest(t, t.Context(), "GET", "http://api.test/", nil))
	if err == nil || s.numCalls() != 1 {
		t.Errorf("second call: %v after %d requests; want a local refusal", err, s.numCalls())
	}
}

// shopifyRT answers like Shopify's REST Admin API: a leaky bucket of size
// calls leaking leak calls a second, its level in X-Shopify-Shop-Api-Call-Limit,
// a 429 when full.
type shopifyRT struct {
	mu        sync.Mutex
	size      int
	leak      float64
	level     float64
	last      time.Time
	ok, limit int
}

func (s *shopifyRT) RoundTrip(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if !s.last.IsZero() {
		s.level = max(0, s.level-now.Sub(s.last).Seconds()*s.leak)
	}
	s.last = now
	status := 200
	if s.level+1 > float64(s.size) {
		status = 429
		s.limit++
	} else {
		s.level++
		s.ok++
	}
	h := http.Header{}
	h.Set("X-Shopify-Shop-Api-Call-Limit", fmt.Sprintf("%d/%d", int(math.Ceil(s.level)), s.size))
	return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
}

// TestRateLimitShopifyLeak: Shopify's buckets leak in proportion to their
// size (40 at 2 calls a second, 80 at 4, Shopify Plus's 400 at 20), so that
// a client far below a store's rate, which a plain client sends without a
// 429, is not slowed by a pace drawn for the standard bucket.
func TestRateLimitShopifyLeak(t *testing.T) {
	for _, tc := range []struct {
		size  int
		leak  float64
		every time.Duration // the client's pace: half the store's
	}{
		{40, 2, time.Second},
		{80, 4, 500 * time.Millisecond},
		{400, 20, 100 * time.Millisecond},
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &shopifyRT{size: tc.size, leak: tc.leak}
				tr := New(s, WithMaxRetries(0))
				const calls = 1200
				start := time.Now()
				for range calls {
					resp, err := roundTrip(t, tr, newRequest(t, t.Context(), "GET", "https://shop.myshopify.com/admin/api/2024-01/products.json", nil))
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					time.Sleep(tc.every)
				}
				want := calls * tc.every
				if d := time.Since(start); d > want+want/100 {
					t.Errorf("%d calls at one per %v took %v, want about %v: the limiter slowed a client at half the store's rate", calls, tc.every, d, want)
				}
				if s.limit != 0 {
					t.Errorf("%d 429s, want none", s.limit)
				}
			})
		})
	}
}

// openAIServer answers like OpenAI: its requests quota (limit per minute)
// refilled continuously, reset-requests being the time until it is full
// again; tokens as tokens says. A call past the quota gets a 429 with
// retry-after-ms.
type openAIServer struct {
	limit     int
	tokens    http.Header // the tokens headers of every answer
	anthropic bool        // Anthropic's headers, resets as RFC 3339 times, rather than OpenAI's

	mu    sync.Mutex
	level float64 // requests available
	last  time.Time
	at    []time.Time // arrivals
	over  int         // 429s
}

func (s *openAIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	unit := time.Minute / time.Duration(s.limit)
	if s.last.IsZero() {
		s.level = float64(s.limit)
	}
	s.level = min(float64(s.limit), s.level+float64(now.Sub(s.last))/float64(unit))
	s.last = now
	s.at = append(s.at, now)
	for k, v := range s.tokens {
		w.Header()[k] = v
	}
	limitKey, remainingKey, resetKey := "X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests"
	if s.anthropic {
		limitKey, remainingKey, resetKey = "Anthropic-Ratelimit-Requests-Limit", "Anthropic-Ratelimit-Requests-Remaining", "Anthropic-Ratelimit-Requests-Reset"
	}
	reset := func() string { // when the quota is full again
		d := time.Duration((float64(s.limit) - s.level) * float64(unit))
		if s.anthropic {
			return now.Add(d).UTC().Format(time.RFC3339Nano)
		}
		return d.String()
	}
	w.Header().Set(limitKey, fmt.Sprint(s.limit))
	if s.level < 1 {
		s.over++
		w.Header().Set(remainingKey, "0")
		w.Header().Set(resetKey, reset())
		w.Header().Set("Retry-After-Ms", fmt.Sprint(int64((1-s.level)*float64(unit)/float64(time.Millisecond))+1))
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	s.level--
	w.Header().Set(remainingKey, fmt.Sprint(int(s.level)))
	w.Header().Set(resetKey, reset())
}

// TestRateLimitRefilledQuota: OpenAI's and Anthropic's resets are when a
// quota refilled continuously is full again. A spent requests quota holds
// the next request until one request is back (a second of a 60-a-minute
// quota), not until the reset a minute ahead; a spent tokens quota, whose
// reset may lie minutes ahead, holds nothing: a plain client would be
// answered, and the server's 429 says how long to wait.
func TestRateLimitRefilledQuota(t *testing.T) {
	for _, anthropic := range []bool{false, true} {
		t.Run(fmt.Sprintf("requests/anthropic=%v", anthropic), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &openAIServer{limit: 60, anthropic: anthropic}
				tr := New(handlerRT{srv})
				start := time.Now()
				for range 90 {
					resp, err := roundTrip(t, tr, newRequest(t, t.Context(), http.MethodPost, "https://api.openai.com/v1/chat/completions", nil))
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("status %d", resp.StatusCode)
					}
				}
				// 60 at once, then one a second: 30 s, not one call a
				// minute (the reset) nor a refusal.
				if d := time.Since(start); d < 29*time.Second || d > 35*time.Second {
					t.Errorf("90 calls against 60 a minute took %v, want about 30s", d)
				}
				if srv.over > 1 {
					t.Errorf("%d 429s, want at most one (the first that finds the quota spent)", srv.over)
				}
			})
		})
	}
	t.Run("tokens", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := &openAIServer{limit: 1000, tokens: http.Header{
				"X-Ratelimit-Limit-Tokens": {"150000"}, "X-Ratelimit-Remaining-Tokens": {"0"}, "X-Ratelimit-Reset-Tokens": {"6m0s"}}}
			tr := New(handlerRT{srv})
			for range 3 {
				resp, err := roundTrip(t, tr, newRequest(t, t.Context(), http.MethodPost, "https://api.openai.com/v1/chat/completions", nil))
				if err != nil {
					t.Fatalf("a spent tokens quota held the host: %v", err)
				}
				resp.Body.Close()
			}
			if n := len(srv.at); n != 3 {
				t.Errorf("the server saw %d of 3 calls", n)
			}
		})
	})
}
