package resilient

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRedirectKeyCheckedAgainstTheRequestAsSent: the key of a write
// answered with a 307 goes with its hop only on the host and with the
// method the write was sent with, whatever the caller did to its request
// since the call returned (a request reused for the next send, careless
// but legal). Until 2026-12-06 the check read the request when the hop
// was sent: a PATCH's key went with a POST, and a key drawn for one host
// with a hop to another, once the caller had changed the request's
// Method or URL to theirs.
func TestRedirectKeyCheckedAgainstTheRequestAsSent(t *testing.T) {
	tests := []struct {
		name   string
		method string
		moved  bool // the hop and the reused request go to another host
	}{
		{"host", http.MethodPost, true},
		{"method", http.MethodPatch, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first, firstKeys := hopKeysServer(t)
			to, toKeys := first, firstKeys
			if tc.moved {
				to, toKeys = hopKeysServer(t)
			}
			hosts := []string{strings.TrimPrefix(first.URL, "http://"), strings.TrimPrefix(to.URL, "http://")}
			tr := New(nil, WithKeyHonoringHosts(hosts...))
			defer tr.CloseIdleConnections()
			req := newRequest(t, context.Background(), tc.method, first.URL+"/a", nil)
			resp, err := roundTrip(t, tr, req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTemporaryRedirect {
				t.Fatalf("status = %d, want %d", resp.StatusCode, http.StatusTemporaryRedirect)
			}
			// The caller reuses its request for the next send.
			u, err := url.Parse(to.URL + "/a")
			if err != nil {
				t.Fatal(err)
			}
			req.Method, req.URL, req.Host = http.MethodPost, u, u.Host
			sendHop(t, tr, to, resp) // a POST to /b of to
			a, b := firstKeys("/a"), toKeys("/b")
			if len(a) != 1 || len(b) != 1 || a[0] == "" {
				t.Fatalf("keys to /a %q, to /b %q; want one key each", a, b)
			}
			if b[0] == a[0] {
				t.Errorf("the POST hop to %s carried key %q of the %s to %s, want one of its own", to.URL, b[0], tc.method, first.URL)
			}
		})
	}
}
