package resilient

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/resilienthttp/resilient/internal/redact"
)

// followedRequest returns the request http.Client sends after the 302 of
// a GET of https://api.example.com/v1/usage?api_key=<echoSecret> to
// location, a URL the server built from that key: its Response is the
// redirect, whose Request is the first one.
func followedRequest(t *testing.T, location string) *http.Request {
	t.Helper()
	first, err := http.NewRequest(http.MethodGet, "https://api.example.com/v1/usage?api_key="+echoSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := first.URL.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	next, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	next.URL = u
	next.Response = &http.Response{StatusCode: http.StatusFound, Header: http.Header{"Location": {location}}, Request: first}
	return next
}

// TestRecordedPathCutRedactsCredentialEchoedByRedirect: a server that
// redirects to a path longer than redact.MaxPath, built so that the key
// the caller sent in the query (which the followed request does not
// carry) sits across the cut, had the key's first bytes recorded: the path
// was cut first, and the cut key no longer matched the credential looked
// for. Attempt.Path, the log's path and Error.URL show none of it.
func TestRecordedPathCutRedactsCredentialEchoedByRedirect(t *testing.T) {
	const kept = 12 // bytes of the key before the cut
	pad := strings.Repeat("p", redact.MaxPath-len("/")-len("/")-kept)
	req := followedRequest(t, "/"+pad+"/"+echoSecret+"/usage")
	if i := strings.Index(req.URL.Path, echoSecret); i != redact.MaxPath-kept {
		t.Fatalf("the key starts at byte %d of the path, want %d", i, redact.MaxPath-kept)
	}
	var buf bytes.Buffer
	var got collector[Attempt]
	tr := New(&rtScript{steps: []rtStep{{err: errors.New("connection reset by peer")}}}, WithMaxRetries(0),
		WithObserver(got.add), WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
	re := callError(t, tr, req)
	as := got.all()
	if len(as) != 1 {
		t.Fatalf("%d records, want 1", len(as))
	}
	cut := echoSecret[:kept]
	for what, s := range map[string]string{"Attempt.Path": as[0].Path, "the log record": buf.String(), "Error.URL": re.URL} {
		if strings.Contains(s, cut) {
			i := strings.Index(s, cut)
			t.Errorf("%s holds %q, the first %d bytes of the key the caller sent, echoed by the redirect: …%s", what, cut, kept, s[max(i-16, 0):min(i+len(cut)+16, len(s))])
		}
	}
	if len(as[0].Path) > redact.MaxPath {
		t.Errorf("Attempt.Path has %d bytes, want at most %d", len(as[0].Path), redact.MaxPath)
	}
}

// TestErrorURLOpaqueRedactsCredentialEchoedByRedirect: a redirect to
// "https:api.example.com/v1/keys/<key>/usage" (its slashes missing, which
// url.Parse reads as an opaque URL, and http.Client follows as it is),
// built from the key the caller sent in the query, fails below the
// Transport: Error.URL shows the opaque URL with the key REDACTED, as it
// shows a path's.
func TestErrorURLOpaqueRedactsCredentialEchoedByRedirect(t *testing.T) {
	req := followedRequest(t, "https:api.example.com/v1/keys/"+echoSecret+"/usage")
	if req.URL.Opaque == "" {
		t.Fatalf("URL %#v, want an opaque one", req.URL)
	}
	tr := New(&rtScript{steps: []rtStep{{err: errors.New("http: no Host in request URL")}}}, WithMaxRetries(0))
	re := callError(t, tr, req)
	if strings.Contains(re.Error(), echoSecret) {
		t.Errorf("Error = %q: the key the caller sent, echoed by the redirect, not REDACTED", re.Error())
	}
}

// callError returns the *Error of tr's call of req, which must fail.
func callError(t *testing.T, tr *Transport, req *http.Request) *Error {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("the call got an answer, want the base's error")
	}
	var re *Error
	if !errors.As(err, &re) {
		t.Fatalf("error %v, want a *resilient.Error", err)
	}
	return re
}
