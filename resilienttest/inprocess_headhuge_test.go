package resilienttest

import (
	"net/http"
	"strconv"
	"testing"
)

// TestServeHTTPHeadOfAHugeAnswerHasNoBody proves that a Huge step answers
// a HEAD called in process as on the listener, as the package
// documentation says a HEAD is answered: the status and the
// Content-Length of the envelope, no body, on a dialect's server and in
// front of a handler of the caller's own.
func TestServeHTTPHeadOfAHugeAnswerHasNoBody(t *testing.T) {
	const size = 4096
	servers := map[string]*Server{
		"dialect": NewPipeServer(Postato, WithScript(RouteUsage, Huge(503, size), Huge(503, size))),
		"handler": NewPipeServer(Postato, WithHandler(http.NotFoundHandler()),
			WithScript("HEAD /v1/usage", Huge(503, size), Huge(503, size))),
	}
	for name, s := range servers {
		defer s.Close()
		r := send(t, s, "HEAD", "/v1/usage", "", "")
		mustStatus(t, r, 503)
		if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(size) {
			t.Fatalf("%s: HEAD over the listener: Content-Length %q, want %d", name, cl, size)
		}
		rec, panicked := serveInProcess(s, "HEAD", "/v1/usage", "", "")
		if panicked != nil {
			t.Fatalf("%s: panicked: %v", name, panicked)
		}
		if cl := rec.Header().Get("Content-Length"); rec.Code != 503 || cl != strconv.Itoa(size) || rec.Body.Len() != 0 {
			t.Errorf("%s: HEAD in process: status %d, Content-Length %q, body of %d bytes; want 503, %d, none", name, rec.Code, cl, rec.Body.Len(), size)
		}
	}
}
