package redact

import (
	"net/http"
	"net/url"
	"testing"
)

// TestEchoesClonedHopQuery: a request cloned from one that followed a
// redirect (Request.Clone keeps its Response: a poll or the next page
// built from resp.Request) carries the query its caller set on the URL
// the server wrote. Since its URL's credentials were looked for within
// the budget of the URLs a server wrote, a path of bot tokens that the
// server redirected to spent it all before the query: the caller's new
// key, which the server echoes, stayed in the text, where it was REDACTED
// before. The query of the request answered is looked for before its
// path.
func TestEchoesClonedHopQuery(t *testing.T) {
	const oldKey, newKey = "oldkey_0123456789", "newkey_0123456789"
	first := &http.Request{Method: http.MethodGet, Header: http.Header{},
		URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1", RawQuery: "api_key=" + oldKey}}
	hop, toks := botHops(first, 1)
	next := hop.Clone(hop.Context())
	next.URL.RawQuery = "api_key=" + newKey
	if got, want := Echoes("invalid api key "+newKey, next), "invalid api key "+Placeholder; got != want {
		t.Errorf("Echoes on a cloned hop = %q, want %q", got, want)
	}
	// The path the server wrote is still looked for within the budget.
	if got, want := Echoes("no route "+toks[0], next), "no route "+Placeholder; got != want {
		t.Errorf("Echoes of the hop's path = %q, want %q", got, want)
	}
}
