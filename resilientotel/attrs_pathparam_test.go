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

// TestRedactedURLQueryWrittenIntoPath: a query written into the URL's
// Path (url.URL{Path: "/v1/items?api_key=…"}, which net/http sends escaped,
// as a path) has its credential REDACTED in url.full, as the Transport's
// records have it.
func TestRedactedURLQueryWrittenIntoPath(t *testing.T) {
	u := &url.URL{Scheme: "https", Host: "api.example.com", Path: "/v1/items?page=2&api_key=sk_live_9F2C4A7E1B3D5C6A"}
	if got, want := redactedURL(&http.Request{URL: u}), "https://api.example.com/v1/items%3Fpage=2&api_key=REDACTED"; got != want {
		t.Errorf("redactedURL = %q, want %q", got, want)
	}
}
