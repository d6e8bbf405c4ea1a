package resilientotel

import (
	"net/http"
	"net/url"
	"testing"
)

// TestRedactedURLPathParameter: url.full has the value of a path's
// session parameter (Java servlets' ;jsessionid=, written into the URLs a
// server redirects a client without cookies to) REDACTED, as the
// Transport's records have it.
func TestRedactedURLPathParameter(t *testing.T) {
	u, err := url.Parse("https://shop.example.com/app/cart;jsessionid=9F2C4A7E1B3D5C6A8E0F?x=1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := redactedURL(&http.Request{URL: u}), "https://shop.example.com/app/cart;jsessionid=REDACTED"; got != want {
		t.Errorf("redactedURL = %q, want %q", got, want)
	}
}
