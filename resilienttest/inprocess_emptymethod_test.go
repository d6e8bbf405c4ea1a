package resilienttest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestServeHTTPEmptyMethodIsGet: a request built by hand for a call in
// process may leave its Method empty, which net/http reads as GET (a
// client request's empty Method means GET). ServeHTTP answers it as the
// GET of its path, on a server of a dialect and on one WithHandler, and
// tells its exchange as a GET; it does not answer 405.
func TestServeHTTPEmptyMethodIsGet(t *testing.T) {
	var got []Exchange
	s := NewServer(Postato, WithExchanges(func(e Exchange) { got = append(got, e) }))
	defer s.Close()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/posts", nil)
	req.Method = ""
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("empty Method on /v1/posts: status %d, want 200 as for a GET", rec.Code)
	}
	if req.Method != "" {
		t.Errorf("the caller's request's Method = %q, want it left empty", req.Method)
	}
	if st := s.Stats(); st.Attempts[RouteListPosts] != 1 {
		t.Errorf("Attempts %v, want one of %q", st.Attempts, RouteListPosts)
	}
	if len(got) != 1 || got[0].Method != http.MethodGet {
		t.Errorf("exchanges %+v, want one GET", got)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/things", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := NewServer(Postato, WithHandler(mux), WithScript("GET /v1/things", Respond(503)))
	defer h.Close()
	for _, want := range []int{503, 204} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/v1/things", nil)
		req.Method = ""
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("WithHandler, empty Method: status %d, want %d (the GET route's script, then the handler)", rec.Code, want)
		}
	}
}
