package resilient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestVirtualHostNotResentOnItsAddressesWord: an address that taught the
// Transport, under its own name, that it deduplicates writes by key
// (Idempotent-Replayed) vouches for no virtual host behind it: a write to
// another host name at that address (its Host header), processed and then
// answered 503, is not resent, as a plain client does not resend it.
// (Resent on the address's word, the host that ignores keys created it
// twice.)
func TestVirtualHostNotResentOnItsAddressesWord(t *testing.T) {
	var created atomic.Int32 // the writes the virtual host that ignores keys processed
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Host != "ignores.test" {
			w.Header().Set("Idempotent-Replayed", "false")
			w.WriteHeader(http.StatusCreated)
			return
		}
		if created.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // processed, then failed
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	tr := New(srv.Client().Transport, fastRetries)
	post := func(host string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(`{"a":1}`))
		req.Host = host
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("POST to %q: %v", host, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(""); got != http.StatusCreated {
		t.Fatalf("POST to the address: %d, want 201", got)
	}
	if !tr.keys.isLearned("http", srv.Listener.Addr().String()) {
		t.Fatal("the address's Idempotent-Replayed taught nothing")
	}
	got := post("ignores.test")
	if n := created.Load(); n != 1 || got != http.StatusServiceUnavailable {
		t.Errorf("POST to a virtual host behind the address that dedupes: %d after %d writes processed, want its 503 after 1", got, n)
	}
}
