package resilient

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRedactionPathParameterSession: a Java servlet container that
// redirects a client without cookies (a plain http.Client has no Jar)
// writes the session id into the URL's path, /cart;jsessionid=…, and
// http.Client follows it: the session id, a credential, must not reach the
// Attempt, the log records or the *Error, as a query's token does not.
func TestRedactionPathParameterSession(t *testing.T) {
	const sess = "9F2C4A7E1B3D5C6A8E0F"
	const u = "https://shop.example.com/app/cart;jsessionid=" + sess + "/items"
	for _, tc := range []struct {
		name string
		step rtStep
	}{
		{"503", rtStep{status: 503}},
		{"url.Error", rtStep{err: &url.Error{Op: "Get", URL: u, Err: errors.New("connection reset")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			var atts []Attempt
			tr := New(&rtScript{steps: []rtStep{tc.step}}, WithMaxRetries(0),
				WithObserver(func(a Attempt) { atts = append(atts, a) }),
				WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			resp, err := tr.RoundTrip(newRequest(t, t.Context(), http.MethodGet, u, nil))
			if resp != nil {
				resp.Body.Close()
			}
			outputs := map[string]string{"log": logs.String()}
			for i, a := range atts {
				outputs[fmt.Sprintf("Attempt[%d]", i)] = fmt.Sprintf("%+v", a)
			}
			if err != nil {
				outputs["error"] = err.Error()
			}
			for where, out := range outputs {
				if strings.Contains(out, sess) {
					t.Errorf("%s holds the session id:\n%s", where, out)
				}
			}
			if len(atts) != 1 || atts[0].Path != "/app/cart;jsessionid=REDACTED/items" {
				t.Errorf("Attempt.Path = %q, want the parameter's name kept and its value REDACTED", atts[0].Path)
			}
		})
	}
}

// TestRedactionQueryWrittenIntoPath: a caller who writes the query into
// the URL's Path (url.URL{Path: "/v1/items?api_key=…"}, a common mistake,
// which net/http sends escaped, /v1/items%3Fapi_key=…, as a path) sends the
// key in the path: the server answers 404 or 401, and the key must not
// reach the Attempt, the log records or the *Error, as it does not when
// it is sent in the query. The parameter's name is kept, so that the
// reader sees the mistake: /v1/items?api_key=REDACTED.
func TestRedactionQueryWrittenIntoPath(t *testing.T) {
	const key = "sk_live_9F2C4A7E1B3D5C6A"
	u := &url.URL{Scheme: "https", Host: "api.example.com", Path: "/v1/items?page=2&api_key=" + key}
	for _, tc := range []struct {
		name string
		step rtStep
	}{
		{"404", rtStep{status: 404}},
		{"503", rtStep{status: 503}},
		{"url.Error", rtStep{err: &url.Error{Op: "Get", URL: u.String(), Err: errors.New("connection reset")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			var atts []Attempt
			tr := New(&rtScript{steps: []rtStep{tc.step}}, WithMaxRetries(0),
				WithObserver(func(a Attempt) { atts = append(atts, a) }),
				WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			req := newRequest(t, t.Context(), http.MethodGet, "https://api.example.com/", nil)
			req.URL = u
			resp, err := tr.RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			outputs := map[string]string{"log": logs.String()}
			for i, a := range atts {
				outputs[fmt.Sprintf("Attempt[%d]", i)] = fmt.Sprintf("%+v", a)
			}
			if err != nil {
				outputs["error"] = err.Error()
			}
			for where, out := range outputs {
				if strings.Contains(out, key) {
					t.Errorf("%s holds the key:\n%s", where, out)
				}
			}
			if len(atts) != 1 || atts[0].Path != "/v1/items?page=2&api_key=REDACTED" {
				t.Errorf("Attempt.Path = %q, want the parameter's name kept and its value REDACTED", atts[0].Path)
			}
		})
	}
}
