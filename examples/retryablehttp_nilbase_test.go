package examples

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRetryableHTTPNilBaseIsItsOwnTransport shows what NewRetryableClient
// says of a nil base: go-retryablehttp's own pooled transport (cleanhttp),
// not http.DefaultTransport, is under resilient, as under a plain
// go-retryablehttp client. (No test sent a request through a nil base.)
func TestRetryableHTTPNilBaseIsItsOwnTransport(t *testing.T) {
	viaDefault := countDefaultTransport(t)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	c := NewRetryableClient(nil)
	resp, err := c.Get(srv.URL + "/v1/posts")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Get = %d, want 200", resp.StatusCode)
	}
	if n := viaDefault.Load(); n != 0 {
		t.Errorf("%d requests sent through http.DefaultTransport, want 0: a nil base is go-retryablehttp's own transport", n)
	}
}
