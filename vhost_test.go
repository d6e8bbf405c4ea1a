package resilient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// Two virtual hosts behind one address (an ingress, a gateway, a server
// called by its IP with the name in Host): the one that deduplicates writes
// by key says so in its answers (Idempotent-Replayed), the other ignores
// keys. What the first teaches is of it alone: a write to the second that
// was processed and then answered 503 is not resent, as a plain client does
// not resend it. (Taught by the address, the Transport resent it, and the
// host that ignores keys created it twice.)
func TestVirtualHostsKeyHonoringApart(t *testing.T) {
	tr, addr, post, created := vhostServer(t)
	if got := post("dedupes.test"); got != http.StatusCreated {
		t.Fatalf("POST to the host that dedupes: %d, want 201", got)
	}
	got := post("ignores.test")
	if n := created.Load(); n != 1 || got != http.StatusServiceUnavailable {
		t.Errorf("POST to the host that ignores keys, at the same address: %d after %d writes processed, want its 503 after 1", got, n)
	}
	// The address itself, under its own name, learned nothing either.
	if tr.keys.isLearned("http", addr) {
		t.Error("the address is taken to honor keys from the answers of one of its virtual hosts")
	}
}

// TestVirtualHostNotResentOnItsAddressesWord: an address that taught the
// Transport, under its own name, that it deduplicates writes by key
// (Idempotent-Replayed) vouches for no virtual host behind it: a write to
// another host name at that address (its Host header), processed and then
// answered 503, is not resent, as a plain client does not resend it.
// (Resent on the address's word, the host that ignores keys created it
// twice.)
func TestVirtualHostNotResentOnItsAddressesWord(t *testing.T) {
	tr, addr, post, created := vhostServer(t)
	if got := post(""); got != http.StatusCreated {
		t.Fatalf("POST to the address: %d, want 201", got)
	}
	if !tr.keys.isLearned("http", addr) {
		t.Fatal("the address's Idempotent-Replayed taught nothing")
	}
	got := post("ignores.test")
	if n := created.Load(); n != 1 || got != http.StatusServiceUnavailable {
		t.Errorf("POST to a virtual host behind the address that dedupes: %d after %d writes processed, want its 503 after 1", got, n)
	}
}

// vhostServer starts a server of virtual hosts at one address, closed
// when t ends: ignores.test ignores keys, and answers the first write it
// processes 503; every other Host (the address's own included)
// deduplicates writes by key and says so (Idempotent-Replayed). It returns
// a Transport over it that retries at once, the address, post, which
// sends a write with req.Host set to host and returns its status, and the
// count of the writes ignores.test processed.
func vhostServer(t *testing.T) (*Transport, string, func(host string) int, *atomic.Int32) {
	created := new(atomic.Int32)
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
	t.Cleanup(srv.Close)
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
	return tr, srv.Listener.Addr().String(), post, created
}
