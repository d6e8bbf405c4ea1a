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
	var created atomic.Int32 // the writes the host that ignores keys processed
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.Host {
		case "dedupes.test":
			w.Header().Set("Idempotent-Replayed", "false")
			w.WriteHeader(http.StatusCreated)
		case "ignores.test":
			if created.Add(1) == 1 {
				w.WriteHeader(http.StatusServiceUnavailable) // processed, then failed
				return
			}
			w.WriteHeader(http.StatusCreated)
		default:
			w.WriteHeader(http.StatusMisdirectedRequest)
		}
	}))
	defer srv.Close()
	tr := New(srv.Client().Transport, fastRetries)
	post := func(host string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(`{"a":1}`))
		req.Host = host
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("POST to %s: %v", host, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("dedupes.test"); got != http.StatusCreated {
		t.Fatalf("POST to the host that dedupes: %d, want 201", got)
	}
	got := post("ignores.test")
	if n := created.Load(); n != 1 || got != http.StatusServiceUnavailable {
		t.Errorf("POST to the host that ignores keys, at the same address: %d after %d writes processed, want its 503 after 1", got, n)
	}
	// The address itself, under its own name, learned nothing either.
	if tr.keys.isLearned("http", srv.Listener.Addr().String()) {
		t.Error("the address is taken to honor keys from the answers of one of its virtual hosts")
	}
}
