package resilient

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// routeDedupe is a host that deduplicates writes by key on POST /v1/posts
// only, as Postato documents, and says so there in the header
// Idempotent-Replayed (on a replay; on every answer with fresh), while its
// other writes (POST /v1/media/upload-url) are stored anew under any key,
// and then failed with a 500.
type routeDedupe struct {
	fresh bool // "Idempotent-Replayed: false" on a fresh answer too

	mu     sync.Mutex
	posts  map[string]bool // keys of the posts stored
	stored map[string]int  // path → records stored
}

func (s *routeDedupe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Path == "/v1/posts" {
		if key := r.Header.Get("Idempotency-Key"); key != "" && s.posts[key] {
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(http.StatusCreated)
			return
		} else if key != "" {
			s.posts[key] = true
		}
		s.stored[r.URL.Path]++
		if s.fresh {
			w.Header().Set("Idempotent-Replayed", "false")
		}
		w.WriteHeader(http.StatusCreated)
		return
	}
	s.stored[r.URL.Path]++ // keys ignored here
	w.WriteHeader(http.StatusInternalServerError)
}

// TestReplayToCallersKeyTeachesNothingOfOtherWrites: a host that
// deduplicates one route by key (Postato's POST /posts) and says so in its
// answers there (Idempotent-Replayed), to a write under the caller's own
// key, speaks of the route the caller vouched for with that key, not of
// the host's other writes, as its conflict code does not
// (TestPostatoKeyConflictTeachesNothingOfOtherWrites): another write of
// the host, under a key the Transport drew, stored and then failed with a
// 500, is returned after one attempt, as a plain client returns it. Before,
// the header taught the whole host, and that write was resent and stored
// six times. The caller's key is its own also where it is not its word
// for the host: sent on to https by http.Client after a 308 from http on
// the same host (a context key, or a header http.Client copies). Before,
// such a key was taken for one the Transport drew, and the replay taught
// the https host (that of a Transport below, New(New(base)), too): the
// upload URL was stored six times.
func TestReplayToCallersKeyTeachesNothingOfOtherWrites(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fresh bool // "Idempotent-Replayed: false" on a fresh answer too
		// upgrade sends the posts to http://api.example, which answers
		// a 308 to the same URL in https, where the host is.
		upgrade bool
		header  bool // the caller's key set as a header, not with WithIdempotencyKey
		nested  bool // New(New(base)): the Transport below learns nothing either
	}{
		{name: "replayed"},
		{name: "fresh answers say so too", fresh: true},
		{name: "context key, through a 308 to https", upgrade: true},
		{name: "header key, through a 308 to https", upgrade: true, header: true},
		{name: "context key, through a 308 to https, nested", upgrade: true, nested: true},
		{name: "header key, through a 308 to https, nested", upgrade: true, header: true, nested: true},
	} {
		s := &routeDedupe{fresh: tc.fresh, posts: map[string]bool{}, stored: map[string]int{}}
		srv := httptest.NewServer(s)
		base := &http.Transport{}
		var rt http.RoundTripper = base
		origin := srv.URL
		if tc.upgrade {
			origin = "https://api.example"
			rt = roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.URL.Scheme == "http" {
					u := *r.URL
					u.Scheme = "https"
					rec := httptest.NewRecorder()
					http.Redirect(rec, r, u.String(), http.StatusPermanentRedirect)
					resp := rec.Result()
					resp.Request = r
					return resp, nil
				}
				fwd := r.Clone(r.Context()) // https://api.example is srv
				fwd.URL.Scheme, fwd.URL.Host = "http", strings.TrimPrefix(srv.URL, "http://")
				resp, err := base.RoundTrip(fwd)
				if resp != nil {
					resp.Request = r
				}
				return resp, err
			})
		}
		if tc.nested {
			rt = New(rt, fastRetries, WithoutRateLimit(), WithoutBreaker())
		}
		client := &http.Client{Transport: New(rt, fastRetries, WithoutRateLimit(), WithoutBreaker())}
		do := func(ctx context.Context, url string, h http.Header) (int, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"content":"hello"}`))
			maps.Copy(req.Header, h)
			resp, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		posts := origin + "/v1/posts"
		if tc.upgrade {
			posts = "http://api.example/v1/posts"
		}
		for range 2 { // the caller's own retry of one post, replayed the second time
			ctx, h := WithIdempotencyKey(context.Background(), "post-42"), http.Header(nil)
			if tc.header {
				ctx, h = context.Background(), http.Header{"Idempotency-Key": {"post-42"}}
			}
			if status, err := do(ctx, posts, h); err != nil || status != http.StatusCreated {
				t.Fatalf("%s: POST /v1/posts: %d, %v; want 201", tc.name, status, err)
			}
		}
		status, err := do(context.Background(), origin+"/v1/media/upload-url", nil)
		s.mu.Lock()
		stored, media := s.stored["/v1/posts"], s.stored["/v1/media/upload-url"]
		s.mu.Unlock()
		base.CloseIdleConnections()
		srv.Close()
		if stored != 1 {
			t.Errorf("%s: the post was stored %d times, want once", tc.name, stored)
		}
		if err != nil || status != http.StatusInternalServerError || media != 1 {
			t.Errorf("%s: upload URL: %d, %v, stored %d times; want the 500, stored once", tc.name, status, err, media)
		}
	}
}
