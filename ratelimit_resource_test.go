package resilient

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
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
		if got, _ := rs.learn(k, nil, resp, 0, false); got.resource != "core" || got.write {
			t.Fatalf("learn = %+v", got)
		}
	}
	if n := rs.n.Load(); n > maxResourceRoutes {
		t.Errorf("%d routes held, want at most %d", n, maxResourceRoutes)
	}
	req, _ := http.NewRequest("GET", "https://api.test/x", nil)
	resp := &http.Response{Header: http.Header{"X-Ratelimit-Resource": {strings.Repeat("a", 65)}}, Request: req}
	if got, _ := rs.learn(k, nil, resp, 0, false); got != k {
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

// discordSend sends a message to Discord's channel 1000+channel through tr
// as the bot of token-1, with method (POST, or another to try the bucket's
// other routes).
func discordSend(t testing.TB, tr http.RoundTripper, method string, channel int) (*http.Response, error) {
	t.Helper()
	url := fmt.Sprintf("https://discord.com/api/v10/channels/%d/messages", 1000+channel)
	req := newRequest(t, context.Background(), method, url, strings.NewReader(`{"content":"hi"}`))
	req.Header.Set("Authorization", "Bot token-1")
	return roundTrip(t, tr, req)
}

// discordRT answers like Discord: each route (method and path: a channel's
// messages, a webhook) has a bucket of its own, 5 requests every 5
// seconds, named by X-RateLimit-Bucket; past it, a 429 with Retry-After.
type discordRT struct {
	mu     sync.Mutex
	used   map[string]int       // requests in the bucket's window
	resets map[string]time.Time // the end of the bucket's window
	calls  int
	over   int // 429s
	// globalAt, when positive, makes the globalAt-th request hit the
	// bot's global limit for globalFor; intoGlobal counts the requests
	// that arrived during it.
	globalAt    int
	globalFor   time.Duration
	globalUntil time.Time
	intoGlobal  int
}

func (d *discordRT) RoundTrip(req *http.Request) (*http.Response, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.used == nil {
		d.used, d.resets = map[string]int{}, map[string]time.Time{}
	}
	d.calls++
	now := time.Now()
	if d.calls == d.globalAt {
		d.globalUntil = now.Add(d.globalFor)
	} else if now.Before(d.globalUntil) {
		d.intoGlobal++
	}
	if now.Before(d.globalUntil) {
		// The global limit's 429 names no bucket.
		d.over++
		h := http.Header{"Retry-After": {strconv.Itoa(int(math.Ceil(d.globalUntil.Sub(now).Seconds())))},
			"X-Ratelimit-Global": {"true"}, "X-Ratelimit-Scope": {"global"}}
		return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h, Body: http.NoBody, Request: req}, nil
	}
	route := req.Method + " " + req.URL.Path
	bucket := fmt.Sprintf("%x", sha256.Sum256([]byte(route)))[:32]
	if !d.resets[route].After(now) {
		d.used[route], d.resets[route] = 0, now.Add(5*time.Second)
	}
	h := http.Header{}
	h.Set("X-RateLimit-Bucket", bucket)
	h.Set("X-RateLimit-Limit", "5")
	after := d.resets[route].Sub(now)
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(after.Seconds(), 'f', 3, 64))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(d.resets[route].UnixMilli())/1000, 'f', 3, 64))
	status := http.StatusOK
	if d.used[route] == 5 {
		d.over++
		status = http.StatusTooManyRequests
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("Retry-After", strconv.FormatFloat(after.Seconds(), 'f', 3, 64))
	} else {
		d.used[route]++
		h.Set("X-RateLimit-Remaining", strconv.Itoa(5-d.used[route]))
	}
	return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
}

// TestRateLimitPerBucket: Discord keeps a quota per route and names its
// bucket. A service posting to many webhooks (or channels) is paced per
// bucket, as a plain client is served: 5 messages to each of 8 webhooks go
// at once, not at one webhook's pace; a 6th to one webhook waits for its
// own bucket's reset, without a 429, and holds no other webhook.
func TestRateLimitPerBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &discordRT{}
		tr := New(d)
		post := func(hook int) time.Duration {
			t.Helper()
			start := time.Now()
			url := fmt.Sprintf("https://discord.com/api/webhooks/%d/secret-token-%d", 1000+hook, hook)
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodPost, url, strings.NewReader(`{"content":"hi"}`)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("webhook %d: status %d", hook, resp.StatusCode)
			}
			return time.Since(start)
		}
		start := time.Now()
		for range 5 {
			for hook := range 8 {
				post(hook)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("5 messages to each of 8 webhooks took %v, want no wait: each has its own bucket", d)
		}
		s, err := tr.HostState(newRequest(t, context.Background(), http.MethodPost, "https://discord.com/api/webhooks/1002/secret-token-2", nil))
		if err != nil {
			t.Fatal(err)
		}
		if r := s.Writes; r.Limit != 5 || r.Remaining != 0 {
			t.Errorf("HostState of webhook 2's route: %+v; want its bucket: limit 5, none left", r)
		}
		if w := post(0); w < 4*time.Second || w > 6*time.Second {
			t.Errorf("a 6th message to webhook 0 waited %v, want its bucket's reset (5s)", w)
		}
		if w := post(1); w != 0 {
			// Webhook 1's bucket reset meanwhile too: no wait either way,
			// and never webhook 0's.
			t.Errorf("webhook 1 waited %v", w)
		}
		if d.over != 0 {
			t.Errorf("%d 429s, want none", d.over)
		}
	})
}

// TestRateLimitDiscordGlobal: a 429 of Discord's global limit (50
// requests a second per bot, across routes) pauses every route of the
// bot, buckets learned or not, reads and writes: none is sent into it, as
// each would get the same 429 (and enough of them get a bot banned). The
// call that hit it waits it out and succeeds.
func TestRateLimitDiscordGlobal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &discordRT{globalAt: 9, globalFor: 2 * time.Second}
		tr := New(d)
		send := func(method string, channel int) {
			t.Helper()
			resp, err := discordSend(t, tr, method, channel)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s channel %d: status %d, want 200", method, channel, resp.StatusCode)
			}
		}
		for channel := range 8 {
			send(http.MethodPost, channel) // 8 buckets learned
		}
		var wg sync.WaitGroup
		wg.Go(func() { send(http.MethodPost, 0) }) // the 9th request hits the global limit
		synctest.Wait()
		start := time.Now()
		for channel := range 10 { // learned buckets and new routes, writes and reads
			wg.Go(func() { send(http.MethodPost, channel) })
			wg.Go(func() { send(http.MethodGet, channel) })
		}
		wg.Wait()
		if d.intoGlobal != 0 {
			t.Errorf("%d requests were sent during the global limit's pause, want none", d.intoGlobal)
		}
		if d.over != 1 {
			t.Errorf("%d 429s, want the one", d.over)
		}
		if w := time.Since(start); w < 2*time.Second {
			t.Errorf("the other calls went after %v, want them held until the global pause ended (2s)", w)
		}
	})
}

// TestRateLimitDiscordGlobalNewBucket: a bucket that an answer in flight
// names during a global limit's pause, and any partition made during it,
// starts paused: the route's next request waits for the pause's end too.
func TestRateLimitDiscordGlobalNewBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &discordRT{globalAt: 10, globalFor: 2 * time.Second}
		answered, release := make(chan struct{}), make(chan struct{})
		held := false
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := d.RoundTrip(req)
			if strings.Contains(req.URL.Path, "/1009/") && !held {
				held = true
				close(answered)
				<-release // the answer is on its way back
			}
			return resp, err
		})
		tr := New(rt)
		send := func(channel int) time.Time {
			t.Helper()
			resp, err := discordSend(t, tr, http.MethodPost, channel)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return time.Now()
		}
		for channel := range 8 {
			send(channel)
		}
		var wg sync.WaitGroup
		wg.Go(func() { send(9) }) // answered 200 with its bucket, held on its way back
		<-answered
		start := time.Now()
		wg.Go(func() { send(0) }) // the 10th request hits the global limit
		synctest.Wait()
		close(release) // channel 9's bucket is learned during the pause
		synctest.Wait()
		if at := send(9); at.Sub(start) < 2*time.Second {
			t.Errorf("channel 9 sent again after %v, want after the global pause (2s)", at.Sub(start))
		}
		wg.Wait()
		if d.intoGlobal != 0 {
			t.Errorf("%d requests were sent during the global limit's pause, want none", d.intoGlobal)
		}
	})
}

// TestResourcesBucketRoutes: a bucket is learned per method and path; a
// route named for two buckets goes back to the host's partition; a hostile
// bucket name is not learned.
func TestResourcesBucketRoutes(t *testing.T) {
	var rs resources
	k := partKey{scheme: "https", host: "discord.com", write: true}
	answer := func(method, path, bucket string) partKey {
		req, _ := http.NewRequest(method, "https://discord.com"+path, nil)
		nk, _ := rs.learn(k, req, &http.Response{Header: http.Header{"X-Ratelimit-Bucket": {bucket}}, Request: req}, 0, false)
		return nk
	}
	if got := answer("POST", "/api/channels/1/messages", "AbC"); got.resource != "bucket AbC of channel 1" {
		t.Fatalf("learn = %+v, want the bucket of channel 1", got)
	}
	of := func(method, path string) partKey {
		req, _ := http.NewRequest(method, "https://discord.com"+path, nil)
		return rs.of(k, req)
	}
	if got := of("POST", "/api/channels/1/messages"); got.resource != "bucket AbC of channel 1" {
		t.Errorf("the route's request goes to %+v, want its bucket", got)
	}
	if got := of("GET", "/api/channels/1/messages"); got != k {
		t.Errorf("another method of the path goes to %+v, want the host's partition", got)
	}
	if got := of("POST", "/api/channels/2/messages"); got != k {
		t.Errorf("another channel goes to %+v, want the host's partition until it answered", got)
	}
	if got := answer("POST", "/api/channels/2/messages", "AbC"); got.resource != "bucket AbC of channel 2" {
		t.Errorf("another channel's answer naming the same bucket is learned in %+v, want the bucket of channel 2", got)
	}
	if got := answer("GET", "/users/@me", "AbC"); got.resource != "bucket AbC" {
		t.Errorf("a route without a top-level resource is learned in %+v, want the bucket", got)
	}
	if got := answer("GET", "/api/users/42", "AbC"); got.resource != "bucket AbC" {
		t.Errorf("a route whose only id is a user's is learned in %+v, want the bucket: a user counts no quota of its own", got)
	}
	if got := answer("POST", "/api/webhooks/7/tok", "AbC"); got.resource != "bucket AbC of webhook 7" {
		t.Errorf("a webhook's route is learned in %+v, want the bucket of webhook 7, without its token", got)
	}
	answer("POST", "/api/channels/1/messages", "other")
	if got := of("POST", "/api/channels/1/messages"); got != k {
		t.Errorf("a route named for two buckets goes to %+v, want the host's partition", got)
	}
	if got := answer("POST", "/api/channels/3/messages", strings.Repeat("b", 65)); got != k {
		t.Errorf("a 65-byte bucket name was learned: %+v", got)
	}
}

// xRT answers as X's API v2 does: each endpoint has its own quota per 15
// minutes, announced in X-Rate-Limit-* on every answer, a 429 once it is
// spent. Routes with an id share their endpoint's quota.
type xRT struct {
	mu     sync.Mutex
	start  time.Time
	used   map[string]int // endpoint → requests counted in the window
	hits   map[string]int // endpoint → requests that reached it
	over   int            // 429s answered
	limits map[string]int // endpoint → its quota; "" for the others
}

func newXRT() *xRT {
	return &xRT{start: time.Now(), used: map[string]int{}, hits: map[string]int{},
		limits: map[string]int{"/2/users/me": 75, "/2/tweets/search/recent": 450, "/2/tweets/:id": 900, "POST /2/tweets": 200}}
}

func (x *xRT) endpoint(req *http.Request) string {
	p := req.URL.Path
	if strings.HasPrefix(p, "/2/tweets/") && p != "/2/tweets/search/recent" {
		p = "/2/tweets/:id"
	}
	if req.Method == http.MethodPost {
		p = "POST " + p
	}
	return p
}

func (x *xRT) RoundTrip(req *http.Request) (*http.Response, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.endpoint(req)
	limit, window := x.limits[e], 15*time.Minute
	reset := x.start.Add(window)
	for !time.Now().Before(reset) {
		x.start, reset = reset, reset.Add(window)
		clear(x.used)
	}
	x.hits[e]++
	status := http.StatusOK
	if x.used[e] >= limit {
		status = http.StatusTooManyRequests
		x.over++
	} else {
		x.used[e]++
	}
	h := http.Header{
		"X-Rate-Limit-Limit":     {strconv.Itoa(limit)},
		"X-Rate-Limit-Remaining": {strconv.Itoa(limit - x.used[e])},
		"X-Rate-Limit-Reset":     {strconv.FormatInt(reset.Unix(), 10)},
	}
	return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
}

// xGet sends GET path to api.x.com through tr with the user's token,
// under ctx, and closes the response: its status, or the error.
func xGet(t *testing.T, tr http.RoundTripper, ctx context.Context, path string) (int, error) {
	t.Helper()
	req := newRequest(t, ctx, http.MethodGet, "https://api.x.com"+path, nil)
	req.Header.Set("Authorization", "Bearer user-token")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestRateLimitPerEndpointLimits: X counts each endpoint apart and
// announces each one's quota as a plain X-Rate-Limit-Limit. A spent
// GET /2/users/me (75 per 15 minutes) must not hold the token's searches
// and tweet lookups, which a plain client would send and X would serve,
// whether they were called before users/me was spent or not; users/me
// itself waits for its own reset, without a 429.
func TestRateLimitPerEndpointLimits(t *testing.T) {
	for _, tc := range []struct {
		searchFirst, store bool
	}{{true, false}, {false, false}, {false, true}} {
		searchFirst := tc.searchFirst
		t.Run(fmt.Sprintf("search first %v, store %v", tc.searchFirst, tc.store), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				x := newXRT()
				var opts []Option
				if tc.store {
					// A fleet's member: its partitions share their
					// state through a store, which does not pace
					// them here.
					opts = append(opts, WithQuotaStore(&unpacedQuota{}))
				}
				tr := New(x, opts...)
				get := func(path string) (int, error) { return xGet(t, tr, context.Background(), path) }
				start := time.Now()
				searches := 20
				if searchFirst {
					if code, err := get("/2/tweets/search/recent?query=go"); code != 200 || err != nil {
						t.Fatalf("search: %d, %v", code, err)
					}
					searches++
				}
				for i := range 75 {
					if code, err := get("/2/users/me"); code != 200 || err != nil {
						t.Fatalf("users/me %d: %d, %v", i+1, code, err)
					}
				}
				if _, err := get("/2/users/me"); !errors.Is(err, ErrRateLimited) {
					t.Errorf("a 76th users/me: %v, want ErrRateLimited (its reset is 15 minutes away)", err)
				}
				for i := range 20 {
					if code, err := get("/2/tweets/search/recent?query=go"); code != 200 || err != nil {
						t.Errorf("search %d after users/me was spent: %d, %v; want 200", i+1, code, err)
					}
					if code, err := get(fmt.Sprintf("/2/tweets/%d", 1000+i)); code != 200 || err != nil {
						t.Errorf("tweet lookup %d after users/me was spent: %d, %v; want 200", i+1, code, err)
					}
				}
				if _, err := get("/2/users/me"); !errors.Is(err, ErrRateLimited) {
					t.Errorf("users/me among them: %v, want ErrRateLimited: its own quota is still spent", err)
				}
				if d := time.Since(start); d != 0 {
					t.Errorf("the calls waited %v, want no wait", d)
				}
				if x.over != 0 || x.hits["/2/users/me"] != 75 {
					t.Errorf("%d 429s, users/me reached %d times; want none, and 75", x.over, x.hits["/2/users/me"])
				}
				state := func(path string) RateLimitInfo {
					return hostState(t, tr, "https://api.x.com"+path, "Authorization", "Bearer user-token").Reads.RateLimitInfo
				}
				// Tweet 1 was not called: its endpoint's partition is found by
				// the route's template.
				if me, search, tweet := state("/2/users/me"), state("/2/tweets/search/recent"), state("/2/tweets/1"); me.Limit != 75 || me.Remaining != 0 ||
					search.Limit != 450 || search.Remaining != 450-searches || tweet.Limit != 900 || tweet.Remaining != 880 {
					t.Errorf("HostState: users/me %+v, search %+v, tweets/:id %+v; want each endpoint's own quota", me, search, tweet)
				}
				// users/me waits for its own reset, then goes through.
				time.Sleep(15*time.Minute - time.Since(start))
				if code, err := get("/2/users/me"); code != 200 || err != nil {
					t.Errorf("users/me after its reset: %d, %v", code, err)
				}
			})
		})
	}
}

// unpacedQuota is a memQuota whose partitions hand out every token at
// once: only what they share (pauses) counts.
type unpacedQuota struct{ memQuota }

func (q *unpacedQuota) Partition(name string) QuotaPartition {
	p := q.memQuota.Partition(name).(*memPart)
	p.mu.Lock()
	p.take = func(int, time.Time) (time.Duration, bool, <-chan struct{}) { return 0, true, nil }
	p.mu.Unlock()
	return p
}

// TestRateLimitPlainLimitsOfOneQuota: a host that announces one plain
// limit on all its routes keeps one partition: a quota spent on one route
// holds that route, and lets one request of another route through in its
// window (its quota might be its own, as X's are), whose 429 pauses the
// partition for the rest. Limits under named policies (the binding one of
// several is announced) are one quota too, and probed by no request.
func TestRateLimitPlainLimitsOfOneQuota(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header func(path string, remaining int) http.Header
		probes int // requests of other routes let through the spent quota
	}{
		{"one limit", func(path string, remaining int) http.Header {
			return http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {strconv.Itoa(remaining)},
				"X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(10*time.Minute).Unix(), 10)}}
		}, 1},
		{"a limit that changes on its route", func(path string, remaining int) http.Header {
			limit := "100"
			if remaining < 50 {
				limit = "200" // a plan's upgrade, seen first on /v1/a
			}
			return http.Header{"X-Ratelimit-Limit": {limit}, "X-Ratelimit-Remaining": {strconv.Itoa(remaining)},
				"X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(10*time.Minute).Unix(), 10)}}
		}, 1},
		{"policies", func(path string, remaining int) http.Header {
			// The binding quota of two is announced.
			name := "hour"
			if path == "/v1/b" {
				name = "burst"
			}
			return http.Header{"Ratelimit": {fmt.Sprintf(`"%s";r=%d;t=600`, name, remaining)}, "Ratelimit-Policy": {`"hour";q=1000;w=3600, "burst";q=100;w=600`}}
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				remaining, hits := 60, 0
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					hits++
					status := http.StatusOK
					if remaining == 0 {
						status = http.StatusTooManyRequests
					} else {
						remaining--
					}
					h := tc.header(req.URL.Path, remaining)
					return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
				})
				tr := New(rt)
				send := func(path string) (int, error) {
					return getIn(t, tr, context.Background(), "https://api.example.com"+path)
				}
				for i := range 60 {
					path := "/v1/b"
					if i%2 == 1 || tc.name == "a limit that changes on its route" {
						path = "/v1/a"
					}
					if code, err := send(path); code != 200 || err != nil {
						t.Fatalf("call %d: %d, %v", i+1, code, err)
					}
				}
				var refused, throttled int
				for _, path := range []string{"/v1/a", "/v1/b", "/v1/c", "/v1/b", "/v1/a"} {
					code, err := send(path)
					switch {
					case errors.Is(err, ErrRateLimited):
						refused++
					case code == http.StatusTooManyRequests:
						throttled++
					default:
						t.Errorf("%s once the quota is spent: %d, %v; want ErrRateLimited or a 429", path, code, err)
					}
				}
				if hits != 60+tc.probes || throttled != tc.probes || refused != 5-tc.probes {
					t.Errorf("the server saw %d calls; %d 429s, %d refused; want %d, %d, %d", hits, throttled, refused, 60+tc.probes, tc.probes, 5-tc.probes)
				}
			})
		})
	}
}

// TestRateLimitPlainLimitNoProbeWhenTheWaitFits: a request of another
// route is let through a spent plain limit only when the call would
// otherwise be refused; a reset within the longest wait is waited for, as
// a host with one quota wants, without a 429.
func TestRateLimitPlainLimitNoProbeWhenTheWaitFits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reset := time.Now().Add(30 * time.Second)
		var hits []time.Time
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			hits = append(hits, time.Now())
			remaining := "0"
			if !time.Now().Before(reset) {
				remaining = "99"
			}
			h := http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {remaining},
				"X-Ratelimit-Reset": {strconv.FormatInt(reset.Unix(), 10)}}
			return &http.Response{StatusCode: http.StatusOK, Header: h, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt)
		for _, path := range []string{"/v1/a", "/v1/b"} {
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "https://api.example.com"+path, nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		if len(hits) != 2 || hits[1].Before(reset) {
			t.Errorf("the server saw calls at %v; want the second one at the reset (%v), not before", hits, reset)
		}
	})
}

func TestRouteTemplate(t *testing.T) {
	for path, want := range map[string]string{
		"":                              "",
		"/":                             "/",
		"/v1/posts":                     "/v1/posts",
		"/2/tweets/1460323737035677698": "/*/tweets/*",
		"/2/users/12/followers/":        "/*/users/*/followers/",
		"/v1/posts/6f1c2a9e-0b2d-4c5e-9f1a-2b3c4d5e6f70": "/v1/posts/*",
		"/v1/objects/5f2b6c9e8d1a4b3c2d1e0f9a":           "/v1/objects/*",
		"/v1/users/deadbeef":                             "/v1/users/deadbeef", // short hex: a name
		"/v1/users/alice":                                "/v1/users/alice",
		"//a//1":                                         "//a//*",
		"123":                                            "*",
	} {
		if got := routeTemplate(path); got != want {
			t.Errorf("routeTemplate(%q) = %q, want %q", path, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { routeTemplate("/v1/posts/search") }); n != 0 {
		t.Errorf("a path without an id: %v allocations, want 0", n)
	}
}

// TestRateLimitPlainLimitsCostOtherHostsNothing: a host's plain limits
// cost nothing to the requests of a host that announces no quota: while
// they are not split, they add no route that every request would look up;
// once they are, the path of another host's request is not templated (an
// allocation or two per request whose path holds an id).
func TestRateLimitPlainLimitsCostOtherHostsNothing(t *testing.T) {
	x := newXRT()
	base := &stubOK{header: http.Header{"Content-Type": {"application/json"}}}
	tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Host == "api.x.com" {
			return x.RoundTrip(req)
		}
		return base.RoundTrip(req)
	}))
	roundTripOK(t, tr, newRequest(t, context.Background(), http.MethodGet, "https://api.x.com/2/users/me", nil))
	if n := tr.rl.resources.n.Load(); n != 0 {
		t.Errorf("one plain limit announced: %d routes held, want none: each request to any host would look its route up", n)
	}
	roundTripOK(t, tr, newRequest(t, context.Background(), http.MethodGet, "https://api.x.com/2/tweets/search/recent", nil))
	if k := tr.rl.resources.of(partKey{scheme: "https", host: "api.x.com"}, newRequest(t, context.Background(), http.MethodGet, "https://api.x.com/2/tweets/search/recent", nil)); k.resource != "reads, limit 450" {
		t.Fatalf("X's limits were not split: its search goes to %v", k)
	}
	if raceEnabled {
		return // the race detector drops sync.Pool items at random
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	get := newRequest(t, ctx, http.MethodGet, "https://api.example.com/v1/orders/12345", nil)
	bare := testing.AllocsPerRun(1000, func() { roundTripOK(t, base, get) })
	roundTripOK(t, tr, get) // the pools
	if n := testing.AllocsPerRun(1000, func() { roundTripOK(t, tr, get) }) - bare; n != 0 {
		t.Errorf("a GET to another host under a caller's deadline allocates %v times beyond the base once X's limits are split, want 0", n)
	}
}

// TestRateLimitPlainLimitsSplitWhileWaiting: calls of a spent endpoint
// that wait for its reset in the host's partition keep waiting for it when
// another route's answer splits the host's limits: they wait in their
// limit's partition from then on, instead of being sent at once into the
// spent quota (five 429s where none was due).
func TestRateLimitPlainLimitsSplitWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newXRT()
		tr := New(x, WithMaxRetryAfter(20*time.Minute), WithMaxElapsed(0))
		get := func(ctx context.Context, path string) (int, error) { return xGet(t, tr, ctx, path) }
		start := time.Now()
		for i := range 75 {
			if code, err := get(context.Background(), "/2/users/me"); code != 200 || err != nil {
				t.Fatalf("users/me %d: %d, %v", i+1, code, err)
			}
		}
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				// Its reset is within the longest wait: it waits.
				code, err := get(context.Background(), "/2/users/me")
				if code != 200 || err != nil {
					t.Errorf("waiting users/me %d: %d, %v; want 200", i+1, code, err)
				}
				if d := time.Since(start); d < 15*time.Minute {
					t.Errorf("waiting users/me %d went after %v, want it held until its reset (15m)", i+1, d)
				}
			})
		}
		synctest.Wait()
		// A search whose deadline is too close to wait goes instead: its
		// answer announces another limit, and splits the host's.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if code, err := get(ctx, "/2/tweets/search/recent"); code != 200 || err != nil {
			t.Fatalf("search: %d, %v", code, err)
		}
		wg.Wait()
		if x.over != 0 || x.hits["/2/users/me"] != 80 {
			t.Errorf("%d 429s, users/me reached %d times; want none, and 80", x.over, x.hits["/2/users/me"])
		}
	})
}

// TestRateLimitPlainLimitProbeOncePerWindow: a host with one quota gets one
// request of another route through its spent quota per window, not one
// per response whose reset moved: a reset in seconds from the response
// (here read 2 seconds later than another's, from a slower answer) is the
// same window, and a second probe in it is a second 429.
func TestRateLimitPlainLimitProbeOncePerWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		used, over := 0, 0
		latency := map[string]time.Duration{"/v1/slow": 2 * time.Second, "/v1/b": 3 * time.Second}
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			status := http.StatusOK
			if used == 2 {
				status = http.StatusTooManyRequests
				over++
			} else {
				used++
			}
			// One quota of 2 for every route; its reset in seconds, as
			// of the request's arrival.
			h := http.Header{"X-Ratelimit-Limit": {"2"}, "X-Ratelimit-Remaining": {strconv.Itoa(2 - used)}, "X-Ratelimit-Reset": {"600"}}
			mu.Unlock()
			time.Sleep(latency[req.URL.Path])
			return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt, WithMaxRetries(0))
		send := func(path string) (int, error) {
			return getIn(t, tr, context.Background(), "https://api.example.com"+path)
		}
		if code, err := send("/v1/a"); code != 200 || err != nil {
			t.Fatalf("first call: %d, %v", code, err)
		}
		var wg sync.WaitGroup
		wg.Go(func() { send("/v1/slow") }) // the last of the quota, answered in 2s
		synctest.Wait()
		wg.Go(func() { send("/v1/b") }) // the probe of the window, answered in 3s
		synctest.Wait()
		time.Sleep(2 * time.Second) // the slow answer moves the reset 2s on
		synctest.Wait()
		if code, err := send("/v1/c"); !errors.Is(err, ErrRateLimited) {
			t.Errorf("another route in the same window: %d, %v; want ErrRateLimited: the window's probe is in flight", code, err)
		}
		wg.Wait()
		if over != 1 {
			t.Errorf("%d 429s, want 1: one probe per window", over)
		}
	})
}

// TestRateLimitPlainLimitsThrottledSplitsNothing: a 429 that announces
// another plain limit than the host's answers did (the limit of the rule
// that throttled it, a burst limit over an hourly quota) does not take the
// host for one of per-endpoint quotas: its pause holds every route, as the
// host's one quota wants, instead of its own route's alone (each other
// route would get a 429 of its own into it).
func TestRateLimitPlainLimitsThrottledSplitsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var until time.Time
		hits, over := 0, 0
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			hits++
			if hits == 10 {
				until = time.Now().Add(30 * time.Second) // a burst limit of 10
			}
			if time.Now().Before(until) {
				over++
				h := http.Header{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"0"}, "Retry-After": {"30"},
					"X-Ratelimit-Reset": {strconv.FormatInt(until.Unix(), 10)}}
				return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h, Body: http.NoBody, Request: req}, nil
			}
			h := http.Header{"X-Ratelimit-Limit": {"1000"}, "X-Ratelimit-Remaining": {strconv.Itoa(1000 - hits)},
				"X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)}}
			return &http.Response{StatusCode: http.StatusOK, Header: h, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt, WithMaxRetries(0))
		send := func(path string) int {
			t.Helper()
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "https://api.example.com"+path, nil))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for i := range 9 {
			send("/v1/" + string(rune('a'+i%3)))
		}
		if code := send("/v1/b"); code != http.StatusTooManyRequests {
			t.Fatalf("the 10th call: %d, want the burst limit's 429", code)
		}
		start := time.Now()
		for _, path := range []string{"/v1/a", "/v1/c", "/v1/d"} {
			if code := send(path); code != http.StatusOK {
				t.Errorf("%s during the pause: %d, want 200 once it ended", path, code)
			}
		}
		if w := time.Since(start); w < 30*time.Second {
			t.Errorf("the other routes went after %v, want them held until the pause ended (30s)", w)
		}
		if over != 1 {
			t.Errorf("%d 429s, want the one", over)
		}
	})
}

// TestHostPauses: a global limit's pause is recorded per host and
// credential, the later one wins, ended ones are forgotten at the next
// record, ResetHost's matcher forgets its host's, and the table is bounded.
func TestHostPauses(t *testing.T) {
	var hp hostPauses
	now := time.Unix(1e9, 0)
	a := partKey{scheme: "https", host: "discord.com", cred: 7}
	if got := hp.of(a); !got.IsZero() {
		t.Fatalf("empty: %v", got)
	}
	hp.set(a, now.Add(2*time.Second), now)
	hp.set(a, now.Add(time.Second), now) // an earlier end changes nothing
	if got := hp.of(partKey{scheme: "https", host: "discord.com", write: true, resource: "bucket x", cred: 7}); !got.Equal(now.Add(2 * time.Second)) {
		t.Errorf("another partition of the host and credential: %v, want the pause", got)
	}
	if got := hp.of(partKey{scheme: "https", host: "discord.com", cred: 8}); !got.IsZero() {
		t.Errorf("another credential: %v, want none", got)
	}
	b := partKey{scheme: "https", host: "other.test"}
	hp.set(b, now.Add(10*time.Second), now.Add(3*time.Second)) // a's has ended: forgotten
	if got, n := hp.of(a), hp.n.Load(); !got.IsZero() || n != 1 {
		t.Errorf("after a's end: %v, %d recorded; want none, 1", got, n)
	}
	hp.forget(hostMatcher{host: "other.test"}, false)
	if got, n := hp.of(b), hp.n.Load(); !got.IsZero() || n != 0 {
		t.Errorf("after ResetHost: %v, %d recorded; want none, 0", got, n)
	}
	for i := range maxHostPauses + 10 {
		hp.set(partKey{scheme: "https", host: "h.test", cred: uint64(i + 1)}, now.Add(time.Hour), now)
	}
	if n := hp.n.Load(); n != maxHostPauses {
		t.Errorf("%d recorded, want at most %d", n, maxHostPauses)
	}
}

// TestRateLimitPlainLimitNoProbeThroughTheFleetsPause: a fleet member
// lets no request of another route through its spent plain limit while
// the fleet's pause (another member's 429) is in force.
func TestRateLimitPlainLimitNoProbeThroughTheFleetsPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hits := 0
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			hits++
			h := http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"0"},
				"X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(15*time.Minute).Unix(), 10)}}
			return &http.Response{StatusCode: http.StatusOK, Header: h, Body: http.NoBody, Request: req}, nil
		})
		store := &unpacedQuota{}
		tr := New(rt, WithQuotaStore(store))
		send := func(path string) error {
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "https://api.example.com"+path, nil))
			if err == nil {
				resp.Body.Close()
			}
			return err
		}
		if err := send("/v1/a"); err != nil {
			t.Fatal(err)
		}
		if len(store.names) == 0 {
			t.Fatal("no partition in the store")
		}
		store.part(store.names[0]).Pause(time.Now().Add(5 * time.Minute)) // another member's 429
		if err := send("/v1/b"); !errors.Is(err, ErrRateLimited) {
			t.Errorf("another route during the fleet's pause: %v, want ErrRateLimited", err)
		}
		if hits != 1 {
			t.Errorf("the server saw %d requests, want 1", hits)
		}
		time.Sleep(6 * time.Minute) // the pause is over; the quota is still spent
		if err := send("/v1/b"); err != nil {
			t.Errorf("another route after the fleet's pause: %v, want it let through", err)
		}
		if hits != 2 {
			t.Errorf("the server saw %d requests, want 2", hits)
		}
	})
}

// TestRateLimitPlainLimitsSplitKeepsTheFleetsPause: a fleet member whose
// host partition is held by the fleet's pause (another member's 429 on
// users/me, in the store) keeps holding users/me when an answer in flight
// splits its limits: the pause goes to users/me's limit partition with the
// rest of the host's state. It stayed in the host's partition alone, which
// users/me no longer goes to: the member's calls waiting for it were sent
// at once into it (a 429, and one per call that went before that 429
// paused users/me's partition).
func TestRateLimitPlainLimitsSplitKeepsTheFleetsPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newXRT()
		store := &unpacedQuota{}
		held, release := make(chan struct{}), make(chan struct{})
		a := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Path == "/2/tweets/search/recent" {
				close(held)
				<-release // the answer is on its way back
			}
			return x.RoundTrip(req)
		}), WithQuotaStore(store), WithMaxRetryAfter(20*time.Minute), WithMaxElapsed(0))
		b := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := x.RoundTrip(req)
			time.Sleep(time.Second) // B's calls are in flight together
			return resp, err
		}), WithQuotaStore(store), WithMaxRetries(0))
		get := func(tr *Transport, path string) int {
			t.Helper()
			code, err := xGet(t, tr, context.Background(), path)
			if err != nil {
				t.Errorf("%s: %v", path, err)
			}
			return code
		}
		start := time.Now()
		for i := range 70 {
			if code := get(a, "/2/users/me"); code != 200 {
				t.Fatalf("A's users/me %d: %d", i+1, code)
			}
		}
		var wg sync.WaitGroup
		wg.Go(func() { get(a, "/2/tweets/search/recent") })
		<-held
		for range 6 {
			wg.Go(func() { get(b, "/2/users/me") }) // the last 5 of the quota, and a 429
		}
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		if x.over != 1 {
			t.Fatalf("B: %d 429s, want 1", x.over)
		}
		for i := range 3 {
			wg.Go(func() {
				// A's users/me waits for the fleet's pause (until the reset).
				if code := get(a, "/2/users/me"); code != 200 {
					t.Errorf("A's waiting users/me %d: %d, want 200", i+1, code)
				}
				if d := time.Since(start); d < 15*time.Minute {
					t.Errorf("A's waiting users/me %d went after %v, want it held by the fleet's pause until the reset (15m)", i+1, d)
				}
			})
		}
		synctest.Wait()
		close(release) // the search's answer splits A's limits
		wg.Wait()
		if x.over != 1 {
			t.Errorf("%d 429s, want B's one", x.over)
		}
		// A's split kept what the store holds for the fleet: the other
		// members split at their own time, and still use it.
		store.mu.Lock()
		defer store.mu.Unlock()
		for name, p := range store.parts {
			p.mu.Lock()
			if p.resets != 0 {
				t.Errorf("the store's partition %q was reset %d times by A's split; want it kept for the fleet", name, p.resets)
			}
			p.mu.Unlock()
		}
	})
}

// TestRateLimitPlainLimitsSplitPacedByTheStore: a fleet member's partition
// of a plain limit, made by a split, is paced by the store, as every
// partition with a store is, at the quota the responses tell it: a window
// taken from a reset believed far ahead (a first answer that said 30
// minutes, of a quota of 10 a minute) is forgotten once no answer comes
// close to it for two of its windows, and the store paces 10 a minute
// again. The split gave the partition a pace of its own, which no response
// updated (they go to the store): 10 per 30 minutes for good.
func TestRateLimitPlainLimitsSplitPacedByTheStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		start := time.Now()
		limits := map[string]int{"/v1/a": 10, "/v1/b": 100}
		used := map[string]int{}
		window, ok := 0, 0
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			// Each endpoint counts apart, per minute.
			if w := int(time.Since(start) / time.Minute); w != window {
				window = w
				clear(used)
			}
			e := req.URL.Path
			status := http.StatusOK
			if used[e] >= limits[e] {
				status = http.StatusTooManyRequests
			} else {
				used[e]++
				ok++
			}
			reset := start.Add(time.Duration(window+1) * time.Minute)
			if ok == 1 {
				reset = start.Add(30 * time.Minute) // believed: within MaxBelievedReset
			}
			h := http.Header{"X-Ratelimit-Limit": {strconv.Itoa(limits[e])}, "X-Ratelimit-Remaining": {strconv.Itoa(limits[e] - used[e])},
				"X-Ratelimit-Reset": {strconv.FormatInt(reset.Unix(), 10)}}
			return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt, WithQuotaStore(&memQuota{}), WithMaxRetryAfter(10*time.Minute))
		get := func(path string) {
			t.Helper()
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "https://api.example.com"+path, nil))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: status %d", path, resp.StatusCode)
			}
		}
		get("/v1/a") // the window is taken for 30 minutes
		get("/v1/b") // splits the host's limits
		for time.Since(start) < 2*time.Hour {
			get("/v1/a")
		}
		before := ok
		for time.Since(start) < 2*time.Hour+30*time.Minute {
			get("/v1/a")
		}
		if n := ok - before; n < 200 {
			t.Errorf("%d calls of /v1/a in 30 minutes, 2 hours on; want about 285, its quota of 10 a minute paced at 95%%", n)
		}
	})
}

// TestRateLimitPlainLimitsSplitOutlivesTheRoutesTable: a host's plain
// limits stay split when the table of routes fills up (here with another
// host's: 4100 Discord webhooks, a bucket each) and is emptied: the
// routes are learned again, each in its limit's partition. The split was
// forgotten with the routes: the spent users/me, sent again as a plain
// client's would be, got a 429 that paused the host's partition, which
// held every other read of the token (its searches refused for 15
// minutes, where a plain client's go through).
func TestRateLimitPlainLimitsSplitOutlivesTheRoutesTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x, d := newXRT(), &discordRT{}
		tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Host == "discord.com" {
				return d.RoundTrip(req)
			}
			return x.RoundTrip(req)
		}))
		get := func(path string) (int, error) { return xGet(t, tr, context.Background(), path) }
		splitXLimits(t, get)
		for hook := range maxResourceRoutes + 4 {
			url := fmt.Sprintf("https://discord.com/api/webhooks/%d/token", hook)
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodPost, url, strings.NewReader(`{"content":"hi"}`)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		get("/2/users/me") // its route forgotten: sent, a 429
		for i := range 3 {
			if code, err := get("/2/tweets/search/recent"); code != 200 {
				t.Errorf("search %d after the routes were emptied: %d, %v; want 200", i+1, code, err)
			}
		}
		if x.over > 1 {
			t.Errorf("%d 429s, want users/me's one at most", x.over)
		}
	})
}

// spentQuota is a memQuota whose partitions give no token, once they
// learned a quota with none remaining, until its reset: the fleet's bucket
// is spent (redisquota's, seeded from the remaining quota a response
// announced, refuses every lease until then).
type spentQuota struct{ memQuota }

func (q *spentQuota) Partition(name string) QuotaPartition {
	return &spentPart{memPart: q.memQuota.Partition(name).(*memPart)}
}

type spentPart struct {
	*memPart
	mu    sync.Mutex
	until time.Time // the reset of a spent quota
}

func (p *spentPart) Learn(info RateLimitInfo, window time.Duration) {
	p.mu.Lock()
	if info.Remaining == 0 {
		p.until = info.Reset
	}
	p.mu.Unlock()
	p.memPart.Learn(info, window)
}

func (p *spentPart) Take(now time.Time) (time.Duration, bool, <-chan struct{}) {
	p.mu.Lock()
	until := p.until
	p.mu.Unlock()
	if now.Before(until) {
		return 100 * time.Millisecond, false, nil
	}
	return p.memPart.Take(now)
}

// TestRateLimitPlainLimitsSplitTakesNoTokenOfTheFirstLimit: once a fleet
// member's split handed the host partition's quota to the first limit's
// partition, the routes that still go to the host's partition (those not
// answered yet: a first tweet lookup after users/me was spent) take no
// token of that quota, which the store keeps for the members not split
// yet: they are sent, as a plain client's. Each waited for a token of the
// spent users/me, which the store gives none of until its reset, for the
// whole of the call's budget (5 minutes), and failed.
func TestRateLimitPlainLimitsSplitTakesNoTokenOfTheFirstLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newXRT()
		x.used["/2/users/me"] = 74 // the fleet's other calls
		tr := New(x, WithQuotaStore(&spentQuota{}))
		get := func(path string) (int, error) { return xGet(t, tr, context.Background(), path) }
		if code, err := get("/2/users/me"); code != 200 { // the last of its quota
			t.Fatalf("users/me: %d, %v", code, err)
		}
		if code, err := get("/2/tweets/search/recent"); code != 200 { // splits the host's limits
			t.Fatalf("search: %d, %v", code, err)
		}
		start := time.Now()
		if code, err := get("/2/tweets/1460323737035677698"); code != 200 || time.Since(start) != 0 {
			t.Errorf("a first tweet lookup after the split: %d, %v after %v; want 200 at once", code, err, time.Since(start))
		}
		if _, err := get("/2/users/me"); !errors.Is(err, ErrRateLimited) {
			t.Errorf("users/me: %v, want ErrRateLimited: its quota is spent", err)
		}
		if x.over != 0 {
			t.Errorf("%d 429s, want none", x.over)
		}
	})
}

// TestRateLimitSplitDuringGlobalPause: a host's plain limits split while
// its global limit's pause is in force (an answer in flight announces
// another route's limit): the host's partition, cleared by the split, is
// still paused, and a route not learned yet waits for the pause's end.
func TestRateLimitSplitDuringGlobalPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newXRT()
		var mu sync.Mutex
		var tweetAt time.Time
		answered, release := make(chan struct{}), make(chan struct{})
		meCalls := 0
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			switch p := req.URL.Path; {
			case p == "/2/users/me":
				mu.Lock()
				meCalls++
				n := meCalls
				mu.Unlock()
				if n == 2 {
					h := http.Header{"Retry-After": {"60"}, "X-Ratelimit-Global": {"true"}}
					return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h, Body: http.NoBody, Request: req}, nil
				}
			case strings.HasPrefix(p, "/2/tweets/search"):
				resp, err := x.RoundTrip(req)
				close(answered)
				<-release // announces 450 once the global pause is in force
				return resp, err
			case strings.HasPrefix(p, "/2/tweets/"):
				mu.Lock()
				tweetAt = time.Now()
				mu.Unlock()
			}
			return x.RoundTrip(req)
		})
		tr := New(rt)
		get := func(path string) {
			if _, err := xGet(t, tr, context.Background(), path); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
		start := time.Now()
		get("/2/users/me")
		var wg sync.WaitGroup
		wg.Go(func() { get("/2/tweets/search/recent?query=go") })
		<-answered
		wg.Go(func() { get("/2/users/me") }) // the global limit's 429: a pause of 60 s
		synctest.Wait()
		close(release) // the split, during the pause
		synctest.Wait()
		get("/2/tweets/123") // not learned yet: the host's partition
		wg.Wait()
		if tweetAt.Sub(start) < 60*time.Second {
			t.Errorf("the tweet lookup reached the server after %v, want after the global pause (60s)", tweetAt.Sub(start))
		}
	})
}

// TestRateLimitResourceUnderAPIPrefix: GitHub Enterprise Server serves its
// REST API under /api/v3 and its GraphQL API at /api/graphql, every route's
// first segment "api". A spent core quota must not hold the searches nor
// GraphQL, which a plain client sends and the server answers. (The
// segment "api" was learned for core: the search call was refused with
// ErrRateLimited for core's 30 minutes, never sent.)
func TestRateLimitResourceUnderAPIPrefix(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		calls := map[string]int{}
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			res, remaining := "core", 0 // spent
			switch {
			case strings.HasPrefix(req.URL.Path, "/api/v3/search/"):
				res, remaining = "search", 29
			case req.URL.Path == "/api/graphql":
				res, remaining = "graphql", 4999
			}
			calls[res]++
			h := http.Header{}
			h.Set("X-RateLimit-Resource", res)
			h.Set("X-RateLimit-Limit", "5000")
			h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
			h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(30*time.Minute).Unix(), 10))
			return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt)
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/v3/repos/o/r"}, // spends core
			{"GET", "/api/v3/search/issues?q=x"},
			{"POST", "/api/graphql"},
		} {
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), c.method, "https://ghe.example.com"+c.path, nil))
			if err != nil {
				t.Fatalf("%s %s after core was spent: %v", c.method, c.path, err)
			}
			resp.Body.Close()
		}
		if calls["search"] != 1 || calls["graphql"] != 1 {
			t.Errorf("calls = %v, want one search and one graphql call", calls)
		}
		// Core's routes still wait for core's reset.
		if _, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "https://ghe.example.com/api/v3/repos/o/r/issues", nil)); !errors.Is(err, ErrRateLimited) {
			t.Errorf("core call with core spent: %v, want ErrRateLimited", err)
		}
	})
}

// splitXLimits spends X's users/me quota (75 in 15 minutes) through get,
// then sends a search, whose other limit splits X's plain limits by route.
func splitXLimits(t *testing.T, get func(path string) (int, error)) {
	t.Helper()
	for i := range 75 {
		if code, err := get("/2/users/me"); code != 200 {
			t.Fatalf("users/me %d: %d, %v", i+1, code, err)
		}
	}
	if code, err := get("/2/tweets/search/recent"); code != 200 { // splits X's limits
		t.Fatalf("search: %d, %v", code, err)
	}
}
