package resilient

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type idleCloser struct {
	rtScript
	closed int
}

func (c *idleCloser) CloseIdleConnections() { c.closed++ }

func TestCloseIdleConnectionsReachesBase(t *testing.T) {
	base := &idleCloser{}
	client := &http.Client{Transport: New(base)}
	client.CloseIdleConnections()
	if base.closed != 1 {
		t.Errorf("base CloseIdleConnections called %d times, want 1", base.closed)
	}
	New(&rtScript{}).CloseIdleConnections() // a base without the method: no panic
}

func TestZeroTransport(t *testing.T) {
	var key string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key = wireHeader(r.Header, "Idempotency-Key")
		w.Header().Set("X-Request-Id", "zero-1")
	}))
	defer srv.Close()
	var tr Transport // behaves as New(nil)
	defer tr.CloseIdleConnections()

	resp, err := (&http.Client{Transport: &tr}).Post(srv.URL+"/v1/posts", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || key == "" {
		t.Errorf("status %d, key %q: want 200 through the default chain, with a key", resp.StatusCode, key)
	}

}
