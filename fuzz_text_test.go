package resilient

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/resilienthttp/resilient/internal/redact"
)

// This file fuzzes what the Transport makes of a server's text: the error
// envelope ParseError reads, the code tables it looks codes up in, the
// write rule's reading of a key-required answer, and the redaction of the
// text errors quote.

// FuzzCodeLookup checks that a code is classed alike by ParseError's
// lookup (defaultCodeClass) and by a Transport's without overrides
// (codeTable): one rule, whichever reads the response.
func FuzzCodeLookup(f *testing.F) {
	for c := range DefaultCodes() {
		f.Add(c)
		f.Add(strings.ToUpper(c))
		f.Add(strings.ReplaceAll(c, "_", "-"))
	}
	f.Add("")
	f.Fuzz(func(t *testing.T, code string) {
		tbl := newCodeTable(nil)
		cl, ok := tbl.lookup(code)
		dcl, dok := defaultCodeClass(code)
		if cl != dcl || ok != dok {
			t.Fatalf("code %q: the Transport's table gives %v, %v; ParseError's %v, %v", code, cl, ok, dcl, dok)
		}
	})
}

// FuzzIsKeyRequired checks that the write rule takes an answer for one
// asking for an idempotency key only when its status is 400 or 428 and its
// code or message speaks of idempotency.
func FuzzIsKeyRequired(f *testing.F) {
	for _, s := range [][2]string{
		{"PUBLIC_API_IDEMPOTENCY_REQUIRED", "Missing Idempotency-Key on write"},
		{"invalid_request", "Idempotency-Key is missing"},
		{"", "this operation requires an idempotency key"},
		{"", "currency is required. Idempotency is not guaranteed"},
		{"https://example.com/probs/idempotency", "Idempotency-Key is missing"},
		{"idempotency_key_in_use", "key in use"},
		{"", "idempotency_token required; idempotency keys are not supported"},
	} {
		f.Add(400, s[0], s[1])
		f.Add(428, s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, status int, code, message string) {
		e := &APIError{StatusCode: status, Code: code, Message: message}
		got := isKeyRequired(e)
		if got != isKeyRequired(e) {
			t.Fatal("isKeyRequired is not deterministic")
		}
		if !got {
			return
		}
		if status != http.StatusBadRequest && status != http.StatusPreconditionRequired {
			t.Fatalf("a %d taken for a key-required answer", status)
		}
		if !strings.Contains(strings.ToLower(code), "idempoten") && !strings.Contains(strings.ToLower(message), "idempotency") {
			t.Fatalf("code %q, message %q taken for a key-required answer", code, message)
		}
	})
}

// fuzzSecret is the credential FuzzParseError's requests carry.
const fuzzSecret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"

// FuzzParseError checks that ParseError, whatever a server answers, never
// panics, leaves the body readable byte for byte, gives a wait within
// maxRetryAfterSeconds, never repeats the request's credential, and gives
// an error message of valid UTF-8, without control characters, of bounded
// length.
func FuzzParseError(f *testing.F) {
	for i, s := range envelopeSeeds {
		f.Add(400+i%4*29, []string{"application/json", "application/problem+json", "text/html", ""}[i%4], "30", s)
	}
	f.Add(401, "application/json", "", `{"error":{"code":"invalid_api_key","message":"invalid api key `+fuzzSecret+`"}}`)
	f.Add(401, "application/json", "", `{"error":"invalid_token","error_description":"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig expired", "request_id":"`+fuzzSecret+`"}`)
	f.Add(429, "application/json; charset=utf-8", "Tue, 17 Feb 2026 14:00:30 GMT", `{"code":"rate_limited","message":"`+strings.Repeat("\u202e\x1b[31m", 100)+`"}`)
	f.Fuzz(func(t *testing.T, status int, contentType, retryAfter, body string) {
		u, _ := url.Parse("https://api.test/v1/x?api_key=" + fuzzSecret)
		req := &http.Request{Method: http.MethodPost, URL: u, Header: http.Header{"Authorization": {"Bearer " + fuzzSecret}}}
		h := http.Header{"Content-Type": {contentType}, "Retry-After": {retryAfter}}
		resp := &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: req}
		e := ParseError(resp)
		rest, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(rest, []byte(body)) {
			t.Fatalf("the body reads %q, %v after ParseError; it was %q", rest, err, body)
		}
		if status < 400 {
			if e != nil {
				t.Fatalf("ParseError of a %d = %v", status, e)
			}
			return
		}
		if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfterSeconds*time.Second {
			t.Fatalf("RetryAfter = %v", e.RetryAfter)
		}
		for _, v := range [...]string{e.Code, e.Message, e.RequestID} {
			if strings.Contains(v, fuzzSecret) {
				t.Fatalf("%+v repeats the credential", e)
			}
		}
		msg := e.Error()
		if !utf8.ValidString(msg) || strings.Contains(msg, fuzzSecret) {
			t.Fatalf("Error() = %q", msg)
		}
		if len(msg) > len("-9223372036854775808")+2*(maxErrorToken+len("…"))+maxErrorMessage+len("…")+len(" : (request_id )") {
			t.Fatalf("Error() has %d bytes", len(msg))
		}
		for _, r := range msg {
			if r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u2028' || r == '\u2029' || isBidiControl(r) {
				t.Fatalf("Error() = %q holds %U", msg, r)
			}
		}
	})
}

// FuzzRedactText checks that the text of an error the Transport records
// is valid UTF-8, without control characters, bounded, and that the
// password of a URL it quotes does not survive.
func FuzzRedactText(f *testing.F) {
	for _, s := range []string{
		`Get "https://alice:s3cretpassword@api.test/v1?access_token=abc#frag": dial tcp: lookup api.test: no such host`,
		`parse "user:pass@proxy:8080": first path segment in URL cannot contain colon`,
		`Post "/v1?access_token=xyz": unsupported protocol scheme ""`,
		`net/http: HTTP/1.x transport connection broken: malformed HTTP status code "\x1b[2J"`,
		`a://b@c/webhooks/1/secret "q?x" \"`, strings.Repeat("://", 100), strings.Repeat(`"?`, 100),
	} {
		f.Add(s, "s3cretpassword")
	}
	f.Fuzz(func(t *testing.T, s, pass string) {
		if len(pass) < redact.MinSecret || strings.ContainsAny(pass, "@/?#:\"'<>` )\\") || strings.Contains(redact.Placeholder, pass) {
			pass = "s3cretpassword"
		}
		for _, in := range [...]string{s, s + ` "https://u:` + pass + `@h.test/p" ` + s} {
			got := redactText(in)
			if got != redactText(in) {
				t.Fatal("redactText is not deterministic")
			}
			if !utf8.ValidString(got) || len(got) > maxErrorText+len("…") {
				t.Fatalf("redactText(%q) = %q", in, got)
			}
			for _, r := range got {
				if r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 || isBidiControl(r) {
					t.Fatalf("redactText(%q) = %q holds %U", in, got, r)
				}
			}
			if in != s && !strings.Contains(s, pass) && strings.Contains(got, pass) {
				t.Fatalf("redactText(%q) = %q keeps the password", in, got)
			}
		}
	})
}

// FuzzServerTextProvesNothing checks that what a server says, quoted in
// net/http's errors as they quote it (a header's value, a status line, a
// GOAWAY's debug data) or in a url.Error's URL, never proves a request
// unsent: whatever the text, a write whose attempt failed so is not
// resent to a host not known to honor keys. unquoted keeps net/http's own
// words and drops every quoted string.
func FuzzServerTextProvesNothing(f *testing.F) {
	for _, s := range []string{"stream error: stream ID 1; REFUSED_STREAM", "unsupported protocol scheme", "no Host in request URL",
		`x" stream error: stream ID 1; REFUSED_STREAM "`, `\`, `"`, "server gave HTTP response to HTTPS client"} {
		f.Add(s)
	}
	f.Add("http: invalid Host header")
	f.Add("http2: invalid Connection request header")
	f.Add("http2: Transport received Server's graceful shutdown GOAWAY")
	f.Add("http2: Transport received GOAWAY from server ErrCode:ENHANCE_YOUR_CALM")
	req, _ := http.NewRequest(http.MethodPost, "http://api.test/v1/posts", nil)
	f.Fuzz(func(t *testing.T, s string) {
		for _, err := range []error{
			fmt.Errorf("net/http: HTTP/1.x transport connection broken: bad Content-Length %q", s),
			fmt.Errorf("malformed HTTP response %q", s),
			fmt.Errorf(`http2: server sent GOAWAY and closed the connection; LastStreamID=1, ErrCode=NO_ERROR, debug=%q`, s),
			&url.Error{Op: "Post", URL: s, Err: io.ErrUnexpectedEOF},
		} {
			if _, neverSent := classifyErr(err); neverSent || goAwayFirstStream(err) {
				t.Fatalf("classifyErr(%q) proves the request unsent", err)
			}
			if _, mistake := requestFault(req, err).(*RequestError); mistake {
				t.Fatalf("requestFault(%q) takes the server's words for the caller's mistake", err)
			}
		}
		u := unquoted(fmt.Sprintf("a %q b", s))
		if u != "a  b" {
			t.Fatalf("unquoted(a %q b) = %q, want %q", s, u, "a  b")
		}
	})
}
