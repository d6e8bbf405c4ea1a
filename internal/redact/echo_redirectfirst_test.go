package redact

import (
	"fmt"
	"net/http"
	"testing"
)

// TestEchoesRedirectedFirstRequestPastTheBound: a redirect chain longer
// than maxRedirectEchoes hops (http.Client follows as many as a custom
// CheckRedirect allows) still has the credentials of its first request,
// the caller's, REDACTED where a server's text echoes them, by Echoes and
// by Redirected: the request maxRedirectEchoes back was taken for the
// caller's, and the caller's own api_key stayed in the text. The hops
// between keep their bound.
func TestEchoesRedirectedFirstRequestPastTheBound(t *testing.T) {
	for _, hops := range []int{maxRedirectEchoes, maxRedirectEchoes + 1, maxRedirectEchoes + 4, 100} {
		req := redirectChain(hops + 1) // requests 0 … hops, 0 the caller's
		in := "invalid api key key-0-secret"
		if got, want := Echoes(in, req), "invalid api key REDACTED"; got != want {
			t.Errorf("%d hops: Echoes(%q) = %q, want %q", hops, in, got, want)
		}
		if got, want := Redirected(in, req), "invalid api key REDACTED"; got != want {
			t.Errorf("%d hops: Redirected(%q) = %q, want %q", hops, in, got, want)
		}
		near := fmt.Sprintf("no key-%d-secret", hops-1) // the request before req
		if got, want := Echoes(near, req), "no REDACTED"; got != want {
			t.Errorf("%d hops: Echoes(%q) = %q, want %q", hops, near, got, want)
		}
		if hops > maxRedirectEchoes+1 {
			far := fmt.Sprintf("no key-%d-secret", hops-maxRedirectEchoes-1) // past the bound, not the first
			if got := Echoes(far, req); got != far {
				t.Errorf("%d hops: Echoes(%q) = %q, want it kept (past the bound)", hops, far, got)
			}
		}
	}
	for _, size := range []int{2, 3, 4} { // a chain built by hand that loops has no first: its hops are looked for
		loop := redirectChain(size)
		r := loop
		for r.Response != nil {
			r = r.Response.Request
		}
		r.Response = &http.Response{Request: loop}
		for i := range size {
			in := fmt.Sprintf("no key-%d-secret", i)
			if got, want := Echoes(in, loop), "no REDACTED"; got != want {
				t.Errorf("loop of %d: Echoes(%q) = %q, want %q", size, in, got, want)
			}
		}
	}
	req := redirectChain(40)
	if n := testing.AllocsPerRun(100, func() { Echoes("7f3c2a9e-1b4d-4c8e-9f2a-123456789abc", req) }); n != 0 {
		t.Errorf("Echoes(request id) after 39 redirects allocates %v times, want 0", n)
	}
}
