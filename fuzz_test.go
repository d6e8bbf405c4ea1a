package resilient

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	jsonenv "github.com/resilienthttp/resilient/internal/envelope"
)

// envelopeSeeds are the envelope shapes of the three vendors' error
// documentation and the generic ones, as the fuzzers' starting corpus.
var envelopeSeeds = []string{
	`{"success":false,"error":{"code":"PUBLIC_API_RATE_LIMITED","message":"Rate limit exceeded"},"request_id":"7f3a9c1e-0b2d-4c5e-9f1a-2b3c4d5e6f70"}`,
	`{"success":false,"error":{"code":"PUBLIC_API_IDEMPOTENCY_REQUIRED","message":"Missing Idempotency-Key on write"},"request_id":"r1"}`,
	"{\n\"error\": {\n\"code\": \"invalid_request\",\n\"message\": \"publishAt must be a future timestamp\",\n\"details\": {\n\"field\": \"publishAt\",\n\"reason\": \"value is in the past\"\n}\n}\n}",
	`{"error":"INVALID_REQUEST","message":"Body failed validation","details":{"content":["Required"]}}`,
	`{"postId":"pst_...","status":"failed","error":{"origin":"platform","code":"MEDIA_TOO_LARGE","message":"Instagram rejected: file exceeds 100 MB","platformRawCode":"...","retryable":false}}`,
	`{"type":"https://example.com/probs/out-of-credit","title":"You do not have enough credit.","status":403,"detail":"Your current balance is 30, but that costs 50.","instance":"/account/12345/msgs/abc"}`,
	`{"type":"about:blank","title":"Too Many Requests","status":429,"code":"rate_limited"}`,
	`{"errors":[{"code":"VALIDATION_FAILED","message":"caption too long"},{"code":2}]}`,
	`{"code":1001,"message":"db down","meta":{"request_id":"m-1"}}`,
	`{"code":"quota-exceeded","message":"x","requestId":"r"}`,
	`{"error":{"code":"caf\u00e9 \ud83d\ude00","message":"a\"b\\c\/d\n"}}`,
	`{"error":"invalid_token","error_description":"expired"}`,
	`<html><body><h1>502 Bad Gateway</h1></body></html>`,
	`{"error":{"code":"x","details":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`,
	`{"code":1e999999999}`,
	`{"error":{"code":"trunc`,
	``,
	// Other vendors' shapes.
	`{"error":{"code":"resource_missing","doc_url":"https://stripe.com/docs/error-codes/resource-missing","message":"No such customer","param":"id","type":"invalid_request_error"}}`,
	`{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED"}]}}`,
	`{"error":{"errors":[{"domain":"usageLimits","reason":"rateLimitExceeded","message":"Rate Limit Exceeded"}],"code":403,"message":"Rate Limit Exceeded","status":"PERMISSION_DENIED"}}`,
	`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011"}`,
	`{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
	`{"message":"Validation Failed","errors":[{"resource":"Issue","code":"missing_field","field":"title"}],"documentation_url":"https://docs.github.com/rest","status":"422"}`,
	// What the hand-written scanner got wrong.
	`{"code":"conflict"} trailing`,
	`{"code":--1}`,
	`{"c\u006fde":"C","\u0065rror":{"c\u006Fde":"E"}}`,
	`{"Code":"C","MESSAGE":"M","Error":{"Retryable":true}}`,
	`{"error":"E","error":{"code":"C"},"meta":7}`,
	// Shapes a hostile or odd server sends: a byte-order mark (UTF-8, and
	// UTF-16's, which is no JSON), a repeated code, nulls, a code of
	// another kind, invalid UTF-8, and a problem whose type links into
	// an RFC (ASP.NET Core's).
	"\xef\xbb\xbf{\"code\":\"rate_limited\"}",
	"\xff\xfe{\x00\"\x00c\x00o\x00d\x00e\x00\"\x00:\x001\x00}\x00",
	`{"code":"first","code":"second","error":{"code":"a","code":"b"}}`,
	`{"error":null,"code":null,"message":null,"errors":null,"retryable":null}`,
	`{"code":{"nested":"x"},"error":{"code":["x"],"retryable":"true"}}`,
	"{\"error\":{\"code\":\"\xff\xfe\xc0\xaf\",\"message\":\"\xed\xa0\x80\"}}",
	`{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.10","title":"Conflict","status":409,"traceId":"00-1-2-00"}`,
	`{"type":"https://datatracker.ietf.org/doc/html/rfc9110#section-15.6.4","status":503,"code":"rate_limit_exceeded"}`,
}

// FuzzParseEnvelope checks that parseEnvelope never panics, returns only
// values taken from its input, and agrees with encoding/json about what a
// JSON object is.
func FuzzParseEnvelope(f *testing.F) {
	for _, s := range envelopeSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, problem bool) {
		env, ok := parseEnvelope(data, problem)
		again, ok2 := parseEnvelope(data, problem)
		if ok != ok2 || env.code != again.code || env.reason != again.reason || env.message != again.message || env.requestID != again.requestID || env.dialect != again.dialect {
			t.Fatalf("parseEnvelope is not deterministic")
		}
		if !ok {
			return
		}
		// What was accepted is JSON, as encoding/json sees it, past a
		// UTF-8 byte-order mark (see jsonenv.Parse).
		if !json.Valid(jsonenv.TrimBOM(data)) {
			t.Fatalf("parseEnvelope accepted invalid JSON %q", data)
		}
		// Outputs are derived from the input: no longer than it (invalid
		// UTF-8 aside, which becomes U+FFFD), and plain substrings when no
		// escape is involved.
		valid := utf8.Valid(data)
		for name, v := range map[string]string{"code": env.code, "message": env.message, "requestID": env.requestID, "reason": env.reason} {
			if valid && len(v) > len(data) || len(v) > 3*len(data) {
				t.Fatalf("%s has %d bytes, more than the input's %d", name, len(v), len(data))
			}
			if valid && !bytes.Contains(data, []byte{'\\'}) && !strings.Contains(string(data), v) {
				t.Fatalf("%s %q is not in the input", name, v)
			}
		}
		if env.details != nil {
			// details are the input's bytes, verbatim.
			if !bytes.Contains(data, env.details) {
				t.Fatalf("details %q are not in the input", env.details)
			}
		}
		if env.retryable < -1 || env.retryable > 1 {
			t.Fatalf("retryable = %d", env.retryable)
		}
		switch env.dialect {
		case "", "aidelly", "altyaa", "postato", "stripe", "google",
			"problem+json", "generic":
		default:
			t.Fatalf("dialect = %q", env.dialect)
		}
		// A valid JSON document's values are valid JSON too.
		if json.Valid(data) && env.details != nil && !json.Valid(env.details) {
			t.Fatalf("details %q of a valid document are not valid JSON", env.details)
		}
	})
}

// FuzzParseEnvelopeValidJSON checks that every JSON object that is not too
// deep is accepted, so that a valid envelope is never mistaken for a
// malformed body.
func FuzzParseEnvelopeValidJSON(f *testing.F) {
	for _, s := range envelopeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		data = bytes.TrimLeft(data, " \t\r\n")
		if len(data) == 0 || data[0] != '{' || !json.Valid(data) || jsonDepth(data) > jsonenv.MaxDepth-4 {
			return
		}
		if _, ok := parseEnvelope(data, false); !ok {
			t.Fatalf("parseEnvelope rejected a valid JSON object: %q", data)
		}
	})
}

// jsonDepth returns the deepest nesting of objects and arrays in valid
// JSON data.
func jsonDepth(data []byte) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// FuzzParseRetryAfter checks that parseRetryAfter never panics, never
// returns a negative wait nor one past maxRetryAfterSeconds, reads
// delay-seconds exactly, accepts a date only where http.ParseTime does, as
// the same instant, and reads the instant at (seconds of the Unix epoch,
// any second of the years 1 to 9999) alike in each form of an HTTP date:
// the wait until it, 0 when it is past, capped at maxRetryAfterSeconds.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 2, 17, 14, 0, 0, 0, time.UTC)
	for _, s := range []string{
		"0", "120", " 5 ", "-1", "1.5", "18446744073709551616", "99999999999999999999999",
		"Tue, 17 Feb 2026 14:00:30 GMT", "Tuesday, 17-Feb-26 14:00:30 GMT", "Tue Feb 17 14:00:30 2026",
		"Mon, 01 Jan 0001 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "soon", "",
		"Tuesday, 17-Feb-26 14:00:30 UTC", "Tuesday, 17-Feb-26 14:00:30 PST", "Tue, 17 Feb 2026 14:00:30.5 GMT",
	} {
		f.Add(s, now.Unix()+30)
	}
	for _, at := range []int64{now.Unix(), now.Unix() - 1, now.Unix() + maxRetryAfterSeconds, now.Unix() + maxRetryAfterSeconds + 1,
		time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(2068, 12, 31, 23, 59, 59, 0, time.UTC).Unix(), math.MinInt64, math.MaxInt64} {
		f.Add("", at)
	}
	capped := maxRetryAfterSeconds * time.Second
	f.Fuzz(func(t *testing.T, v string, at int64) {
		d, ok := parseRetryAfter(v, now)
		if d < 0 || d > capped || !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %v, %v", v, d, ok)
		}
		trimmed := strings.TrimSpace(v)
		if ok && trimmed == "" {
			t.Fatalf("parseRetryAfter(%q) accepted an empty value", v)
		}
		if digits := strings.Trim(trimmed, "0123456789"); trimmed != "" && digits == "" {
			// delay-seconds: exact, capped at maxRetryAfterSeconds.
			if !ok || d%time.Second != 0 || d > maxRetryAfterSeconds*time.Second {
				t.Fatalf("parseRetryAfter(%q) = %v, %v", v, d, ok)
			}
			if len(strings.TrimLeft(trimmed, "0")) <= 9 && d != time.Duration(atoi(trimmed))*time.Second {
				t.Fatalf("parseRetryAfter(%q) = %v", v, d)
			}
		} else if ok {
			// A date: one that a plain client reads too, as the same
			// instant (every HTTP date is in GMT), the wait until it.
			pt, err := http.ParseTime(trimmed)
			if err != nil {
				t.Fatalf("parseRetryAfter(%q) = %v, true; http.ParseTime refuses it: %v", v, d, err)
			}
			if want := min(max(pt.Sub(now), 0), capped); d != want {
				t.Fatalf("parseRetryAfter(%q) = %v; http.ParseTime reads %v, %v from now", v, d, pt, want)
			}
		}
		if ok && !utf8.ValidString(trimmed) {
			t.Fatalf("parseRetryAfter(%q) accepted invalid UTF-8", v)
		}

		// The instant at, in every form of an HTTP date.
		lo, hi := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
		if at < lo || at > hi {
			at = lo + int64(uint64(at)%uint64(hi-lo+1))
		}
		when := time.Unix(at, 0).UTC()
		want := time.Duration(0)
		if secs := at - now.Unix(); secs > maxRetryAfterSeconds {
			want = capped
		} else if secs > 0 {
			want = time.Duration(secs) * time.Second
		}
		forms := []string{when.Format(http.TimeFormat), when.Format(time.ANSIC), " " + when.Format(http.TimeFormat) + "\t"}
		if y := when.Year(); y >= 1969 && y <= 2068 {
			// RFC 850's two digits of the year name these years alone
			// (as time.Parse reads them); its zone is named GMT, or UTC.
			rfc850 := when.Format(time.RFC850)
			forms = append(forms, strings.TrimSuffix(rfc850, "UTC")+"GMT", rfc850)
		}
		for _, form := range forms {
			if d, ok := parseRetryAfter(form, now); d != want || !ok {
				t.Errorf("parseRetryAfter(%q) = %v, %v, want %v, true (now %v)", form, d, ok, want, now)
			}
		}
	})
}

func atoi(s string) int64 {
	var n int64
	for _, c := range s {
		n = n*10 + int64(c-'0')
	}
	return n
}
