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

// FuzzCodeLookup checks the code tables against what DefaultCodes and
// WithCodes say of them. Without overrides, a code is classed alike by
// ParseError's lookup (defaultCodeClass) and by a Transport's (codeTable):
// as DefaultCodes lists it, matched exactly, and a spelling of one of the
// common throttling codes (any case, '-' for '_') as Throttled. With two
// overrides, code and other, each class mask picks: an entry applies to
// its own code, and one for a spelling of a common throttling code to the
// spellings without an entry of their own, the listed spelling's entry
// winning over the others' (and of those, the first in byte order).
func FuzzCodeLookup(f *testing.F) {
	for c := range DefaultCodes() {
		f.Add(c, strings.ToUpper(c), uint8(0x12))
		f.Add(strings.ReplaceAll(c, "_", "-"), c, uint8(0x31))
	}
	f.Add("", "", uint8(0))
	f.Add("Rate-Limited", "RATE_LIMITED", uint8(0x23))
	f.Add("quota_exceeded", "QUOTA-EXCEEDED", uint8(0x10))
	f.Add("THROTTLED", "not_found", uint8(0x03))
	defaults, plain := DefaultCodes(), newCodeTable(nil)
	f.Fuzz(func(t *testing.T, code, other string, mask uint8) {
		// spelling is a code in ASCII lower case, '-' for '_'.
		spelling := func(c string) string {
			b := []byte(c)
			for i, x := range b {
				if 'A' <= x && x <= 'Z' {
					b[i] = x + 'a' - 'A'
				} else if x == '-' {
					b[i] = '_'
				}
			}
			return string(b)
		}
		// want is the class of probe as DefaultCodes and WithCodes say,
		// with overrides.
		want := func(probe string, overrides map[string]Class) (Class, bool) {
			if probe == "" {
				return 0, false
			}
			if cl, ok := overrides[probe]; ok {
				return cl, true
			}
			listed := ""
			for _, c := range throttleCodes {
				if spelling(c) == spelling(probe) {
					listed = c
				}
			}
			if listed != "" {
				if cl, ok := overrides[listed]; ok {
					return cl, true
				}
				first := ""
				for k := range overrides {
					if spelling(k) == spelling(listed) && (first == "" || k < first) {
						first = k
					}
				}
				if first != "" {
					return overrides[first], true
				}
			}
			if cl, ok := defaults[probe]; ok {
				return cl, true
			}
			if listed != "" {
				return Throttled, true
			}
			return 0, false
		}
		// The spellings to look up: the codes, their other cases and
		// separators, each common throttling code respelled with code's
		// bytes as a mask of the letters to raise and the separators to
		// swap.
		probes := []string{code, other, strings.ToUpper(code), strings.ToLower(code), strings.ReplaceAll(code, "_", "-"), strings.ReplaceAll(code, "-", "_"),
			strings.ToUpper(other), strings.ReplaceAll(other, "-", "_")}
		for _, c := range throttleCodes {
			b := []byte(c)
			for i := range b {
				if i >= len(code) || code[i]&1 == 0 {
					continue
				}
				switch b[i] {
				case '-':
					b[i] = '_'
				case '_':
					b[i] = '-'
				default:
					b[i] -= 'a' - 'A'

				}
			}
			probes = append(probes, c, string(b))
		}

		for _, p := range probes {
			cl, ok := plain.lookup(p)
			dcl, dok := defaultCodeClass(p)
			if cl != dcl || ok != dok {
				t.Fatalf("code %q: the Transport's table gives %v, %v; ParseError's %v, %v", p, cl, ok, dcl, dok)
			}
			if wcl, wok := want(p, nil); cl != wcl || ok != wok {
				t.Fatalf("code %q: the Transport's table gives %v, %v; DefaultCodes says %v, %v", p, cl, ok, wcl, wok)
			}
		}

		overrides := map[string]Class{}
		if code != "" {
			overrides[code] = Class(mask % 4)
		}
		if other != "" {
			overrides[other] = Class(mask / 4 % 4)
		}
		tbl := newCodeTable(overrides)
		for _, p := range probes {
			cl, ok := tbl.lookup(p)
			if wcl, wok := want(p, overrides); cl != wcl || ok != wok {
				t.Fatalf("WithCodes(%v): code %q is classed %v, %v, want %v, %v", overrides, p, cl, ok, wcl, wok)
			}
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
// is valid UTF-8, without control characters, cut ("…") past maxErrorText
// bytes, that the password of a URL it quotes (or of a proxy's address
// without a scheme, as net/http quotes it) does not survive, nor the
// value of a query parameter whose name says it is a credential, wherever
// the URL stands in the text (bare, quoted as net/http quotes it, in
// parentheses, without its scheme). A second redactText may remove more
// (a '#' left before an escaped quote pairs quotes otherwise then), never
// bring a secret back: redaction is not promised idempotent.
func FuzzRedactText(f *testing.F) {
	for _, s := range []string{
		`Get "https://alice:s3cretpassword@api.test/v1?access_token=abc#frag": dial tcp: lookup api.test: no such host`,
		`parse "user:pass@proxy:8080": first path segment in URL cannot contain colon`,
		`Post "/v1?access_token=xyz": unsupported protocol scheme ""`,
		`net/http: HTTP/1.x transport connection broken: malformed HTTP status code "\x1b[2J"`,
		`a://b@c/webhooks/1/secret "q?x" \"`, strings.Repeat("://", 100), strings.Repeat(`"?`, 100),
	} {
		f.Add(s, "s3cretpassword", "access_token")
	}
	f.Add(`"`, "sig-0123456789", "X-Amz-Signature")
	f.Add(`\`, "0123456789abcdef", "api_key")
	f.Add("x https://", "0123456789abcdef", "client_secret")
	f.Fuzz(func(t *testing.T, s, pass, name string) {
		if len(pass) < redact.MinSecret || strings.ContainsAny(pass, "@/?#:\"'<>` )\\") || strings.Contains(redact.Placeholder, pass) {
			pass = "s3cretpassword"
		}
		if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" || !redact.SecretName(name) {
			name = "access_token"
		}
		u := "https://api.test/v1?" + name + "=" + pass + "&page=2"
		embedded := [...]string{
			s + " " + u + " " + s,
			s + ` "` + u + `" ` + s,
			`Get "` + u + `": ` + s,
			s + " (" + u + ") " + s,
			s + ` "/v1?` + name + "=" + pass + `" ` + s,
			s + " " + u + "#" + pass + " " + s,
		}
		leaks := strings.Contains(s, pass) || strings.Contains(name, pass) || strings.Contains("https://api.test/v1?=&page=2", pass)
		withUser := []string{s, s + ` "https://u:` + pass + `@h.test/p" ` + s, s + ` "u:` + pass + `@proxy.test:8080" ` + s}
		for i, in := range append(withUser, embedded[:]...) {
			got := redactText(in)
			if got != redactText(in) {
				t.Fatal("redactText is not deterministic")
			}
			if !utf8.ValidString(got) || len(got) > maxErrorText+len("…") {
				t.Fatalf("redactText(%q) = %q", in, got)
			}
			if len(got) > maxErrorText && !strings.HasSuffix(got, "…") {
				t.Fatalf("redactText(%q) = %q is longer than %d bytes and not marked cut", in, got, maxErrorText)
			}
			for _, r := range got {
				if r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 || isBidiControl(r) {
					t.Fatalf("redactText(%q) = %q holds %U", in, got, r)
				}
			}
			if i > 0 && !leaks && strings.Contains(got, pass) {
				t.Fatalf("redactText(%q) = %q keeps the secret %q", in, got, pass)
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
