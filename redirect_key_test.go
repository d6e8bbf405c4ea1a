package resilient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyedCreateServer is a host that deduplicates writes by key, whose
// first POST /create is processed and its answer lost (the connection is
// closed before it), and whose later ones are redirected with a 307 to
// /target on the same host: the same write, sent on. It returns the
// server and the creates it made, one per key it had not seen.
func keyedCreateServer(t *testing.T) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	stored := map[string]bool{}
	var creates []string
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		defer mu.Unlock()
		create := func() bool {
			if key != "" && stored[key] {
				return false
			}
			stored[key] = true
			creates = append(creates, key)
			return true
		}
		switch r.URL.Path {
		case "/create":
			hits++
			if hits > 1 {
				http.Redirect(w, r, "/target", http.StatusTemporaryRedirect)
				return
			}
			create()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // processed, its answer lost
			}
		case "/target":
			if !create() {
				w.Header().Set("Idempotent-Replayed", "true")
			}
			w.WriteHeader(http.StatusCreated)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), creates...) }
}

// TestRedirectKeepsDrawnKey checks that a write the Transport keyed itself
// keeps its key through a 307 on its host, as a key set with
// WithIdempotencyKey does: the request http.Client follows it with is
// the same write, sent on, and a fresh key on it has a host that
// deduplicates by key create it twice where a plain client creates once.
func TestRedirectKeepsDrawnKey(t *testing.T) {
	for _, ctxKey := range []bool{true, false} {
		name := "drawn key"
		if ctxKey {
			name = "context key"
		}
		t.Run(name, func(t *testing.T) {
			srv, creates := keyedCreateServer(t)
			host := strings.TrimPrefix(srv.URL, "http://")
			cl := &http.Client{Transport: New(nil, WithBackoff(time.Millisecond, time.Millisecond), WithKeyHonoringHosts(host))}
			ctx := context.Background()
			if ctxKey {
				ctx = WithIdempotencyKey(ctx, "order-1")
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/create", strings.NewReader(`{"amount":1}`))
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := creates(); len(got) != 1 {
				t.Errorf("one write created %d times, under keys %q", len(got), got)
			}
		})
	}
}

// TestRedirectKeyDroppedWithItsResponse checks that the key kept for a 307
// that http.Client does not follow (a CheckRedirect that returns
// ErrUseLastResponse) leaves the Transport's table once the response is
// garbage (and its request, which holds it for a copy of the response):
// a caller that never follows its redirects grows nothing.
func TestRedirectKeyDroppedWithItsResponse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, "/target", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	tr := New(nil)
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	kept := func() int {
		tr.redirects.mu.Lock()
		defer tr.redirects.mu.Unlock()
		return len(tr.redirects.m) + len(tr.redirects.byRequest)
	}
	var held []*http.Response
	for range 3 {
		resp, err := cl.Post(srv.URL+"/create", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect {
			t.Fatalf("status %d, want 307", resp.StatusCode)
		}
		held = append(held, resp)
	}
	if n := kept(); n != 6 {
		t.Fatalf("%d keys kept for the 307s still held, want 6 (by response and by request)", n)
	}
	runtime.KeepAlive(held)
	held = nil
	for i := 0; i < 100 && kept() > 0; i++ {
		runtime.GC() // the cleanups run after the responses are collected
		time.Sleep(time.Millisecond)
	}
	if n := kept(); n != 0 {
		t.Errorf("%d keys kept after the 307s were collected, want none", n)
	}
}
