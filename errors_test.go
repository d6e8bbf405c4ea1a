package resilient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// TestErrorsRedactURLs: when a lower layer reports an error quoting the
// URL (a *url.Error of a base built on http.Client), neither the error
// RoundTrip returns, nor its cause, nor Attempt.Err, nor the log record
// holds the query, the fragment or the user info; errors.Is and errors.As
// still reach the causes.
func TestErrorsRedactURLs(t *testing.T) {
	const secretURL = "https://alice:s3cr3t-pass@api.test:8443/v1/posts?api_key=topsecret&x=1#frag-secret"
	secrets := []string{"s3cr3t-pass", "alice", "topsecret", "frag-secret"}
	check := func(t *testing.T, what, s string) {
		t.Helper()
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("%s leaks %q: %s", what, sec, s)
			}
		}
	}
	t.Run("scripted url.Error", func(t *testing.T) {
		var buf bytes.Buffer
		var obs observed
		base := &rtScript{steps: []rtStep{{err: &url.Error{Op: "Get", URL: secretURL, Err: errReset}}}}
		tr := New(base, fastRetries, WithMaxRetries(1), WithObserver(obs.add),
			WithLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		req, _ := http.NewRequest(http.MethodGet, secretURL, nil)
		_, err := tr.RoundTrip(req)
		if err == nil {
			t.Fatal("want an error")
		}
		check(t, "the error", err.Error())
		check(t, "its cause", errors.Unwrap(err).Error())
		check(t, "the log", buf.String())
		for i, a := range obs.all() {
			check(t, "Attempt.Err", a.Err.Error())
			if !errors.Is(a.Err, syscall.ECONNRESET) {
				t.Errorf("attempt %d: Err %v does not unwrap to the reset", i, a.Err)
			}
		}
		var ue *url.Error
		if !errors.As(err, &ue) || !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("error %v lost its chain", err)
		}
		if !strings.Contains(err.Error(), "https://api.test:8443/v1/posts") {
			t.Errorf("error %q lost the redacted URL", err)
		}
	})
	t.Run("base built on http.Client", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Drop the connection without an answer.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		defer srv.Close()
		inner := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		defer inner.CloseIdleConnections()
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) { return inner.Do(req) })
		var obs observed
		tr := New(base, fastRetries, WithMaxRetries(1), WithObserver(obs.add))
		u := strings.Replace(srv.URL, "http://", "http://alice:s3cr3t-pass@", 1) + "/v1?api_key=topsecret"
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		_, err := tr.RoundTrip(req)
		if err == nil {
			t.Fatal("want an error")
		}
		check(t, "the error", err.Error())
		check(t, "its cause", errors.Unwrap(err).Error())
		for _, a := range obs.all() {
			check(t, "Attempt.Err", a.Err.Error())
		}
		var ue *url.Error
		if !errors.As(err, &ue) {
			t.Errorf("error %v does not unwrap to the base's *url.Error", err)
		}
	})
	t.Run("query in an opaque URL", func(t *testing.T) {
		// net/http sends an Opaque as it is, its '?' and what follows
		// included: the server reads them as the query.
		var buf bytes.Buffer
		base := &rtScript{steps: []rtStep{{err: errReset}}}
		tr := New(base, WithMaxRetries(0), WithLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		req, _ := http.NewRequest(http.MethodGet, "https://api.test:8443/", nil)
		req.URL = &url.URL{Scheme: "https", Host: "api.test:8443", Opaque: "//alice:s3cr3t-pass@api.test:8443/v1/posts?api_key=topsecret#frag-secret"}
		_, err := tr.RoundTrip(req)
		if err == nil {
			t.Fatal("want an error")
		}
		check(t, "the error", err.Error())
		check(t, "the log", buf.String())
		if !strings.Contains(err.Error(), "https://api.test:8443/v1/posts") {
			t.Errorf("error %q lost the redacted URL", err)
		}
		if _, err := tr.HostState(req); err != nil {
			check(t, "HostState's error", err.Error())
		}
	})
	t.Run("causes the Transport did not get from the base", func(t *testing.T) {
		// The error of a GetBody that ended the retries, and the cause
		// of a context canceled during a wait, are the *Error's cause
		// too: Err is redacted as the message is.
		secretErr := fmt.Errorf("fetching %s: %w", secretURL, io.ErrUnexpectedEOF)
		base := &rtScript{steps: []rtStep{{err: errReset}}}
		tr := New(base, fastRetries, WithMaxRetries(1))
		req, _ := http.NewRequest(http.MethodPut, "https://api.test/v1/posts", strings.NewReader("x"))
		req.Body = streamBody("x") // not in memory: the retry's body is GetBody's
		req.GetBody = func() (io.ReadCloser, error) { return nil, secretErr }
		_, err := tr.RoundTrip(req)
		if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v, want the GetBody's error in its chain", err)
		}
		check(t, "the error", err.Error())
		check(t, "its cause", errors.Unwrap(err).Error())

		synctest.Test(t, func(t *testing.T) {
			base := &rtScript{steps: []rtStep{{status: 503}}}
			tr := New(base, WithBackoff(time.Second, time.Second))
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(500*time.Millisecond, func() { cancel(secretErr) })
			_, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, "https://api.test/v1/posts", nil))
			if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("err = %v, want the context's cause in its chain", err)
			}
			check(t, "the error", err.Error())
			check(t, "its cause", errors.Unwrap(err).Error())
		})
	})
	t.Run("control characters", func(t *testing.T) {
		var obs observed
		base := &rtScript{steps: []rtStep{{err: errors.New("bad\nlevel=ERROR msg=forged\r\x1b[31m")}}}
		tr := New(base, WithMaxRetries(0), WithObserver(obs.add))
		req, _ := http.NewRequest(http.MethodGet, "https://api.test/", nil)
		_, err := tr.RoundTrip(req)
		for _, s := range []string{err.Error(), obs.all()[0].Err.Error()} {
			if strings.ContainsAny(s, "\n\r\x1b") {
				t.Errorf("message keeps control characters: %q", s)
			}
		}
	})
}

// TestAPIErrorSafe: APIError.Error cuts the server's text to a bound and
// turns its control characters into spaces, so that a hostile server can
// neither forge log lines nor flood them; the fields keep the server's
// values.
func TestAPIErrorSafe(t *testing.T) {
	msg := "line one\nlevel=ERROR msg=\"forged\"\r\u2028" + strings.Repeat("x", 10000)
	e := &APIError{StatusCode: 400, Code: "BAD\x00CODE" + strings.Repeat("C", 500), Message: msg, RequestID: "r1\n" + strings.Repeat("9", 500)}
	got := e.Error()
	if strings.ContainsAny(got, "\n\r\x00\u2028") {
		t.Errorf("Error() keeps control characters: %q", got)
	}
	if len(got) > 600 {
		t.Errorf("Error() is %d bytes long, want at most 600", len(got))
	}
	if !strings.HasPrefix(got, "400 BAD CODE") || !strings.Contains(got, ": line one level=ERROR") || !strings.Contains(got, "… (request_id r1 999") {
		t.Errorf("Error() = %q", got)
	}
	if e.Message != msg {
		t.Error("Error() modified Message")
	}
	// Plain text is kept as is, and not copied.
	e = &APIError{StatusCode: 409, Code: "CONFLICT", Message: "Reused key", RequestID: "7f3"}
	if got, want := e.Error(), "409 CONFLICT: Reused key (request_id 7f3)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	// Through the Transport: the observer's code and request id are made
	// safe too.
	body := `{"error":{"code":"X\nY","message":"m"},"request_id":"` + strings.Repeat("r", 1000) + `"}`
	var obs observed
	base := &rtScript{steps: []rtStep{{status: 400, body: body}}}
	resp, err := New(base, WithObserver(obs.add)).RoundTrip(httptest.NewRequest("GET", "https://api.test/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if a := obs.all()[0]; a.Code != "X Y" || len(a.RequestID) > maxErrorToken+len("…") {
		t.Errorf("Attempt code %q, request id of %d bytes", a.Code, len(a.RequestID))
	}
}

// TestErrorTextIsBounded: a server's answer that net/http quotes in its
// error (a malformed status line of a megabyte) does not flood the log
// records, Attempt.Err or the error RoundTrip returns: their text is cut
// to maxErrorText, and the cause is still reachable.
func TestErrorTextIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := rawAnswerTransport("HTTP/1.1" + strings.Repeat("x", 1<<20) + "\r\n\r\n")
		defer base.CloseIdleConnections()
		var buf bytes.Buffer
		var obs observed
		tr := New(base, WithBackoff(0, 0), WithMaxRetries(1), WithObserver(obs.add), WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
		_, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/v1/posts", nil))
		const bound = maxErrorText + len("…")
		if n := len(err.Error()); n > bound+len("resilient: GET http://api.test/v1/posts: 2 attempts: ") {
			t.Errorf("RoundTrip's error is %d bytes long", n)
		}
		if !strings.Contains(err.Error(), "malformed HTTP response") {
			t.Errorf("error %.200q does not say what happened", err)
		}
		for _, a := range obs.all() {
			if n := len(a.Err.Error()); n > bound {
				t.Errorf("attempt %d: Attempt.Err is %d bytes long, want at most %d", a.Number, n, bound)
			}
		}
		for _, rec := range logRecords(t, &buf) {
			if n := len(rec["error"].(string)); n > bound {
				t.Errorf("attempt %v: the log record's error is %d bytes long, want at most %d", rec["attempt"], n, bound)
			}
		}
	})
}

func TestSafeText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 10, "plain"},
		{"a\tb\nc\x7fd", 10, "a b c d"},
		{"héllo", 10, "héllo"},
		{"\xff", 10, "\ufffd"},
		{"abcdef", 3, "abc…"},
		{"ééé", 4, "éé…"},
		{"\u0085x", 5, " x"},
		// Bidirectional controls would show a log line's text in
		// another order than it holds (Trojan Source): "code=\u202eEDOC".
		{"a\u202eb\u2066c\u2069d\u200fe\u061cf", 40, "a b c d e f"},
	} {
		if got := safeText(tc.in, tc.max); got != tc.want {
			t.Errorf("safeText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { safeText("PUBLIC_API_RATE_LIMITED", 128) }); n != 0 {
		t.Errorf("safeText of plain text allocates %v times", n)
	}
}

// TestErrorTimeout: an *Error whose last attempt timed out is a timeout for
// os.IsTimeout and url.Error.Timeout, through an http.Client, as an error
// of http.Transport is; other errors are not.
func TestErrorTimeout(t *testing.T) {
	t.Run("ResponseHeaderTimeout of the base", func(t *testing.T) {
		stop := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(stop)
		base := &http.Transport{ResponseHeaderTimeout: 20 * time.Millisecond}
		defer base.CloseIdleConnections()
		_, plainErr := (&http.Client{Transport: base}).Get(srv.URL)
		if !os.IsTimeout(plainErr) {
			t.Fatalf("plain transport: os.IsTimeout(%v) = false", plainErr)
		}
		_, err := (&http.Client{Transport: New(base, WithMaxRetries(0))}).Get(srv.URL)
		var ue *url.Error
		if !os.IsTimeout(err) || !errors.As(err, &ue) || !ue.Timeout() {
			t.Errorf("through resilient: os.IsTimeout(%v) = false, want true as on the plain transport", err)
		}
		var e *Error
		if !errors.As(err, &e) || !e.Timeout() {
			t.Errorf("*Error.Timeout() = false for %v", err)
		}
	})
	t.Run("attempt timeout and deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &rtScript{steps: []rtStep{{hang: true}}}
			_, err := (&http.Client{Transport: New(base, WithMaxRetries(0), WithAttemptTimeout(time.Second))}).Get("http://api.test/")
			if !errors.Is(err, ErrAttemptTimeout) || !os.IsTimeout(err) {
				t.Errorf("attempt timeout: os.IsTimeout(%v) = false", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.test/", nil)
			_, err = (&http.Client{Transport: New(base, WithMaxRetries(0))}).Do(req)
			if !os.IsTimeout(err) {
				t.Errorf("deadline: os.IsTimeout(%v) = false", err)
			}
		})
	})
	t.Run("not timeouts", func(t *testing.T) {
		for _, cause := range []error{
			errRefused, errReset, io.ErrUnexpectedEOF, context.Canceled,
			ErrCircuitOpen, ErrRateLimited, &net.DNSError{Err: "no such host", Name: "x"},
		} {
			if e := (&Error{Err: cause}); e.Timeout() {
				t.Errorf("(&Error{Err: %v}).Timeout() = true", cause)
			}
		}
		for _, cause := range []error{
			context.DeadlineExceeded, ErrAttemptTimeout, &net.DNSError{IsTimeout: true},
			&url.Error{Op: "Get", URL: "u", Err: context.DeadlineExceeded},
			errors.Join(io.EOF, context.DeadlineExceeded),
			redactRequestError(&url.Error{Op: "Get", URL: "https://h/?k=v", Err: ErrAttemptTimeout}, nil),
		} {
			if e := (&Error{Err: cause}); !e.Timeout() || !isTimeout(redactRequestError(cause, nil)) {
				t.Errorf("(&Error{Err: %v}).Timeout() = false", cause)
			}
		}
	})
}

// TestErrorMethodIsSafe: a method with control characters, which net/http
// refuses to send, cannot forge a line in a log of the error RoundTrip
// returns: Error's message replaces them with spaces, as it does in the
// cause's, while Method keeps the caller's value.
func TestErrorMethodIsSafe(t *testing.T) {
	const method = "GET\nlevel=ERROR msg=forged"
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("net/http: invalid method %q", r.Method)
	})
	req, _ := http.NewRequest(http.MethodGet, "https://api.test/v1/posts", nil)
	req.Method = method
	_, err := New(base).RoundTrip(req)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want an *Error", err)
	}
	if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
		t.Errorf("Error() = %q, holds a line break of the method", msg)
	}
	if e.Method != method {
		t.Errorf("Method = %q, want the caller's %q", e.Method, method)
	}
}

// TestErrorEmptyMethod: a request whose Method is empty, which net/http
// sends as a GET, fails with an error that names GET, as its Attempt does
// and as http.Client's error does ("Get …"), not with an empty method.
func TestErrorEmptyMethod(t *testing.T) {
	var atts []Attempt
	tr := New(&rtScript{steps: []rtStep{{err: errRefused}}}, WithMaxRetries(0), WithObserver(func(a Attempt) { atts = append(atts, a) }))
	req := newRequest(t, context.Background(), http.MethodGet, "https://api.test/v1/posts", nil)
	req.Method = ""
	_, err := tr.RoundTrip(req)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want an *Error", err)
	}
	if e.Method != http.MethodGet {
		t.Errorf("Error.Method = %q, want %q", e.Method, http.MethodGet)
	}
	if len(atts) != 1 || atts[0].Method != http.MethodGet {
		t.Errorf("Attempts = %+v, want one, its Method %q", atts, http.MethodGet)
	}
	if want := "resilient: GET https://api.test/v1/posts: 1 attempt: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Error() = %q, want it to start with %q", err.Error(), want)
	}
}

// TestPathCredentialsRedacted: a credential that an API carries in the
// path (a Discord webhook's token, a Telegram bot's, a Slack incoming
// webhook's secret) reaches no error, log record, Attempt or partition
// name. It did: a failed webhook call printed its token in Error.URL, the
// error's message, the log's path and Attempt.Path; a rate-limited one in
// the partition's name.
func TestPathCredentialsRedacted(t *testing.T) {
	const token = "Zm9vYmFyLXNlY3JldC10b2tlbi1vZi10aGUtd2ViaG9vaw"
	for _, u := range []string{
		"https://discord.com/api/v10/webhooks/1234567890/" + token,
		"https://api.telegram.org/bot123456789:" + token + "/sendMessage",
		"https://hooks.slack.com/services/T00000000/B00000000/" + token,
	} {
		var buf bytes.Buffer
		var obs observed
		base := &rtScript{steps: []rtStep{{err: &url.Error{Op: "Post", URL: u, Err: errReset}}}}
		tr := New(base, fastRetries, WithObserver(obs.add),
			WithLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(`{"content":"hi"}`))
		_, err := tr.RoundTrip(req)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: error %v, want an *Error", u, err)
		}
		for what, s := range map[string]string{"Error.URL": e.URL, "the error": err.Error(), "the log": buf.String()} {
			if strings.Contains(s, token) {
				t.Errorf("%s leaks the token: %s", what, s)
			}
			if !strings.Contains(s, "REDACTED") {
				t.Errorf("%s does not show where the token was: %s", what, s)
			}
		}
		for _, a := range obs.all() {
			if strings.Contains(a.Path, token) {
				t.Errorf("Attempt.Path leaks the token: %s", a.Path)
			}
		}
	}
	if r := routeTemplate("/api/v10/webhooks/1234567890/" + token); strings.Contains(r, token) {
		t.Errorf("a partition's route leaks the token: %s", r)
	}
}
