package resilient

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestSpelledRetryAfter403KeepsItsSpelledHeaders: a 403 built by hand
// below the Transport whose every key is spelled otherwise than net/http
// spells it (a recorded cassette's lower-case keys: GitHub's secondary
// rate limit, a Retry-After beside its quota headers and its request id)
// is read by the Transport and by ParseError with all its headers
// respelled, as when its Retry-After was not read under a spelled key: its
// RequestID is the server's. Reading the spelled Retry-After made the 403
// a rate limit's before its header was respelled, which then was skipped,
// and the request id, under a spelled key too, was lost.
func TestSpelledRetryAfter403KeepsItsSpelledHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const body = `{"message":"You have exceeded a secondary rate limit"}`
		h := http.Header{
			"retry-after":           {"20"},
			"x-ratelimit-limit":     {"5000"},
			"x-ratelimit-remaining": {"4990"},
			"x-github-request-id":   {"CAFE:1234:5678"},
		}
		fromTransport := transportAPIError(t, http.StatusForbidden, h, body)
		e := ParseError(newResponse(rtStep{status: http.StatusForbidden, header: h, body: body}))
		for who, e := range map[string]*APIError{"the Transport": fromTransport, "ParseError": e} {
			if e == nil {
				t.Fatalf("%s: no APIError", who)
			}
			if !e.Retryable || e.RetryAfter != 20*time.Second || e.RequestID != "CAFE:1234:5678" {
				t.Errorf("%s: Retryable %v, RetryAfter %v, RequestID %q; want true, 20s, %q",
					who, e.Retryable, e.RetryAfter, e.RequestID, "CAFE:1234:5678")
			}
		}
	})
}
