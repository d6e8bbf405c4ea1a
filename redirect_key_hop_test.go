package resilient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRedirectKeepsDrawnKeyAfterAnotherHost checks that the key the
// Transport drew for a write on a host follows it through a 307 on that
// host when the write reached the host through a redirect from another:
// the request http.Client follows the 307 with is the same write, on the
// same host, whatever host the chain began at. It got a fresh key there,
// as the check compared it with the first request of the chain, and the
// host that deduplicates by key created the write twice.
func TestRedirectKeepsDrawnKeyAfterAnotherHost(t *testing.T) {
	srv, creates := keyedCreateServer(t)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, srv.URL+"/create", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(front.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	cl := &http.Client{Transport: New(nil, WithBackoff(time.Millisecond, time.Millisecond), WithKeyHonoringHosts(host))}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, front.URL+"/orders", strings.NewReader(`{"amount":1}`))
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := creates(); len(got) != 1 {
		t.Errorf("one write created %d times, under keys %q", len(got), got)
	}
}

// TestRedirectKeyStaysOnItsHost checks that the key the Transport drew
// for a write on one host does not follow it to another through a 307,
// though that other host is the one the chain began at: the key is the
// write's on the host it was drawn for.
func TestRedirectKeyStaysOnItsHost(t *testing.T) {
	var keys []string
	var a, b *httptest.Server
	a = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		if r.URL.Path == "/start" {
			http.Redirect(w, r, b.URL+"/hop", http.StatusTemporaryRedirect)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(a.Close)
	var bKey string
	b = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bKey = r.Header.Get("Idempotency-Key")
		http.Redirect(w, r, a.URL+"/end", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(b.Close)
	cl := &http.Client{Transport: New(nil)}
	req, _ := http.NewRequest(http.MethodPost, a.URL+"/start", strings.NewReader(`{}`))
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(keys) != 2 || bKey == "" || keys[1] == bKey {
		t.Errorf("keys on the first host %q, on the other %q: the other host's key followed the write back", keys, bKey)
	}
}
