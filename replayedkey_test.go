package resilient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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
// six times.
func TestReplayToCallersKeyTeachesNothingOfOtherWrites(t *testing.T) {
	for _, fresh := range []bool{false, true} {
		s := &routeDedupe{fresh: fresh, posts: map[string]bool{}, stored: map[string]int{}}
		srv := httptest.NewServer(s)
		base := &http.Transport{}
		tr := New(base, fastRetries, WithoutRateLimit(), WithoutBreaker())
		for range 2 { // the caller's own retry of one post, replayed the second time
			ctx := WithIdempotencyKey(context.Background(), "post-42")
			if status, _, err := send(t, tr, ctx, http.MethodPost, srv.URL+"/v1/posts", `{"content":"hello"}`); err != nil || status != http.StatusCreated {
				t.Fatalf("fresh %v: POST /v1/posts: %d, %v; want 201", fresh, status, err)
			}
		}
		status, _, err := send(t, tr, context.Background(), http.MethodPost, srv.URL+"/v1/media/upload-url", `{}`)
		s.mu.Lock()
		posts, media := s.stored["/v1/posts"], s.stored["/v1/media/upload-url"]
		s.mu.Unlock()
		base.CloseIdleConnections()
		srv.Close()
		if posts != 1 {
			t.Errorf("fresh %v: the post was stored %d times, want once", fresh, posts)
		}
		if err != nil || status != http.StatusInternalServerError || media != 1 {
			t.Errorf("fresh %v: upload URL: %d, %v, stored %d times; want the 500, stored once", fresh, status, err, media)
		}
	}
}
