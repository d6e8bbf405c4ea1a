package resilient_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/resilienthttp/resilient"
)

// TestWriteRuleCallerKeyUnderTwoSpellingsIsOneKey: a caller's key set under
// the key header's canonical entry ("Idempotency-Key: key-A", which the
// Transport takes for the call's key and resends the write on) and, by
// hand, under another spelling of it ("idempotency-key: key-B") was sent as
// it was set: both fields. Over HTTP/2, net/http encodes a request's
// header entries in map order, a new one at each attempt, so that a server
// that reads the first field (Go's does) deduplicated the first attempt by
// one key and its retry, which the Transport sends on the caller's word,
// by the other, one time in two: the write, failed with a 500 after it was
// stored, was stored twice. Each attempt carries the call's key once, as
// a key the caller set under another spelling alone is sent, under the
// configured name.
func TestWriteRuleCallerKeyUnderTwoSpellingsIsOneKey(t *testing.T) {
	var (
		mu   sync.Mutex
		seen [][]string // the key fields of each request, in order
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		seen = append(seen, r.Header.Values("Idempotency-Key"))
		first := len(seen) == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusInternalServerError) // stored, then failed
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	base := srv.Client().Transport.(*http.Transport)
	defer base.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(`{"text":"hi"}`))
	req.Header.Set("Idempotency-Key", "key-A")
	req.Header["idempotency-key"] = []string{"key-B"} // set by hand, as another layer may
	resp, err := resilient.New(base, resilient.WithBackoff(0, 0)).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusCreated {
		t.Fatalf("got %s %d, want HTTP/2 201 after one retry", resp.Proto, resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, keys := range seen {
		if !slices.Equal(keys, []string{"key-A"}) {
			t.Errorf("attempt %d carried the key fields %q, want the call's key once, [key-A]", i+1, keys)
		}
	}
}
