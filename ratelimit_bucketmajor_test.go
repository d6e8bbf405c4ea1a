package resilient

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// discordSharedRT answers as Discord does: a route's bucket hash
// (X-RateLimit-Bucket) is the same for every channel, guild or webhook in
// its path ("non-inclusive of top-level resources"), while each of those
// top-level resources counts its own limit: renaming a channel is 2 per
// 10 minutes per channel, and once channel A is spent, channel B can still
// be renamed. With acrossIDs, the route's ids are no top-level resource
// (GET /users/@me/guilds/{guild.id}/member: discord.js takes a route's
// major parameter from its first segment alone), and one count serves
// every id. Past a limit (limit, 2 when zero), a 429.
type discordSharedRT struct {
	limit     int
	acrossIDs bool

	mu     sync.Mutex
	used   map[string]int
	resets map[string]time.Time
	hits   map[string]int // path → requests that reached the server
	over   int            // 429s
}

func (d *discordSharedRT) RoundTrip(req *http.Request) (*http.Response, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.used == nil {
		d.used, d.resets, d.hits = map[string]int{}, map[string]time.Time{}, map[string]int{}
	}
	if req.Body != nil {
		req.Body.Close()
	}
	now := time.Now()
	d.hits[req.URL.Path]++
	template := req.Method + " " + routeTemplate(req.URL.Path)
	bucket := fmt.Sprintf("%x", sha256.Sum256([]byte(template)))[:32] // the same for every channel
	limit := cmp.Or(d.limit, 2)
	key := template + " " + req.URL.Path // the channel's own count
	if d.acrossIDs {
		key = template
	}
	if !d.resets[key].After(now) {
		d.used[key], d.resets[key] = 0, now.Add(10*time.Minute)
	}
	after := d.resets[key].Sub(now)
	h := http.Header{}
	h.Set("X-RateLimit-Bucket", bucket)
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(after.Seconds(), 'f', 3, 64))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(d.resets[key].UnixMilli())/1000, 'f', 3, 64))
	status := http.StatusOK
	if d.used[key] == limit {
		d.over++
		status = http.StatusTooManyRequests
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("Retry-After", strconv.FormatFloat(after.Seconds(), 'f', 3, 64))
	} else {
		d.used[key]++
		h.Set("X-RateLimit-Remaining", strconv.Itoa(limit-d.used[key]))
	}
	return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
}

// discordCall sends a request of one bot to Discord's path through tr,
// and returns its status, or the Transport's error.
func discordCall(t *testing.T, tr *Transport, method, path string, body io.Reader) (int, error) {
	t.Helper()
	req := newRequest(t, context.Background(), method, "https://discord.com"+path, body)
	req.Header.Set("Authorization", "Bot token-1")
	resp, err := roundTrip(t, tr, req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestRateLimitBucketPerTopLevelResource: Discord names a route's bucket
// with one hash for every channel, and counts each channel apart. Renaming
// channel A twice spends A's limit for 10 minutes; channel B, renamed once
// before, still has one rename left, which a plain client gets. Learned in
// one partition per bucket hash, A's spent limit held B's rename, refused
// with ErrRateLimited (10 minutes is past WithMaxRetryAfter), without
// reaching the server.
func TestRateLimitBucketPerTopLevelResource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &discordSharedRT{}
		tr := New(d)
		rename := func(channel string) (int, error) {
			t.Helper()
			return discordCall(t, tr, http.MethodPatch, "/api/v10/channels/"+channel, strings.NewReader(`{"name":"x"}`))
		}
		const a, b = "100000000000000001", "100000000000000002"
		for _, ch := range []string{a, b, a} {
			if code, err := rename(ch); code != http.StatusOK {
				t.Fatalf("renaming channel %s: %d, %v; want 200", ch, code, err)
			}
		}
		// A is spent; B has one rename left.
		code, err := rename(b)
		if code != http.StatusOK {
			t.Errorf("second rename of channel B after A's limit was spent: %d, %v; want 200 (B's own limit has one left)", code, err)
		}
		if n := d.hits["/api/v10/channels/"+b]; n != 2 {
			t.Errorf("the server saw %d renames of channel B, want 2", n)
		}
		// A itself still waits for its own reset: its third rename is
		// refused without a 429.
		if code, err := rename(a); err == nil {
			t.Errorf("third rename of channel A: %d; want a local refusal (A's limit is spent for 10 minutes)", code)
		}
		if d.over != 0 {
			t.Errorf("%d 429s, want none", d.over)
		}
	})
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
		d := &discordSharedRT{limit: 3, acrossIDs: true}
		tr := New(d)
		member := func(guild string) (int, error) {
			t.Helper()
			return discordCall(t, tr, http.MethodGet, "/api/v10/users/@me/guilds/"+guild+"/member", nil)
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
