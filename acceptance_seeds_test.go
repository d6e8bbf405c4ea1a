package resilient_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestPostatoEnvelopeTeachesNothingOfOtherWrites: Postato honors
// Idempotency-Key on POST /posts only ("Only POST /posts honors the
// header"): its other writes (POST .../webhooks, .../media,
// .../media/upload-url) are processed anew under a repeated key. One of
// its own error codes (plan_inactive, workspace_required,
// policy_violation) says nothing of those writes, so it must not make the
// host one that deduplicates them. Before, a 403 workspace_required on a
// read taught the whole host: a webhook registration that Postato stored
// and then failed with a 500 was resent, and two webhooks were registered
// where a plain client registers one.
func TestPostatoEnvelopeTeachesNothingOfOtherWrites(t *testing.T) {
	var webhooks atomic.Int32
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/webhooks") {
			webhooks.Add(1) // keys ignored here, as Postato documents
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{"id":"whk_1","secret":"s"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data":[]}`))
	})
	srv := resilienttest.NewServer(resilienttest.Postato, resilienttest.WithHandler(api),
		resilienttest.WithScript("GET /v1/posts", resilienttest.RespondCode(http.StatusForbidden, "workspace_required")),
		resilienttest.WithScript("POST /v1/workspaces/w1/webhooks", resilienttest.FailAfterStoring()))
	defer srv.Close()

	tr := resilient.New(srv.Transport(), resilient.WithBackoff(0, 0))
	status, _, err := call(t, tr, context.Background(), http.MethodGet, srv.URL+"/v1/posts", nil)
	if err != nil || status != http.StatusForbidden {
		t.Fatalf("GET: %d, %v; want the 403", status, err)
	}
	status, _, err = call(t, tr, context.Background(), http.MethodPost, srv.URL+"/v1/workspaces/w1/webhooks",
		strings.NewReader(`{"url":"https://example.com/hooks","events":["post.failed"]}`))
	if n := webhooks.Load(); n != 1 || err != nil || status != http.StatusInternalServerError {
		t.Errorf("POST webhooks: %d, %v with %d webhooks registered; want the 500 with 1", status, err, n)
	}
}

// TestPostatoKeyConflictTeachesNothingOfOtherWrites: Postato honors
// Idempotency-Key on POST /posts only (NOTES.md: "`Idempotency-Key` is
// honored on POST /posts: a repeated key returns the first response"), and
// recommends "a stable key per post" for bulk submissions; its other
// writes (media upload URLs, webhooks) are processed anew under any key. A
// post re-submitted under its stable key with an edited body is answered
// with a conflict (resilienttest's Postato: 422 IDEMPOTENCY_CONFLICT, the
// IETF draft's answer): that answer speaks of the caller's own key on the
// one route the caller vouched for, and must not make the whole host one
// that deduplicates. Before, it taught the host: the next upload-URL
// request, which Postato stored and then failed with a 500, was resent
// under its generated key, and Postato stored two media records where a
// plain client stores one.
func TestPostatoKeyConflictTeachesNothingOfOtherWrites(t *testing.T) {
	srv := resilienttest.NewServer(resilienttest.Postato,
		resilienttest.WithScript(resilienttest.RouteUploadURL, resilienttest.FailAfterStoring()))
	defer srv.Close()
	tr := resilient.New(srv.Transport(), resilient.WithBackoff(0, 0))

	for i, body := range []string{`{"content":"draft"}`, `{"content":"edited"}`} {
		ctx := resilient.WithIdempotencyKey(context.Background(), "post-42") // the stable key of one post
		status, _, err := call(t, tr, ctx, http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(body))
		if want := []int{http.StatusCreated, http.StatusUnprocessableEntity}[i]; err != nil || status != want {
			t.Fatalf("POST /v1/posts %d: %d, %v; want %d", i+1, status, err, want)
		}
	}
	status, _, err := call(t, tr, context.Background(), http.MethodPost, srv.URL+"/v1/media/upload-url", strings.NewReader(`{}`))
	st := srv.Stats()
	if n := st.Attempts[resilienttest.RouteUploadURL]; n != 1 || err != nil || status != http.StatusInternalServerError {
		t.Errorf("upload URL: %d, %v after %d attempts (%d stored twice); want the 500 after 1", status, err, n, st.DuplicatesByRoute[resilienttest.RouteUploadURL])
	}
}
