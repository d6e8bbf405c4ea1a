package resilient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// slashServer is a host that deduplicates writes by key (see keyStore),
// behind a redirect that adds a trailing slash to a path without one, as
// web frameworks do: a 307, which http.Client follows with the same write.
func slashServer(t *testing.T) (*httptest.Server, *keyStore) {
	store := &keyStore{stored: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/") {
			io.Copy(io.Discard, r.Body)
			http.Redirect(w, r, r.URL.Path+"/", http.StatusTemporaryRedirect)
			return
		}
		store.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, store
}

// cloneForNextWrite makes the caller's next write from resp.Request, as a
// caller that reuses the last request's URL, headers and context does:
// Request.Clone keeps its Response, the redirect that made it when
// http.Client followed one, though the clone goes to another path with
// another body, a write of its own.
func cloneForNextWrite(ctx context.Context, resp *http.Response, path, body string) *http.Request {
	next := resp.Request.Clone(ctx)
	next.URL.Path = path
	next.Body = io.NopCloser(strings.NewReader(body))
	next.ContentLength = int64(len(body))
	next.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	return next
}

// TestContextKeyNotSentWithClonedRedirectedRequest: the write a
// WithIdempotencyKey context names, POST /posts, is redirected to
// /posts/ and stored there under the caller's key. The caller makes its
// next write with the same context from resp.Request, cloned (its
// Response, the 307, comes along) and sent to another path: POST
// /posts/42/comments, itself redirected to /posts/42/comments/. It is
// not the write the key names, nor a redirect of it, whatever the
// Response it carries says: under the caller's key, the host answered it
// with the first write's stored response, and the comment was lost while
// the caller saw a success.
func TestContextKeyNotSentWithClonedRedirectedRequest(t *testing.T) {
	srv, store := slashServer(t)
	client := &http.Client{Transport: New(nil, fastRetries)}
	ctx := WithIdempotencyKey(context.Background(), "post-42")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/posts", strings.NewReader(`{"content":"a"}`))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	for _, path := range []string{"/posts/42/comments/", "/posts/42/comments"} {
		resp, err = client.Do(cloneForNextWrite(ctx, resp, path, `{"comment":"b"}`))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		if got := readBody(t, resp); strings.Contains(got, `"id":1,`) {
			t.Errorf("POST %s answered with the first write's stored response %s", path, got)
		}
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.processed) != 3 {
		t.Errorf("host processed %q, want 3 writes; keys %q", store.processed, store.keys)
	}
}

// TestReportClonedRedirectedRequest: a call whose request was cloned from
// a redirected one (its Response, the redirect that made that one, comes
// along) is no hop of a redirect: it overwrites the Report, as any other
// call does, instead of adding to the last call's.
func TestReportClonedRedirectedRequest(t *testing.T) {
	srv, _ := slashServer(t)
	client := &http.Client{Transport: New(nil, fastRetries)}
	var r Report
	ctx := WithReport(context.Background(), &r)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/posts", strings.NewReader(`{"content":"a"}`))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if r.Attempts != 2 || r.Redirects != 1 {
		t.Fatalf("Report after one redirect = %+v, want 2 attempts, 1 redirect", r)
	}
	resp, err = client.Do(cloneForNextWrite(ctx, resp, "/posts/42/comments/", `{"comment":"b"}`))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if r.Attempts != 1 || r.Redirects != 0 {
		t.Errorf("Report of a call not redirected = %+v, want 1 attempt, no redirect", r)
	}
}

// TestContextKeyOfClonedRequestFollowsItsRedirect: the caller makes its
// next write, a comment, from the last call's resp.Request, cloned
// (its Response, the 307 that made it, comes along) with a context of
// its own that names the comment's key, and sent to another path:
// POST /posts/42/comments, which the host redirects to
// /posts/42/comments/ where it stores writes by key. The clone is a
// write of its own, the first made with its context, and the request
// http.Client follows its 307 with is that write, sent on: it carries
// the caller's key, as it does when the write is no clone, so that the
// caller's key (its business identifier, the same after a restart)
// names the comment on the host.
func TestContextKeyOfClonedRequestFollowsItsRedirect(t *testing.T) {
	srv, store := slashServer(t)
	client := &http.Client{Transport: New(nil, fastRetries)}
	req, _ := http.NewRequestWithContext(WithIdempotencyKey(context.Background(), "post-42"), http.MethodPost, srv.URL+"/posts", strings.NewReader(`{"content":"a"}`))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	for _, path := range []string{"/posts/42/comments/", "/posts/42/comments"} {
		ctx := WithIdempotencyKey(context.Background(), "comment-"+path)
		resp, err := client.Do(cloneForNextWrite(ctx, resp, path, `{"comment":"b"}`))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		readBody(t, resp)
		store.mu.Lock()
		got := store.keys[len(store.keys)-1]
		store.mu.Unlock()
		if got != "comment-"+path {
			t.Errorf("POST %s stored under key %q, want the caller's %q", path, got, "comment-"+path)
		}
	}
}
