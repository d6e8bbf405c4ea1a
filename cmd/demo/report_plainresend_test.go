package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestPlainColumnSaysNetHTTPResends: the plain column is a plain
// http.Client over the demo's transport, and net/http itself resends a
// keyed write, once, when the reused connection it went out on closes
// before any answer, also after the server read and stored it: against
// Altyaa, which ignores keys, the post is stored twice. The column's description must not say that it makes no
// retries at all (a mixed run shows it with 1.03 attempts per call and a
// few duplicate posts), and must name net/http's resend.
func TestPlainColumnSaysNetHTTPResends(t *testing.T) {
	srv := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithIgnoreIdempotencyKeys(true),
		resilienttest.WithScript(resilienttest.RouteCreatePost, resilienttest.Normal(), resilienttest.DropAfter(), resilienttest.Normal()))
	defer srv.Close()
	base := &http.Transport{MaxIdleConnsPerHost: 1} // as runOnce builds it
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: base}
	for i, k := range []string{"first", "second"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(`{"content":"`+k+`"}`))
		req.Header.Set("Idempotency-Key", k)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	st := srv.Stats()
	if st.Requests != 3 || st.Duplicates != 1 {
		t.Fatalf("2 calls of the plain client: Requests %d, Duplicates %d; want 3, 1 (net/http's resend)", st.Requests, st.Duplicates)
	}
	about := ""
	for _, c := range clientAbout {
		if c[0] == plainName {
			about = c[1]
		}
	}
	if strings.HasPrefix(about, "no retries;") || !strings.Contains(about, "net/http") {
		t.Errorf("the plain column says %q: it resends a keyed write itself, through net/http", about)
	}
}
