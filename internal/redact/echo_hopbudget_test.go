package redact

import (
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
)

// botHops returns a request that http.Client made to follow hops
// redirects from first, the caller's request, each hop's URL a path of
// maxCredentialEchoes bot tokens that the server wrote
// ("/bot1:tok…/bot2:tok…/…"), and the tokens of the hops.
func botHops(first *http.Request, hops int) (*http.Request, []string) {
	req := first
	var toks []string
	for h := 0; h < hops; h++ {
		var p strings.Builder
		for i := 0; i < maxCredentialEchoes; i++ {
			tok := fmt.Sprintf("bot%d:tok%02d%02dsecret", i+1, h, i)
			toks = append(toks, tok)
			p.WriteString("/" + tok)
		}
		req = &http.Request{Method: http.MethodGet, Header: first.Header,
			URL:      &url.URL{Scheme: "https", Host: "api.test", Path: p.String()},
			Response: &http.Response{StatusCode: http.StatusFound, Request: req}}
	}
	return req, toks
}

// TestEchoesBoundedWorkOverHops: the credentials of the URLs a server
// wrote, those of the hops of a redirect chain, were each looked for in
// the server's text: ten hops (http.Client's limit) of sixteen bot tokens
// scanned a message of 64 KiB some 350 times, each token echoed copying
// it, on each error response (22 MB and a tenth of a CPU second, where a
// plain client spends nothing). Their scans are now bounded; the caller's
// own credentials (the first request's query and the header it set),
// echoed after all the others, are still REDACTED. The work is counted in
// bytes allocated, not in time.
func TestEchoesBoundedWorkOverHops(t *testing.T) {
	const key, auth = "sk_live_callerquerykey", "callerbearertoken1"
	first := &http.Request{Method: http.MethodGet, Header: http.Header{"Authorization": {"Bearer " + auth}},
		URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1/items", RawQuery: "api_key=" + key}}
	req, toks := botHops(first, 10)
	var b strings.Builder
	for b.Len() < 64<<10 {
		b.WriteString(strings.Join(toks, " "))
		b.WriteByte(' ')
	}
	s := b.String() + " key " + key + " token " + auth
	var out string
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out = Echoes(s, req)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(40*len(s)) {
		t.Errorf("Echoes of %d bytes over %d hops allocates %d bytes, want %d at most", len(s), 10, got, 40*len(s))
	}
	if strings.Contains(out, key) || strings.Contains(out, auth) {
		t.Errorf("Echoes kept the caller's credentials: %q", out[len(out)-80:])
	}
	// The request answered's own URL, which the server wrote, comes
	// first among those of the hops.
	if strings.Contains(out, toks[len(toks)-1]) {
		t.Errorf("Echoes kept a token of the request answered's path: %q", toks[len(toks)-1])
	}
	runtime.ReadMemStats(&before)
	Redirected(s, req)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(40*len(s)) {
		t.Errorf("Redirected of %d bytes over %d hops allocates %d bytes, want %d at most", len(s), 10, got, 40*len(s))
	}
	if out := Redirected(s, req); strings.Contains(out, key) || strings.Contains(out, auth) {
		t.Errorf("Redirected kept the caller's credentials: %q", out[len(out)-80:])
	}
}
