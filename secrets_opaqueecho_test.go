package resilient

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// opaqueBotURL is the URL of a Telegram bot's request whose path is set
// through Opaque, as net/http's documentation says to send a path
// verbatim: the request line is "GET /bot123456:…/getMe HTTP/1.1".
func opaqueBotURL(token string) *url.URL {
	return &url.URL{Scheme: "https", Host: "api.telegram.test", Opaque: "/bot123456:" + token + "/getMe"}
}

// TestEchoOfOpaquePathCredentialRedacted: a credential an API carries in
// the path (a bot's token, a webhook's) is REDACTED where a server's text
// echoes it (an error envelope's message, net/http's error quoting a
// malformed answer that repeats the request line), as redact.Echoes has
// it, also when the request's path is set through its URL's Opaque,
// which net/http sends on the request line as it is. The records had the
// path REDACTED (Attempt.Path, Error.URL, see redact.Opaque), but Echoes
// looked for the path's credentials in URL.Path and URL.RawPath alone,
// empty for such a URL: the token stayed in APIError.Message and in the
// error of the call.
func TestEchoOfOpaquePathCredentialRedacted(t *testing.T) {
	const token = "AAH-opaque-SECRET-tok"
	t.Run("server's message", func(t *testing.T) {
		e := echoedAPIError(t, opaqueBotURL(token), http.StatusNotFound, func(req *http.Request) string {
			return `{"ok":false,"error_code":404,"message":"No route for GET ` + req.URL.RequestURI() + `"}`
		})
		if strings.Contains(e.Message, token) || strings.Contains(e.Error(), token) {
			t.Errorf("APIError.Message = %q; want the bot's token REDACTED", e.Message)
		}
	})
	t.Run("net/http's error", func(t *testing.T) {
		// A server that answers with the request line it read (a
		// broken proxy): net/http quotes it in its error.
		base := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
			client, server := net.Pipe()
			go func() {
				defer server.Close()
				line, err := bufio.NewReader(server).ReadString('\n')
				if err != nil {
					return
				}
				server.Write([]byte(line + "\r\n"))
			}()
			return client, nil
		}}
		defer base.CloseIdleConnections()
		u := opaqueBotURL(token)
		u.Scheme = "http"
		var attempts []Attempt
		tr := New(base, WithMaxRetries(0), WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
		req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}}
		_, err := tr.RoundTrip(req.WithContext(context.Background()))
		var rerr *Error
		if !errors.As(err, &rerr) {
			t.Fatalf("RoundTrip = %v, want an *Error", err)
		}
		if !strings.Contains(err.Error(), "malformed") {
			t.Fatalf("RoundTrip = %v, want net/http's error quoting the malformed answer", err)
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("the call's error holds the bot's token: %v", err)
		}
		if len(attempts) != 1 || attempts[0].Err == nil || strings.Contains(attempts[0].Err.Error(), token) {
			t.Errorf("the attempt's record = %+v; want its error without the bot's token", attempts)
		}
	})
}

// echoedAPIError sends a GET of u through a Transport over a base that
// answers status with the JSON envelope body makes of the request, and
// returns the APIError its Classifier got.
func echoedAPIError(t *testing.T, u *url.URL, status int, body func(*http.Request) string) *APIError {
	t.Helper()
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: status, Request: req,
			Header: http.Header{"Content-Type": {"application/json"}},
			Body:   io.NopCloser(strings.NewReader(body(req)))}, nil
	})
	var got []*APIError
	tr := New(base, WithMaxRetries(0), WithClassifier(func(_ *http.Response, e *APIError, _ error, def Class) Class {
		got = append(got, e)
		return def
	}))
	req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}}
	resp, err := tr.RoundTrip(req.WithContext(context.Background()))
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	resp.Body.Close()
	if len(got) != 1 || got[0] == nil {
		t.Fatalf("the Classifier got %v, want one APIError", got)
	}
	return got[0]
}
