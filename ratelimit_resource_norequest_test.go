package resilient

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// noRequestRT answers as next does, but leaves Response.Request unset, as
// a response built by hand, or httptest.ResponseRecorder.Result (an
// in-process handler as the base), does: the RoundTripper contract does not
// ask a base to set it.
type noRequestRT struct{ next http.RoundTripper }

func (rt noRequestRT) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.next.RoundTrip(req)
	if resp != nil {
		resp.Request = nil
	}
	return resp, err
}

// TestRateLimitPerResourceWithoutResponseRequest: a base that leaves
// Response.Request unset still gets a partition per resource: a spent
// search quota holds no core call, as a plain client's are not held.
// Learned from the response's Request alone, the search quota went to the
// host's partition, and held every core call for a minute.
func TestRateLimitPerResourceWithoutResponseRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &githubRT{calls: map[string][]time.Time{}}
		tr := New(noRequestRT{g}, WithMaxRetryAfter(2*time.Minute))
		get := githubGet(t, tr)
		start := time.Now()
		get("/search/code?q=x") // spends search
		get("/repos/o/r")
		get("/repos/o/r/issues")
		if d := time.Since(start); d != 0 || len(g.calls["core"]) != 2 {
			t.Errorf("core calls after search was spent, the base leaving Response.Request unset: %d sent after %v, want 2 at once",
				len(g.calls["core"]), d)
		}
		get("/search/issues?q=y") // waits for the search reset
		if d := time.Since(start); d < time.Minute {
			t.Errorf("second search call after %v, want it to wait for the minute's reset", d)
		}
	})
}

// TestRateLimitPerBucketWithoutResponseRequest: Discord's buckets, per
// route, are learned from a base that leaves Response.Request unset too:
// 5 messages to each of 8 webhooks go at once, without a 429, not at one
// webhook's pace.
func TestRateLimitPerBucketWithoutResponseRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &discordRT{}
		tr := New(noRequestRT{d})
		start := time.Now()
		for range 5 {
			for hook := range 8 {
				url := fmt.Sprintf("https://discord.com/api/webhooks/%d/secret-token-%d", 1000+hook, hook)
				resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodPost, url, strings.NewReader(`{"content":"hi"}`)))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
		}
		if took := time.Since(start); took != 0 || d.calls != 40 || d.over != 0 {
			t.Errorf("5 messages to each of 8 webhooks, the base leaving Response.Request unset: %d sent, %d 429s, in %v; want 40, none, at once",
				d.calls, d.over, took)
		}
	})
}

// versionRT sends each request to next with its Discord path pinned to an
// API version, /api/webhooks/… as /api/v10/webhooks/…, on a copy of the
// request, as a base that rewrites the URL does: the response's Request
// is that copy, whose path no request the caller sends has.
type versionRT struct{ next http.RoundTripper }

func (rt versionRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.URL.Path = strings.Replace(r.URL.Path, "/api/webhooks/", "/api/v10/webhooks/", 1)
	return rt.next.RoundTrip(r)
}

// TestRateLimitPerBucketPathRewritten: a base that rewrites the path, and
// answers with the rewritten request as Response.Request, still has each
// bucket learned for the route its requests are looked up by, the
// attempt's: a 6th message to a webhook whose bucket is spent waits for
// its reset instead of drawing a 429. Learned under the rewritten path,
// which no lookup uses, the bucket held nothing.
func TestRateLimitPerBucketPathRewritten(t *testing.T) {
	bucketPathRewritten(t, "", func(base http.RoundTripper) http.RoundTripper { return New(base) })
}

// TestRateLimitPerBucketPathRewrittenUnderANestedTransport: a Transport
// over another, whose base rewrites the path, learns each bucket for the
// route of its own attempts too: the inner Transport leaves the base's
// rewritten copy as Response.Request (another URL), and neither holds a
// 6th message to a spent webhook's bucket past its reset, nor lets a 429
// through.
func TestRateLimitPerBucketPathRewrittenUnderANestedTransport(t *testing.T) {
	bucketPathRewritten(t, ", through two Transports", func(base http.RoundTripper) http.RoundTripper { return New(New(base)) })
}

// bucketPathRewritten sends 5 messages to each of 8 Discord webhooks,
// then a 6th to the first, through the Transport chain made over a base
// that rewrites the path, and checks that none got a 429 and that the 6th
// waited for its bucket's reset.
func bucketPathRewritten(t *testing.T, through string, chain func(http.RoundTripper) http.RoundTripper) {
	synctest.Test(t, func(t *testing.T) {
		d := &discordRT{}
		tr := chain(versionRT{d})
		post := func(hook int) {
			t.Helper()
			url := fmt.Sprintf("https://discord.com/api/webhooks/%d/secret-token-%d", 1000+hook, hook)
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodPost, url, strings.NewReader(`{"content":"hi"}`)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		start := time.Now()
		for range 5 {
			for hook := range 8 {
				post(hook)
			}
		}
		post(0)
		if took := time.Since(start); d.over != 0 || took < 4*time.Second || took > 6*time.Second {
			t.Errorf("5 messages to each of 8 webhooks then a 6th to one%s, the base rewriting the path: %d 429s, in %v; want none, after its bucket's reset (5s)",
				through, d.over, took)
		}
	})
}
