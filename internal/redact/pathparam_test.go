package redact

import (
	"net/http"
	"net/url"
	"testing"
)

// TestPathParameters: a segment's parameter whose name says it carries a
// credential (Java servlets' ;jsessionid=, which a server writes into the
// URLs it redirects a client without cookies to) has its value REDACTED;
// other parameters, and a path without any, are kept.
func TestPathParameters(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/cart;jsessionid=9F2C4A7E1B3D5C6A8E0F", "/cart;jsessionid=REDACTED"},
		{"/cart;JSESSIONID=9F2C4A7E/items;v=2", "/cart;JSESSIONID=REDACTED/items;v=2"},
		{"/a;v=1;sessionid=abc;token=def;x=y/b", "/a;v=1;sessionid=REDACTED;token=REDACTED;x=y/b"},
		{"/a;jsessionid=REDACTED", "/a;jsessionid=REDACTED"},
		{"/a;jsessionid=", "/a;jsessionid="},
		{"/a;jsessionid", "/a;jsessionid"},
		{"/odata/Customers;author=x/y", "/odata/Customers;author=x/y"},
		{"/v1;v=2/items", "/v1;v=2/items"},
		// A query written into the path (url.URL{Path: "/v1/items?…"}),
		// which net/http sends in the path, %3F-escaped.
		{"/v1/items?page=2&api_key=sk_live_9F2C4A7E", "/v1/items?page=2&api_key=REDACTED"},
		{"/v1/items?q=x&access_token=abc&sig=def&v=2", "/v1/items?q=x&access_token=REDACTED&sig=REDACTED&v=2"},
		{"/v1/cb?redirect_uri=https://app.test/cb&client_secret=s3", "/v1/cb?redirect_uri=https://app.test/cb&client_secret=REDACTED"},
		{"/webhooks/1/tok?token=abc", "/webhooks/1/REDACTED?token=REDACTED"},
		{"/wiki/Who?", "/wiki/Who?"},
		{"/search?q=author&author=linus", "/search?q=author&author=linus"},
		{"/v1?api_key=&api_key=REDACTED", "/v1?api_key=&api_key=REDACTED"},
	} {
		if got := Path(tc.in); got != tc.want {
			t.Errorf("Path(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestEchoesPathParameter: a server that echoes the session id its path
// carried has it REDACTED, as Path has it.
func TestEchoesPathParameter(t *testing.T) {
	u, _ := url.Parse("https://shop.example.com/cart;jsessionid=9F2C4A7E1B3D5C6A8E0F")
	req := &http.Request{URL: u, Header: http.Header{}}
	if got, want := Echoes("session 9F2C4A7E1B3D5C6A8E0F expired", req), "session REDACTED expired"; got != want {
		t.Errorf("Echoes = %q, want %q", got, want)
	}
}

// TestEchoesQueryInPath: a server that echoes a credential of a query
// written into the path has it REDACTED, as Path has it.
func TestEchoesQueryInPath(t *testing.T) {
	u := &url.URL{Scheme: "https", Host: "api.example.com", Path: "/v1/items?api_key=sk_live_9F2C4A7E"}
	req := &http.Request{URL: u, Header: http.Header{}}
	if got, want := Echoes("no route for /v1/items?api_key=sk_live_9F2C4A7E", req), "no route for /v1/items?api_key=REDACTED"; got != want {
		t.Errorf("Echoes = %q, want %q", got, want)
	}
}
