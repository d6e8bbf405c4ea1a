package resilienttest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// serveInProcess calls s.ServeHTTP with a recorder, as a test calling the
// server in process does, and returns the recorder and the value the call
// panicked with (nil for none).
func serveInProcess(s *Server, method, path, body, key string) (rec *httptest.ResponseRecorder, panicked any) {
	rec = httptest.NewRecorder()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	defer func() { panicked = recover() }()
	s.ServeHTTP(rec, req)
	return rec, nil
}

// TestServeHTTPInProcessDrop proves what ServeHTTP says of a connection
// dropped in process, where there is none to close (an
// httptest.ResponseRecorder cannot be hijacked): the call panics with
// http.ErrAbortHandler, as net/http's server expects of a handler that
// aborts its answer (and recovers), after the server has done the rest:
// the drop counted, the exchange told as dropped, the key of a write
// stored and released, so that its retry is replayed; Close then returns.
// A cut body is recorded with its status and half its body.
func TestServeHTTPInProcessDrop(t *testing.T) {
	var (
		mu  sync.Mutex
		exs []Exchange
	)
	s := NewServer(Altyaa, WithExchanges(func(e Exchange) { mu.Lock(); exs = append(exs, e); mu.Unlock() }),
		WithScript(RouteCreatePost, DropBefore(), DropAfter()), WithScript(RouteListPosts, CutBody()))
	for i := range 2 {
		if _, p := serveInProcess(s, "POST", "/v1/posts", `{"text":"a"}`, "k"); p != http.ErrAbortHandler {
			t.Fatalf("drop %d: panicked with %v, want http.ErrAbortHandler", i, p)
		}
	}
	rec, p := serveInProcess(s, "POST", "/v1/posts", `{"text":"a"}`, "k")
	if p != nil || rec.Code != http.StatusCreated || rec.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the retry: panic %v, status %d, replayed %q; want the stored write replayed", p, rec.Code, rec.Header().Get("Idempotent-Replayed"))
	}
	rec, p = serveInProcess(s, "GET", "/v1/posts", "", "")
	if p != http.ErrAbortHandler || rec.Code != http.StatusOK || rec.Body.Len() == 0 || rec.Header().Get("Content-Length") == "" {
		t.Fatalf("CutBody: panic %v, status %d, %d bytes; want http.ErrAbortHandler after a 200 and half its body", p, rec.Code, rec.Body.Len())
	}
	if st := s.Stats(); st.Requests != 4 || st.Dropped != 2 || st.StoredWrites != 1 || st.Replays != 1 {
		t.Errorf("Requests, Dropped, StoredWrites, Replays = %d, %d, %d, %d; want 4, 2, 1, 1", st.Requests, st.Dropped, st.StoredWrites, st.Replays)
	}
	s.Close()
	if _, p := serveInProcess(s, "GET", "/v1/usage", "", ""); p != http.ErrAbortHandler {
		t.Errorf("after Close: panicked with %v, want http.ErrAbortHandler", p)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []int{0, 0, 201, 200, 0}
	if len(exs) != len(want) {
		t.Fatalf("exchanges %+v, want %d", exs, len(want))
	}
	for i, e := range exs {
		if e.Status != want[i] {
			t.Errorf("exchange %d: status %d, want %d", i, e.Status, want[i])
		}
	}
}

// TestServeHTTPHeadHasNoBody proves that ServeHTTP answers a HEAD in
// process as on its listener: the GET's status and Content-Length, no
// body.
func TestServeHTTPHeadHasNoBody(t *testing.T) {
	s := NewPipeServer(Altyaa)
	defer s.Close()
	rec, panicked := serveInProcess(s, "HEAD", "/v1/usage", "", "")
	if panicked != nil {
		t.Fatalf("panicked: %v", panicked)
	}
	if cl := rec.Header().Get("Content-Length"); rec.Code != 200 || cl == "" || cl == "0" || rec.Body.Len() != 0 {
		t.Fatalf("status %d, Content-Length %q, body %q; want 200, the GET's length, none", rec.Code, cl, rec.Body)
	}
}

// TestServeHTTPNoContentHasNoBody proves that a Respond(204) step answered
// in process, as on the listener, sends neither a body nor a
// Content-Length, although the API processed the request.
func TestServeHTTPNoContentHasNoBody(t *testing.T) {
	s := NewPipeServer(Altyaa, WithScript(RouteUsage, Respond(204)))
	defer s.Close()
	rec, panicked := serveInProcess(s, "GET", "/v1/usage", "", "")
	if panicked != nil {
		t.Fatalf("panicked: %v", panicked)
	}
	if cl := rec.Header().Get("Content-Length"); rec.Code != 204 || cl != "" || rec.Body.Len() != 0 {
		t.Fatalf("status %d, Content-Length %q, body %q; want 204, none, none", rec.Code, cl, rec.Body)
	}
}
