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
	url, base, seen := storedThenFailedServer(t)
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/posts", strings.NewReader(`{"text":"hi"}`))
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
	for i, h := range seen() {
		if keys := h.Values("Idempotency-Key"); !slices.Equal(keys, []string{"key-A"}) {
			t.Errorf("attempt %d carried the key fields %q, want the call's key once, [key-A]", i+1, keys)
		}
	}
}

// storedThenFailedServer starts an HTTP/2 server that answers a write's
// first request 500 (stored, then failed) and the others 201, and returns
// its URL, a transport to it, and the headers of the requests it got, in
// order, to be read once the call returned.
func storedThenFailedServer(t *testing.T) (url string, base *http.Transport, seen func() []http.Header) {
	t.Helper()
	var (
		mu      sync.Mutex
		headers []http.Header
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		headers = append(headers, r.Header.Clone())
		first := len(headers) == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusInternalServerError) // stored, then failed
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	base = srv.Client().Transport.(*http.Transport)
	t.Cleanup(base.CloseIdleConnections)
	return srv.URL, base, func() []http.Header {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(headers)
	}
}
