package resilient

import (
	"net/http"
	"net/url"
	"testing"
)

// bkParse returns raw as url.Parse reads it, failing t if it does not
// parse.
func bkParse(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", raw, err)
	}
	return u
}

// bkDoURL sends rt a GET of u as url.Parse read it (a host with a session
// id after it included, which http.NewRequest would not take), through
// bkDo.
func bkDoURL(t testing.TB, rt http.RoundTripper, u *url.URL) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://placeholder.test/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL, req.Host = u, ""
	return bkDo(t, rt, req)
}
