package resilient

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// discordNestedRT answers as Discord counts a route whose guild id is not
// its top-level resource (the route's first segment past /api/vN is
// "users", as in GET /users/@me/guilds/{guild.id}/member): one bucket,
// counted for the credential across every guild in the path (discord.js
// takes a route's major parameter from its first segment alone:
// ^/(channels|guilds|webhooks)/{id}). Past its limit, a 429.
type discordNestedRT struct {
	mu    sync.Mutex
	used  int
	reset time.Time
	hits  map[string]int // path → requests that reached the server
	over  int            // 429s
}

func (d *discordNestedRT) RoundTrip(req *http.Request) (*http.Response, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hits == nil {
		d.hits = map[string]int{}
	}
	now := time.Now()
	d.hits[req.URL.Path]++
	const limit = 3
	if !d.reset.After(now) {
		d.used, d.reset = 0, now.Add(10*time.Minute)
	}
	after := d.reset.Sub(now)
	h := http.Header{}
	h.Set("X-RateLimit-Bucket", "80c17d2f203122d936070c88c8d10f33")
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(after.Seconds(), 'f', 3, 64))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(d.reset.UnixMilli())/1000, 'f', 3, 64))
	status := http.StatusOK
	if d.used == limit {
		d.over++
		status = http.StatusTooManyRequests
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Scope", "user")
		h.Set("Retry-After", strconv.FormatFloat(after.Seconds(), 'f', 3, 64))
	} else {
		d.used++
		h.Set("X-RateLimit-Remaining", strconv.Itoa(limit-d.used))
	}
	return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
}

// TestRateLimitBucketNestedGuildSharesItsPartition: a guild id deeper in a
// route than its first segment (GET /api/v10/users/@me/guilds/{id}/member)
// is no top-level resource: Discord counts the route's bucket across
// guilds, and its routes share the bucket's partition, as they did before
// buckets were learned per top-level resource. Learned per guild, guild
// B's route, whose partition still read the quota its first answer left,
// was sent into the 429 of the limit that guild A's calls had spent.
func TestRateLimitBucketNestedGuildSharesItsPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &discordNestedRT{}
		tr := New(d)
		member := func(guild string) (int, error) {
			t.Helper()
			req := newRequest(t, context.Background(), http.MethodGet, "https://discord.com/api/v10/users/@me/guilds/"+guild+"/member", nil)
			req.Header.Set("Authorization", "Bot token-1")
			resp, err := roundTrip(t, tr, req)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		const a, b = "200000000000000001", "200000000000000002"
		for _, g := range []string{b, a, a} {
			if code, err := member(g); code != http.StatusOK {
				t.Fatalf("guild %s: %d, %v; want 200", g, code, err)
			}
		}
		// The bucket is spent for 10 minutes, for every guild.
		code, err := member(b)
		if !errors.Is(err, ErrRateLimited) {
			t.Errorf("guild B after the shared bucket was spent: %d, %v; want ErrRateLimited without reaching the server", code, err)
		}
		if d.over != 0 {
			t.Errorf("%d 429s (the server saw guild B %d times), want none", d.over, d.hits["/api/v10/users/@me/guilds/"+b+"/member"])
		}
	})
}

// TestTopLevelIDIsTheRoutesFirstSegment: only the route's first segment,
// past an API's prefix, names a top-level resource.
func TestTopLevelIDIsTheRoutesFirstSegment(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/api/v10/channels/1/messages", "channel 1"},
		{"/channels/1", "channel 1"},
		{"/api/guilds/2/members/3", "guild 2"},
		{"/api/v10/webhooks/7/tok/messages/9", "webhook 7"},
		{"/api/v10/users/@me/guilds/2/member", ""},
		{"/api/v10/users/@me/channels", ""},
		{"/api/v10/applications/5/guilds/2/commands", ""},
		{"/api/v10/guilds/templates/abc", ""},
		{"/api/v10", ""},
		{"", ""},
	} {
		if got := topLevelID(tc.path); got != tc.want {
			t.Errorf("topLevelID(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
