package resilient

import (
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestParseErrorReadsRateHeadersAsTheTransport: ParseError's Retryable
// reflects the Transport's default decision, and a 403 whose rate-limit
// headers were spelled by hand (a stub's http.Header{"X-RateLimit-Remaining":
// …}, not net/http's canonical keys) is a rate limit's to the Transport
// (see classifier.classify): ParseError reads it so too, and its
// RetryAfter is the time to the reset, as the Transport's APIError has it;
// its RequestID, under a name spelled by hand too (X-GitHub-Request-Id),
// is the Transport's. The response keeps the header it came with.
func TestParseErrorReadsRateHeadersAsTheTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const body = `{"message":"API rate limit exceeded"}`
		h := http.Header{
			"X-RateLimit-Limit":     {"60"},
			"X-RateLimit-Remaining": {"0"},
			"X-RateLimit-Reset":     {time.Now().Add(20 * time.Second).UTC().Format(time.RFC3339)},
			"X-GitHub-Request-Id":   {"CAFE:1234:5678"},
		}
		fromTransport := transportAPIError(t, http.StatusForbidden, h, body)
		if fromTransport == nil || !fromTransport.Retryable || fromTransport.RetryAfter != 20*time.Second || fromTransport.RequestID != "CAFE:1234:5678" {
			t.Fatalf("the Transport's APIError = %+v, want Retryable after 20s, RequestID CAFE:1234:5678", fromTransport)
		}

		resp := newResponse(rtStep{status: http.StatusForbidden, header: h, body: body})
		got := readBodyAfter(t, resp, func() {
			e := ParseError(resp)
			if e.RequestID != fromTransport.RequestID || e.Retryable != fromTransport.Retryable || e.RetryAfter != fromTransport.RetryAfter {
				t.Errorf("ParseError: RequestID %q, Retryable %v, RetryAfter %v; the Transport's: %q, %v, %v",
					e.RequestID, e.Retryable, e.RetryAfter, fromTransport.RequestID, fromTransport.Retryable, fromTransport.RetryAfter)
			}
		})
		if got != body {
			t.Errorf("body after ParseError = %q, want %q", got, body)
		}
		//lint:ignore SA1008 the spellings the stub set by hand, which ParseError must leave.
		if _, ok := resp.Header["X-RateLimit-Remaining"]; !ok || len(resp.Header["X-GitHub-Request-Id"]) == 0 {
			t.Error("ParseError rewrote the response's header")
		}
	})
}

// TestSpelledTwiceReadInOneOrder: a 403 whose X-RateLimit-Remaining is
// spelled by hand twice, with values that disagree, is read the same way
// by every ParseError and every attempt of the Transport: the respelled
// copy joins the spellings' values in an order of their keys, not of the
// map's iteration, which Go draws anew for each range.
func TestSpelledTwiceReadInOneOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const body = `{"message":"API rate limit exceeded"}`
		h := http.Header{
			"x-ratelimit-limit":     {"60"},
			"x-ratelimit-remaining": {"0"},
			"X-RATELIMIT-REMAINING": {"7"},
			"x-ratelimit-reset":     {time.Now().Add(20 * time.Second).UTC().Format(time.RFC3339)},
		}
		type answer struct {
			retryable bool
			after     time.Duration
		}
		seen := map[string]map[answer]int{"ParseError": {}, "the Transport": {}}
		for range 64 {
			e := ParseError(newResponse(rtStep{status: http.StatusForbidden, header: h, body: body}))
			seen["ParseError"][answer{e.Retryable, e.RetryAfter}]++

			fromTransport := transportAPIError(t, http.StatusForbidden, h, body)
			seen["the Transport"][answer{fromTransport.Retryable, fromTransport.RetryAfter}]++
		}
		for who, answers := range seen {
			if len(answers) != 1 {
				t.Errorf("%s read one 403 in %d ways over 64 reads: %v, want one", who, len(answers), answers)
			}
		}
	})
}

// TestSpelledTwiceBesideTheCanonicalJoinedInOneOrder: a header that holds
// X-RateLimit-Remaining under its canonical key and twice more spelled by
// hand is respelled with the same values in the same order on every read:
// the canonical key's first, as net/http's own, then the spellings' in
// the order of their keys, whatever order the map's iteration draws.
func TestSpelledTwiceBesideTheCanonicalJoinedInOneOrder(t *testing.T) {
	h := http.Header{
		"X-Ratelimit-Limit":     {"60"},
		"X-Ratelimit-Remaining": {"3"},
		"x-ratelimit-remaining": {"0"},
		"X-RATELIMIT-REMAINING": {"7"},
	}
	want := []string{"3", "7", "0"}
	for range 64 {
		if got := canonicalRateHeader(h)["X-Ratelimit-Remaining"]; !slices.Equal(got, want) {
			t.Fatalf("respelled X-Ratelimit-Remaining = %q, want %q", got, want)
		}
	}
}

// transportAPIError returns the APIError the Transport hands its
// Classifier for a GET answered status with header h and body.
func transportAPIError(t *testing.T, status int, h http.Header, body string) *APIError {
	t.Helper()
	var fromTransport *APIError
	s := &rtScript{steps: []rtStep{{status: status, header: h, body: body}}}
	tr := New(s, WithMaxRetries(0), WithClassifier(func(_ *http.Response, e *APIError, _ error, def Class) Class {
		fromTransport = e
		return def
	}))
	resp, err := roundTrip(t, tr, newRequest(t, t.Context(), "GET", "https://api.test/v1/posts", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return fromTransport
}
