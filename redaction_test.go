package resilient

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode"
)

// TestRedactionEveryOutput sends requests that carry secrets, as a careless
// caller writes them, to servers that echo them back, as a chatty or hostile
// one does, and looks for each secret in every output the Transport gives:
// the Attempt of an observer (%v, %+v, %#v), slog records (text and JSON),
// the *Error (its message, %+v, %#v) and the *APIError of ParseError (its
// message, %+v, %#v). Records must not hold control characters either.
func TestRedactionEveryOutput(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2VjcmV0LXNpZ25hdHVyZQ"
	urlErr := func(u string) error { return &url.Error{Op: "Get", URL: u, Err: errors.New("connection reset")} }
	envelope := func(status int, body string, h ...string) rtStep {
		st := rtStep{status: status, body: body, header: http.Header{}}
		for i := 0; i+1 < len(h); i += 2 {
			st.header.Set(h[i], h[i+1])
		}
		return st
	}
	tests := []struct {
		name    string
		url     string
		header  http.Header
		step    rtStep
		secrets []string
	}{
		// Caller side: what the URL and headers carry.
		{"userinfo in url.Error", "https://alice:pw-SECRET-1@api.example.com/v1",
			nil, rtStep{err: urlErr("https://alice:pw-SECRET-1@api.example.com/v1")}, []string{"pw-SECRET-1"}},
		{"api_key in query", "https://api.example.com/v1?api_key=SECRET-api-key",
			nil, rtStep{err: urlErr("https://api.example.com/v1?api_key=SECRET-api-key")}, []string{"SECRET-api-key"}},
		{"access_token in query", "https://graph.example.com/me?access_token=SECRET-tok",
			nil, rtStep{err: urlErr("https://graph.example.com/me?access_token=SECRET-tok")}, []string{"SECRET-tok"}},
		{"presigned S3 URL", "https://b.s3.amazonaws.com/o?X-Amz-Signature=SECRETsig&X-Amz-Credential=AKIASECRET",
			nil, rtStep{status: 503}, []string{"SECRETsig", "AKIASECRET"}},
		{"Google key in query", "https://maps.example.com/api?key=AIzaSECRET",
			nil, rtStep{err: urlErr("https://maps.example.com/api?key=AIzaSECRET")}, []string{"AIzaSECRET"}},
		{"Telegram bot token in path", "https://api.telegram.org/bot123456:AAH-SECRET/sendMessage",
			nil, rtStep{err: urlErr("https://api.telegram.org/bot123456:AAH-SECRET/sendMessage")}, []string{"AAH-SECRET"}},
		{"Telegram bot token, its colon escaped", "https://api.telegram.org/bot123456%3AAAH-SECRET/sendMessage",
			nil, rtStep{err: urlErr("https://api.telegram.org/bot123456%3AAAH-SECRET/sendMessage")}, []string{"AAH-SECRET"}},
		{"query past a parenthesis, in a base's own words", "https://www.googleapis.com/youtube/v3/search?fields=items(id)&key=AIzaSECRET-2",
			nil, rtStep{err: fmt.Errorf("GET https://www.googleapis.com/youtube/v3/search?fields=items(id)&key=AIzaSECRET-2 giving up after 1 attempt(s): %w", urlErr("https://www.googleapis.com/youtube/v3/search?fields=items(id)&key=AIzaSECRET-2"))},
			[]string{"AIzaSECRET-2"}},
		{"query past a parenthesis, url.Error wrapped with %v", "https://acct.table.core.windows.net/Customers()?sv=1&sig=SECRET-sas",
			nil, rtStep{err: fmt.Errorf("sdk: %v", urlErr("https://acct.table.core.windows.net/Customers()?sv=1&sig=SECRET-sas"))}, []string{"SECRET-sas"}},
		// A query that holds a space (OAuth's "scope=read write", a
		// search's "q=New York" a caller did not escape, which url.Parse
		// and net/http take as they are): the URL runs on past it.
		{"query with a space, in a base's own words", "https://api.openweathermap.org/data/2.5/weather?q=New York&appid=SECRET-appid",
			nil, rtStep{err: fmt.Errorf("GET https://api.openweathermap.org/data/2.5/weather?q=New York&appid=SECRET-appid giving up after 1 attempt(s): %w", urlErr("https://api.openweathermap.org/data/2.5/weather?q=New York&appid=SECRET-appid"))},
			[]string{"SECRET-appid"}},
		{"query with a space, url.Error wrapped with %v", "https://api.example.com/v1",
			nil, rtStep{err: fmt.Errorf("sdk: refreshing its token: %v", urlErr("https://auth.example.com/token?scope=read write&client_secret=SECRET-client"))},
			[]string{"SECRET-client"}},
		{"Slack webhook secret in path", "https://hooks.slack.com/services/T000/B000/XXSECRETXX",
			nil, rtStep{status: 500}, []string{"XXSECRETXX"}},
		{"Discord webhook token in path", "https://discord.com/api/webhooks/123/tokSECRET",
			nil, rtStep{status: 429}, []string{"tokSECRET"}},
		{"relative URL with a token in a base's error", "https://api.example.com/v1",
			nil, rtStep{err: fmt.Errorf("sdk: %v", urlErr("/v1/me?access_token=SECRET-rel"))}, []string{"SECRET-rel"}},
		{"proxy address without its scheme", "https://api.example.com/v1",
			nil, rtStep{err: fmt.Errorf("invalid proxy address %q: %v", "proxyuser:SECRET-proxy@proxy:80a", errors.New("invalid port"))},
			[]string{"SECRET-proxy"}},
		// Server side: an answer that echoes the caller's credentials or
		// carries tokens.
		{"message echoes the Authorization token", "https://api.example.com/v1",
			http.Header{"Authorization": {"Bearer sk_live_SECRET123"}},
			envelope(401, `{"error":{"code":"invalid_api_key","message":"Invalid API Key provided: sk_live_SECRET123"}}`),
			[]string{"sk_live_SECRET123"}},
		{"message echoes X-Api-Key", "https://api.example.com/v1",
			http.Header{"X-Api-Key": {"SECRET-x-api-key"}},
			envelope(403, `{"code":"forbidden","message":"key SECRET-x-api-key is revoked"}`),
			[]string{"SECRET-x-api-key"}},
		{"message echoes a Cookie", "https://api.example.com/v1",
			http.Header{"Cookie": {"theme=dark; session=SECRET-session"}},
			envelope(401, `{"error":"unauthorized","message":"session SECRET-session expired"}`),
			[]string{"SECRET-session"}},
		{"message echoes a custom token header", "https://api.example.com/v1",
			http.Header{"X-Auth-Token": {"ghp_SECRETtoken"}},
			envelope(401, `{"message":"token ghp_SECRETtoken expired"}`),
			[]string{"ghp_SECRETtoken"}},
		{"message echoes the query's key", "https://api.example.com/v1?api_key=SECRET-q-key",
			nil, envelope(401, `{"error":{"code":"bad_key","message":"unknown key SECRET-q-key"}}`),
			[]string{"SECRET-q-key"}},
		{"code echoes the password", "https://bob:SECRET-pass@api.example.com/v1",
			nil, envelope(401, `{"error":"SECRET-pass","message":"bad credentials"}`),
			[]string{"SECRET-pass"}},
		{"message echoes the password of a Basic header", "https://api.example.com/v1",
			http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("sk_live_SECRETuser:SECRET-basic-pw"))}},
			envelope(401, `{"error":{"code":"unauthorized","message":"user sk_live_SECRETuser: password SECRET-basic-pw is wrong"}}`),
			[]string{"sk_live_SECRETuser", "SECRET-basic-pw"}},
		{"message echoes the password of an unpadded Basic header", "https://api.example.com/v1",
			http.Header{"Authorization": {"Basic " + base64.RawStdEncoding.EncodeToString([]byte("sk_live_u~~~:SECRET-basic-raw~~"))}},
			envelope(401, `{"error":{"code":"unauthorized","message":"user sk_live_u~~~: password SECRET-basic-raw~~ is wrong"}}`),
			[]string{"sk_live_u~~~", "SECRET-basic-raw~~"}},
		{"message echoes a pwd", "https://api.zoom.test/v2/meetings/123/join?pwd=SECRET-pwd-123",
			nil, envelope(401, `{"error":{"code":"bad_passcode","message":"passcode SECRET-pwd-123 is wrong"}}`),
			[]string{"SECRET-pwd-123"}},
		{"message echoes an X-JWT-Assertion", "https://api.example.com/v1",
			http.Header{"X-Jwt-Assertion": {jwt}},
			envelope(401, `{"message":"rejected assertion jwt=`+jwt+`"}`),
			[]string{jwt}},
		{"message echoes an OAuth authorization code", "https://auth.example.com/oauth/token?grant_type=authorization_code&code=SECRET-oauth-code&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb",
			nil, envelope(400, `{"error":"invalid_grant","error_description":"Invalid authorization code: SECRET-oauth-code"}`),
			[]string{"SECRET-oauth-code"}},
		{"code echoes X-Api-Key upper-cased", "https://api.example.com/v1",
			http.Header{"X-Api-Key": {"sk_test_SecretCase1"}},
			envelope(401, `{"error":{"code":"INVALID_KEY_SK_TEST_SECRETCASE1","message":"key sk_test_secretcase1 unknown"}}`),
			[]string{"SK_TEST_SECRETCASE1", "sk_test_secretcase1"}},
		{"message quotes a bearer token", "https://api.example.com/v1",
			nil, envelope(401, `{"message":"expected Bearer SECRET-other-tok"}`),
			[]string{"SECRET-other-tok"}},
		{"request id is a JWT, on an error", "https://api.example.com/v1",
			nil, envelope(500, `{}`, "X-Request-Id", jwt), []string{jwt}},
		{"request id is a JWT, on a success", "https://api.example.com/v1",
			nil, envelope(200, `{}`, "X-Request-Id", jwt), []string{jwt}},
		{"message holds a JWT", "https://api.example.com/v1",
			nil, envelope(401, `{"message":"token `+jwt+` expired"}`), []string{jwt}},
		// A server that echoes the path, whose credential Attempt.Path
		// has REDACTED: in its envelope, or in a malformed answer that
		// net/http quotes (a server that echoes the request line).
		{"message echoes a bot token of the path", "https://api.telegram.org/bot123456:AAH-SECRET-echo/sendMessage",
			nil, envelope(404, `{"error":{"code":"not_found","message":"No route found for \"POST /bot123456:AAH-SECRET-echo/sendMessage\""}}`,
				"X-Request-Id", "/bot123456:AAH-SECRET-echo/sendMessage"),
			[]string{"AAH-SECRET-echo"}},
		{"problem detail echoes a Slack webhook secret", "https://hooks.slack.com/services/T000/B000/XXSECRETechoXX",
			nil, envelope(404, `{"type":"about:blank","title":"Not Found","status":404,"detail":"no hook at /services/T000/B000/XXSECRETechoXX"}`,
				"Content-Type", "application/problem+json"),
			[]string{"XXSECRETechoXX"}},
		{"net/http quotes an echoed request line", "https://api.telegram.org/bot123456:AAH-SECRET-line/getMe",
			nil, rtStep{err: errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP status code "/bot123456:AAH-SECRET-line/getMe"`)},
			[]string{"AAH-SECRET-line"}},
		{"net/http quotes an echoed X-Api-Key", "https://api.example.com/v1",
			http.Header{"X-Api-Key": {"SECRET-x-api-key-echo"}},
			rtStep{err: errors.New(`net/http: HTTP/1.x transport connection broken: malformed MIME header: missing colon: "X-Api-Key SECRET-x-api-key-echo"`)},
			[]string{"SECRET-x-api-key-echo"}},
		// Log injection: a URL that a redirect names may hold any character.
		{"control characters in the path", "https://api.example.com/a%0Aforged%1B[31m%E2%80%AEx",
			nil, rtStep{status: 503}, nil},
		{"bidi override in the host", "https://a\u202eb.example.com/x",
			nil, rtStep{status: 503}, nil},
	}
	handlers := map[string]func(io.Writer) slog.Handler{
		"text": func(w io.Writer) slog.Handler {
			return slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
		},
		"json": func(w io.Writer) slog.Handler {
			return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
		},
	}
	for _, tt := range tests {
		for hname, h := range handlers {
			t.Run(tt.name+"/"+hname, func(t *testing.T) {
				var logs bytes.Buffer
				var atts []Attempt
				tr := New(&rtScript{steps: []rtStep{tt.step}}, WithMaxRetries(0),
					WithObserver(func(a Attempt) { atts = append(atts, a) }),
					WithLogger(slog.New(h(&logs))))
				req := newRequest(t, t.Context(), http.MethodGet, tt.url, nil)
				for k, v := range tt.header {
					req.Header[k] = v
				}
				resp, err := tr.RoundTrip(req)
				outputs := map[string]string{"log": logs.String()}
				if len(atts) == 0 {
					t.Fatal("no Attempt observed")
				}
				for i, a := range atts {
					outputs[fmt.Sprintf("Attempt[%d]", i)] = fmt.Sprintf("%v\n%+v\n%#v", a, a, a)
					if a.Err != nil {
						outputs[fmt.Sprintf("Attempt[%d].Err", i)] = a.Err.Error()
					}
					for field, v := range map[string]string{"Method": a.Method, "Host": a.Host, "Path": a.Path, "Code": a.Code, "RequestID": a.RequestID} {
						if i := strings.IndexFunc(v, isUnsafeRune); i >= 0 {
							t.Errorf("Attempt.%s = %q: control character %q", field, v, v[i:])
						}
					}
				}
				if err != nil {
					outputs["error"] = fmt.Sprintf("%v\n%+v\n%#v", err, err, err)
					var e *Error
					if errors.As(err, &e) {
						outputs["Error"] = fmt.Sprintf("%+v\n%#v\n%v", *e, *e, e.Err)
					}
				}
				if resp != nil {
					if apiErr := ParseError(resp); apiErr != nil {
						outputs["APIError"] = fmt.Sprintf("%v\n%+v\n%#v\n%s", apiErr, *apiErr, *apiErr, apiErr.Error())
					}
					resp.Body.Close()
				}
				for where, out := range outputs {
					for _, s := range tt.secrets {
						if strings.Contains(out, s) {
							t.Errorf("%s holds %q:\n%s", where, s, out)
						}
					}
				}
			})
		}
	}
}

// isUnsafeRune reports whether r is a character that a record must not
// hold: a control character, a line separator or a bidirectional control.
func isUnsafeRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || isBidiControl(r)
}

// TestRedactionKeepsWhatIsNoSecret: a query parameter whose name only
// contains a word that speaks of a credential (author, keyword, assignee)
// carries none: a server's message that repeats its value keeps it, as
// ParseError reads it, while an api_key's is redacted.
func TestRedactionKeepsWhatIsNoSecret(t *testing.T) {
	for _, tc := range []struct {
		query, want string
	}{
		{"author=linustorvalds", "no author named linustorvalds"},
		{"keyword=elephants", "no keyword named elephants"},
		{"assignee=octocat42", "no assignee named octocat42"},
		{"api_key=sk-live-12345", "no api_key named REDACTED"},
	} {
		name, value, _ := strings.Cut(tc.query, "=")
		s := &rtScript{steps: []rtStep{{status: 404, body: fmt.Sprintf(`{"error":{"code":"not_found","message":"no %s named %s"}}`, name, value)}}}
		resp, err := roundTrip(t, New(s), newRequest(t, t.Context(), "GET", "https://api.example.com/v1/books?"+tc.query, nil))
		if err != nil {
			t.Fatal(err)
		}
		got := ParseError(resp).Message
		resp.Body.Close()
		if got != tc.want {
			t.Errorf("?%s: APIError.Message = %q, want %q", tc.query, got, tc.want)
		}
	}
}

// TestRedactionRequestQueryInCauses: the causes of a call's end that the
// Transport did not get from the base (a GetBody that failed, the cause of
// a context canceled during a wait) may quote the request's URL as it is;
// a query that holds a space ("q=New York", which url.Parse and net/http
// take as it is) must lose the whole of it, in the *Error as in the
// records, not only up to the space.
func TestRedactionRequestQueryInCauses(t *testing.T) {
	const u = "https://api.openweathermap.org/data/2.5/weather?q=New York&appid=SECRET-appid"
	check := func(t *testing.T, what, s string) {
		t.Helper()
		if strings.Contains(s, "SECRET-appid") {
			t.Errorf("%s holds the appid: %s", what, s)
		}
	}
	t.Run("GetBody", func(t *testing.T) {
		var logs bytes.Buffer
		var atts []Attempt
		tr := New(&rtScript{steps: []rtStep{{err: errReset}}}, fastRetries, WithMaxRetries(1),
			WithObserver(func(a Attempt) { atts = append(atts, a) }),
			WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		req := newRequest(t, t.Context(), http.MethodPut, u, strings.NewReader("x"))
		req.Body = streamBody("x") // not in memory: the retry's body is GetBody's
		req.GetBody = func() (io.ReadCloser, error) {
			return nil, fmt.Errorf("reopening the upload of GET %s: %w", u, io.ErrUnexpectedEOF)
		}
		_, err := tr.RoundTrip(req)
		if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v, want the GetBody's error in its chain", err)
		}
		check(t, "the error", err.Error())
		check(t, "its cause", errors.Unwrap(err).Error())
		check(t, "the log", logs.String())
		for i, a := range atts {
			if a.Err != nil {
				check(t, fmt.Sprintf("Attempt[%d].Err", i), a.Err.Error())
			}
		}
	})
	t.Run("context cause during a wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var logs bytes.Buffer
			tr := New(&rtScript{steps: []rtStep{{status: 503}}}, WithBackoff(time.Second, time.Second),
				WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(500*time.Millisecond, func() { cancel(fmt.Errorf("shutting down: abandoned GET %s", u)) })
			_, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, u, nil))
			if err == nil {
				t.Fatal("want the cancel's error")
			}
			check(t, "the error", err.Error())
			check(t, "its cause", errors.Unwrap(err).Error())
			check(t, "the log", logs.String())
		})
	})
}
