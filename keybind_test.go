package resilient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/resilienthttp/resilient/resilienttest"
)

// keyStore is a server that deduplicates writes by key as Postato
// documents it: "a repeated key returns the first response", whatever the
// path, the method or the body of the request that repeats it. It counts
// the writes it processed, and records the key of every request.
type keyStore struct {
	mu        sync.Mutex
	stored    map[string]string // key → the answer's body
	processed []string          // "METHOD /path" of each write processed
	keys      []string          // the Idempotency-Key of each request, "" for none
}

func (s *keyStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	key := r.Header.Get("Idempotency-Key")
	s.keys = append(s.keys, key)
	if body, ok := s.stored[key]; ok && key != "" {
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, body)
		return
	}
	s.processed = append(s.processed, r.Method+" "+r.URL.Path)
	body := fmt.Sprintf(`{"id":%d,"did":%q}`, len(s.processed), r.Method+" "+r.URL.Path)
	if key != "" {
		s.stored[key] = body
	}
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, body)
}

// send makes a request of method to url with ctx through tr, and returns
// its status and body, or its error.
func send(t *testing.T, tr http.RoundTripper, ctx context.Context, method, url, body string) (int, string, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), nil
}

// TestContextKeyNamesOneWrite: a context carrying WithIdempotencyKey is
// used, carelessly, for a second, different write to the same API (another
// path, another method). Under the same key, a server that deduplicates
// by key answers it with the first write's stored response: the second
// write is silently lost while the caller sees a success. The key names
// the first write it is used with: the same write again (the caller's own
// retry) carries it; a different write to the same host is sent as
// without it, with a key of its own, and processed, as a plain client's
// would be; a read, or a PUT or DELETE (methods that get no key), carries
// none and is sent as usual.
func TestContextKeyNamesOneWrite(t *testing.T) {
	for _, tc := range []struct {
		name          string
		method, path  string
		keyed         bool // the request carries the caller's key
		wantProcessed int  // writes the server processed, the first included
	}{
		{"same write again", http.MethodPost, "/v1/posts", true, 1},
		{"same write, other host spelling", http.MethodPost, "/v1/posts", true, 1},
		{"post to another path", http.MethodPost, "/v1/webhooks", false, 2},
		{"post with a query", http.MethodPost, "/v1/posts?publish=now", false, 2},
		{"patch", http.MethodPatch, "/v1/posts/1", false, 2},
		{"delete", http.MethodDelete, "/v1/posts/1", false, 2},
		{"put", http.MethodPut, "/v1/posts/1", false, 2},
		{"get", http.MethodGet, "/v1/posts/1", false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &keyStore{stored: map[string]string{}}
			srv := httptest.NewServer(store)
			defer srv.Close()
			tr := New(srv.Client().Transport, fastRetries)
			ctx := WithIdempotencyKey(context.Background(), "post-42")
			if status, body, err := send(t, tr, ctx, http.MethodPost, srv.URL+"/v1/posts", `{"content":"a"}`); err != nil || status != 201 || !strings.Contains(body, `"id":1`) {
				t.Fatalf("first write: %d %s %v", status, body, err)
			}
			url := srv.URL
			if tc.name == "same write, other host spelling" {
				i := strings.LastIndexByte(url, ':')
				url = url[:i+1] + "0" + url[i+1:] // the port with a leading zero: the same host
			}
			body := `{"content":"b"}`
			if tc.method == http.MethodGet || tc.method == http.MethodDelete {
				body = ""
			}
			status, got, err := send(t, tr, ctx, tc.method, url+tc.path, body)
			store.mu.Lock()
			defer store.mu.Unlock()
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.path, err)
			}
			if status != http.StatusCreated {
				t.Errorf("%s %s: %d %s", tc.method, tc.path, status, got)
			}
			if !tc.keyed && strings.Contains(got, `"id":1,`) {
				t.Errorf("%s %s answered with the first write's response %s", tc.method, tc.path, got)
			}
			if k := store.keys[len(store.keys)-1]; (k == "post-42") != tc.keyed {
				t.Errorf("%s %s sent with key %q; want the caller's: %v", tc.method, tc.path, k, tc.keyed)
			}
			if len(store.processed) != tc.wantProcessed {
				t.Errorf("server processed %q, want %d writes", store.processed, tc.wantProcessed)
			}
		})
	}
}

// TestContextKeyFirstReadBindsNothing: a read made with the key's context
// before the write neither carries the key nor takes it: the write that
// follows carries it, and a second write is sent with a key of its own.
func TestContextKeyFirstReadBindsNothing(t *testing.T) {
	store := &keyStore{stored: map[string]string{}}
	srv := httptest.NewServer(store)
	defer srv.Close()
	tr := New(srv.Client().Transport, fastRetries)
	ctx := WithIdempotencyKey(context.Background(), "post-42")
	if _, _, err := send(t, tr, ctx, http.MethodGet, srv.URL+"/v1/me", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := send(t, tr, ctx, http.MethodPost, srv.URL+"/v1/posts", "a"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := send(t, tr, ctx, http.MethodPost, srv.URL+"/v1/other", "b"); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	if k := store.keys; len(k) != 3 || k[0] != "" || k[1] != "post-42" || k[2] == "" || k[2] == "post-42" {
		t.Errorf("keys sent %q, want none, post-42, then one of the second write's own", k)
	}
	if len(store.processed) != 3 {
		t.Errorf("server processed %q, want the read and both writes", store.processed)
	}
	store.mu.Unlock()
	// A new context with the same key is the caller's word that it names
	// a new write: nothing is bound to it yet.
	if _, _, err := send(t, tr, WithIdempotencyKey(context.Background(), "post-42"), http.MethodPost, srv.URL+"/v1/posts", "a"); err != nil {
		t.Errorf("the same write under a new context: %v", err)
	}
}

// TestContextKeyNotSentToAnotherHost: the key's context reaches a write
// to another host (an SDK's auxiliary request, a token endpoint, a
// middleware's log sink). The key was set for the first write's API: it
// is not sent to the other host, whose write is then sent as without
// WithIdempotencyKey. Before, it carried the caller's key, taken as the
// caller's word that the other host deduplicates by key: a 500 after it
// stored the write was resent, and a host that ignores keys stored it
// twice.
func TestContextKeyNotSentToAnotherHost(t *testing.T) {
	api := resilienttest.NewServer(resilienttest.Altyaa)
	defer api.Close()
	other := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithIgnoreIdempotencyKeys(true),
		resilienttest.WithScript(resilienttest.RouteCreatePost, resilienttest.FailAfterStoring()))
	defer other.Close()
	tr := New(nil, fastRetries)
	ctx := WithIdempotencyKey(context.Background(), "post-42")
	if status, _, err := send(t, tr, ctx, http.MethodPost, api.URL+"/v1/posts", `{"content":"a"}`); err != nil || status != 201 {
		t.Fatalf("first write: %d %v", status, err)
	}
	status, _, err := send(t, tr, ctx, http.MethodPost, other.URL+"/v1/posts", `{"content":"log"}`)
	if err != nil {
		t.Fatal(err)
	}
	if status != 500 {
		t.Errorf("write to the other host: %d, want its 500 returned", status)
	}
	if st := other.Stats(); st.StoredWrites != 1 {
		t.Errorf("other host stored %d writes, want 1 (resent under the caller's key to a host that ignores keys)", st.StoredWrites)
	}
}

// TestContextKeyNotSentToAnotherVirtualHost: a context carrying
// WithIdempotencyKey is used for a second write to the same URL but to
// another virtual host behind the address (its Host header). That write is
// another host's: it carries no caller's key, and is not resent after a
// 500 by a host that ignores keys.
func TestContextKeyNotSentToAnotherVirtualHost(t *testing.T) {
	var bStored atomic.Int32
	var bKeys atomic.Value
	bKeys.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.Host {
		case "b.example":
			bStored.Add(1)
			bKeys.Store(r.Header.Get("Idempotency-Key"))
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusCreated)
		}
	}))
	defer srv.Close()
	tr := New(nil, fastRetries)
	ctx := WithIdempotencyKey(context.Background(), "post-42")
	for i, host := range []string{"a.example", "b.example"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(`{}`))
		req.Host = host
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		resp.Body.Close()
	}
	if n := bStored.Load(); n != 1 {
		t.Errorf("host b stored %d writes, want 1 (resent under the caller's key to another virtual host)", n)
	}
	if k := bKeys.Load().(string); k == "post-42" {
		t.Errorf("host b got the caller's key %q bound to host a's write", k)
	}
}

// TestContextKeyFollowsRedirectOnItsHost: the write a WithIdempotencyKey
// context names is answered with a 307 to another path of its host (a
// trailing slash added, as web frameworks redirect), which http.Client
// follows with the same method and body: the same write, which carries the
// caller's key, as a key set as a header does. Sent without it, under a key
// drawn anew for each call, the caller's own retry of the write would be
// stored twice by a host that deduplicates by key.
func TestContextKeyFollowsRedirectOnItsHost(t *testing.T) {
	store := &keyStore{stored: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/posts", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/posts/", http.StatusTemporaryRedirect)
	})
	mux.Handle("/posts/", store)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	writeTwiceUnderContextKey(t, &http.Client{Transport: New(nil, fastRetries)}, srv.URL+"/posts", store)
}

// writeTwiceUnderContextKey sends a POST to url twice with a
// WithIdempotencyKey context (the write, then the caller's own retry of
// it), and checks that store, the host the redirects lead to, processed it
// once, every time under the caller's key.
func writeTwiceUnderContextKey(t *testing.T, client *http.Client, url string, store *keyStore) {
	t.Helper()
	ctx := WithIdempotencyKey(context.Background(), "post-42")
	for i := range 2 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"content":"a"}`))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		readBody(t, resp)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.processed) != 1 {
		t.Errorf("host processed %d writes (%q), want 1; keys %q", len(store.processed), store.processed, store.keys)
	}
	for _, k := range store.keys {
		if k != "post-42" {
			t.Errorf("redirected write sent under key %q, want the caller's %q", k, "post-42")
		}
	}
}

// TestContextKeyFollowsRedirectToHTTPS: the write a WithIdempotencyKey
// context names goes to http://api.example, which answers 308 to the same
// URL in https (as a host that serves only https does): the same write,
// on the same host name, which carries the caller's key, as a key set as a
// header does (http.Client copies it). Sent without it, under a key drawn
// anew for each call, the caller's own retry of the write would be stored
// twice by a host that deduplicates by key.
func TestContextKeyFollowsRedirectToHTTPS(t *testing.T) {
	store := &keyStore{stored: map[string]string{}}
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		if r.URL.Scheme == "http" {
			u := *r.URL
			u.Scheme = "https"
			http.Redirect(rec, r, u.String(), http.StatusPermanentRedirect)
		} else {
			// The headers as the server reads them off the wire.
			wire := r.Clone(r.Context())
			wire.Header = http.Header{}
			for k, v := range r.Header {
				wire.Header[textproto.CanonicalMIMEHeaderKey(k)] = v
			}
			store.ServeHTTP(rec, wire)
		}
		resp := rec.Result()
		resp.Request = r
		return resp, nil
	})
	writeTwiceUnderContextKey(t, &http.Client{Transport: New(base, fastRetries)}, "http://api.example/posts", store)
}

// TestContextKeyNotFollowingRedirectToAnotherHost: a 307 to another host is
// followed with the same write, but the caller's key was set for its first
// host, the caller's word for that host only: the write to the other host
// is sent as without it, and not resent after it fails after storing it.
func TestContextKeyNotFollowingRedirectToAnotherHost(t *testing.T) {
	var stored atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		stored.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer other.Close()
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/posts", http.StatusTemporaryRedirect)
	}))
	defer first.Close()
	postRedirectedElsewhere(t, first.URL+"/posts", "", &stored)
}

// TestContextKeyNotFollowingRedirectToAnotherVirtualHost: the write a
// WithIdempotencyKey context names goes to virtual host a.example behind
// an address, which answers 307 with an absolute Location on the address
// itself: http.Client follows it without the Host header (it keeps it
// only for a relative Location), to the address's own virtual host, which
// ignores keys. The caller's key was its word for a.example only: the
// write to the other virtual host is sent as without it, and not resent
// after it fails after storing it.
func TestContextKeyNotFollowingRedirectToAnotherVirtualHost(t *testing.T) {
	var stored atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Host == "a.example" {
			http.Redirect(w, r, srv.URL+"/posts/", http.StatusTemporaryRedirect)
			return
		}
		stored.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	postRedirectedElsewhere(t, srv.URL+"/posts", "a.example", &stored)
}

// postRedirectedElsewhere posts to url (under host, its Host header; ""
// for the URL's) with a WithIdempotencyKey context, through an
// http.Client that follows the server's redirect to another host, which
// ignores keys and answers 500 after it stored the write (stored counts
// them): the caller's key was its word for the first host only, and the
// write is stored once, its 500 returned.
func postRedirectedElsewhere(t *testing.T, url, host string, stored *atomic.Int32) {
	t.Helper()
	client := &http.Client{Transport: New(nil, fastRetries)}
	ctx := WithIdempotencyKey(context.Background(), "post-42")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{}`))
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("status %d, want the other host's 500", resp.StatusCode)
	}
	if n := stored.Load(); n != 1 {
		t.Errorf("other host stored %d writes, want 1 (resent under the caller's key for the first)", n)
	}
}

// TestContextKeyNotFollowingLongRedirectChain: a client whose CheckRedirect
// sets no bound on redirects follows a chain longer than the Transport
// walks back (64 hops). The write a WithIdempotencyKey context names is
// POST /r/1, redirected by 307s on its host to /r/65, which stores it under
// the caller's key. Another write made with the context, POST /r/0 with
// another body, is redirected along the same chain: its request for /r/65
// is not the caller's write, whatever the 64th request before it was, and
// carries no caller's key (a host that deduplicates would answer it with
// the first write's stored response, and the write would be lost).
func TestContextKeyNotFollowingLongRedirectChain(t *testing.T) {
	store := &keyStore{stored: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscanf(r.URL.Path, "/r/%d", &n)
		if n < 65 {
			io.Copy(io.Discard, r.Body)
			http.Redirect(w, r, fmt.Sprintf("/r/%d", n+1), http.StatusTemporaryRedirect)
			return
		}
		store.ServeHTTP(w, r)
	}))
	defer srv.Close()
	client := &http.Client{
		Transport:     New(nil, fastRetries),
		CheckRedirect: func(*http.Request, []*http.Request) error { return nil },
	}
	ctx := WithIdempotencyKey(context.Background(), "post-42")
	for i, path := range []string{"/r/1", "/r/0"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		readBody(t, resp)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.processed) != 2 {
		t.Errorf("host processed %d writes (%q), want 2; keys %q", len(store.processed), store.processed, store.keys)
	}
	if len(store.keys) == 2 && store.keys[1] == "post-42" {
		t.Errorf("second write reached /r/65 under the caller's key %q, bound to the first", store.keys[1])
	}
}
