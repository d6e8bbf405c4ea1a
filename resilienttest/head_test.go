package resilienttest

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
)

// TestHeadServedAsGet proves what a HEAD gets, as net/http's ServeMux
// serves it for a "GET /path" pattern: the answer of the GET of its path
// without the body (its Content-Length said), counted as an attempt of the
// GET route whose scripted step it takes; its exchange is told with its
// own method.
func TestHeadServedAsGet(t *testing.T) {
	var (
		mu  sync.Mutex
		exs []Exchange
	)
	s := NewServer(Postato, WithScript(RouteListPosts, Respond(503)),
		WithExchanges(func(e Exchange) { mu.Lock(); exs = append(exs, e); mu.Unlock() }))
	r := send(t, s, "HEAD", "/v1/posts", "", "")
	mustStatus(t, r, 503) // the GET route's script
	if len(r.body) != 0 {
		t.Errorf("HEAD answered with a body of %d bytes", len(r.body))
	}
	get := send(t, s, "GET", "/v1/posts", "", "")
	mustStatus(t, get, 200)
	r = send(t, s, "HEAD", "/v1/posts", "", "")
	mustStatus(t, r, 200)
	if r.header.Get("Content-Length") != strconv.Itoa(len(get.body)) || len(r.body) != 0 {
		t.Errorf("HEAD: Content-Length %q and %d bytes of body, want %d and none", r.header.Get("Content-Length"), len(r.body), len(get.body))
	}
	s.Close()
	if st := s.Stats(); st.Requests != 3 || st.Attempts[RouteListPosts] != 3 || len(st.Attempts) != 1 {
		t.Errorf("Requests %d, Attempts %v; want 3, all of %q", st.Requests, st.Attempts, RouteListPosts)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(exs) != 3 || exs[0].Method != "HEAD" || exs[0].Status != 503 || exs[2].Method != "HEAD" || exs[2].Status != 200 {
		t.Errorf("exchanges %+v, want HEAD 503, GET 200, HEAD 200", exs)
	}
}

// TestMethodNotAllowedAllowsHead: a 405's Allow header lists HEAD with
// every GET, as net/http's ServeMux does and RFC 9110 asks (a server that
// supports GET supports HEAD): a client that reads Allow to pick its method
// may send it.
func TestMethodNotAllowedAllowsHead(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /g", func(http.ResponseWriter, *http.Request) {})
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("PUT", "/g", nil))
	if got := rec.Header().Get("Allow"); got != "GET, HEAD" {
		t.Fatalf("net/http's Allow = %q, the test's premise is wrong", got)
	}

	s := NewServer(Altyaa)
	defer s.Close()
	for _, tc := range []struct{ method, path, allow string }{
		{"DELETE", "/v1/posts", "GET, HEAD, POST"},
		{"PUT", "/v1/posts/post_1", "GET, HEAD"},
		{"PATCH", "/v1/usage", "GET, HEAD"},
		{"GET", "/v1/media/upload-url", "POST"},
		{"HEAD", "/v1/media/upload-url", "POST"},
	} {
		r := send(t, s, tc.method, tc.path, "", "")
		mustStatus(t, r, http.StatusMethodNotAllowed)
		if got := r.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}

// TestHandlerHeadIsItsOwnRoute: on a server WithHandler, a route is the
// request's method and path, as WithHandler says: a HEAD is counted as
// "HEAD /path", and a script of the GET does not apply to it.
func TestHandlerHeadIsItsOwnRoute(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/things/1", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"id":1}`)) })
	s := NewServer(Altyaa, WithHandler(mux), WithScript("GET /v1/things/1", Respond(503)))
	defer s.Close()
	mustStatus(t, send(t, s, "HEAD", "/v1/things/1", "", ""), 200)
	mustStatus(t, send(t, s, "GET", "/v1/things/1", "", ""), 503)
	if st := s.Stats(); st.Attempts["HEAD /v1/things/1"] != 1 || st.Attempts["GET /v1/things/1"] != 1 {
		t.Errorf("Attempts %v, want one HEAD and one GET", st.Attempts)
	}
}
