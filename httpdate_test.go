package resilient

import (
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// nonGMTDates are well-shaped HTTP dates in the obsolete RFC 850 form
// whose zone is not GMT. http.ParseTime accepts each of them on every
// machine, and reads its zone by the abbreviations of time.Local: "PST" is
// 8 hours behind GMT on a machine in Los Angeles and GMT itself on one in
// UTC, "BST" an hour ahead in London in summer; "GMT+5" is read as GMT
// labeled +5. RFC 9110 (section 5.6.7) allows GMT only.
var nonGMTDates = []string{
	"Tuesday, 17-Feb-26 14:00:30 PST",
	"Tuesday, 17-Feb-26 14:00:30 CET",
	"Tuesday, 17-Feb-26 14:00:30 BST",
	"Tuesday, 17-Feb-26 14:00:30 EST",
	"Tuesday, 17-Feb-26 14:00:30 ChST",
	"Tuesday, 17-Feb-26 14:00:30 GMT+5",
	"Tuesday, 17-Feb-26 14:00:30 +05",
}

// TestParseHTTPDate: the three forms of an HTTP date are read in GMT, and
// a date in the RFC 850 form that names another zone is malformed,
// whatever time.Local is, instead of a time that depends on it.
func TestParseHTTPDate(t *testing.T) {
	want := time.Date(2026, 2, 17, 14, 0, 30, 0, time.UTC)
	for _, v := range []string{
		"Tue, 17 Feb 2026 14:00:30 GMT",
		"Tuesday, 17-Feb-26 14:00:30 GMT",
		"Tuesday, 17-Feb-26 14:00:30 UTC",
		"Tue Feb 17 14:00:30 2026",
	} {
		if got, ok := parseHTTPDate(v); !ok || !got.Equal(want) {
			t.Errorf("parseHTTPDate(%q) = %v, %v, want %v, true", v, got, ok, want)
		}
	}
	for _, v := range append([]string{
		"Tue, 17 Feb 2026 14:00:30 UTC", // http.ParseTime refuses it too
		"Tue, 17 Feb 2026 14:00:30 PST",
		"Tue, 17 Feb 2026 14:00:30 +0000",
		"Tuesday, 17-Feb-26 14:00:30 gmt",
		"2026-02-17T14:00:30Z",
		"",
	}, nonGMTDates...) {
		if got, ok := parseHTTPDate(v); ok {
			t.Errorf("parseHTTPDate(%q) = %v, true, want malformed", v, got)
		}
	}
}

// TestNonGMTDateIgnored: every reader of an HTTP date (a Retry-After, the
// response's Date that times on the server's clock are read against, a
// rate-limit reset) ignores one in a zone other than GMT as malformed, so
// that a header means the same wait on every machine. Each read the date
// as http.ParseTime does, which on a machine in UTC (or with any local
// zone for the zones it does not know) is as if it said GMT.
func TestNonGMTDateIgnored(t *testing.T) {
	now := time.Date(2026, 2, 17, 14, 0, 0, 0, time.UTC)
	for _, v := range nonGMTDates {
		if d, ok := parseRetryAfter(v, now); ok {
			t.Errorf("parseRetryAfter(%q) = %v, true, want malformed", v, d)
		}
		if d, ok := retryAfterHeader(http.Header{"Retry-After": {v}}, func() time.Time { return now }); ok {
			t.Errorf("retryAfterHeader(Retry-After %q) = %v, true, want none", v, d)
		}
		if rateLimited403(http.Header{"Retry-After": {v}}) {
			t.Errorf("rateLimited403(Retry-After %q) = true, want a plain 403", v)
		}
		if d := serverSkew(http.Header{"Date": {v}}, now); d != 0 {
			t.Errorf("serverSkew(Date %q) = %v, want 0", v, d)
		}
		if tm, _, ok := parseReset(v, &lazyNow{t: now}); ok {
			t.Errorf("parseReset(%q) = %v, true, want malformed", v, tm)
		}
		if d, ok := resetWait(v, now); ok {
			t.Errorf("resetWait(%q) = %v, true, want malformed", v, d)
		}
		// A Retry-After date in GMT, read against a Date that is not:
		// the Date is ignored, the Retry-After read against the local
		// clock.
		h := http.Header{"Retry-After": {"Tue, 17 Feb 2026 14:00:10 GMT"}, "Date": {v}}
		if d, ok := retryAfterHeader(h, func() time.Time { return now }); !ok || d != 10*time.Second {
			t.Errorf("retryAfterHeader(%v) = %v, %v, want 10s, true", h, d, ok)
		}
	}
}

// TestRetryAfterNonGMTDate: a 503 whose Retry-After is a date in the RFC
// 850 form six seconds ahead but in PST is retried after the backoff, as
// with any malformed Retry-After, on every machine. It was retried after
// six seconds on a machine in UTC, and returned at once on one in Los
// Angeles, where it meant eight hours and six seconds.
func TestRetryAfterNonGMTDate(t *testing.T) {
	const base = 100 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		v := strings.Replace(time.Now().Add(6*time.Second).UTC().Format(time.RFC850), "UTC", "PST", 1)
		s := &rtScript{steps: []rtStep{
			{status: 503, header: http.Header{"Retry-After": {v}}, body: "first"},
			{status: 200, body: "second"},
		}}
		resp, err := roundTrip(t, New(s, WithBackoff(base, time.Minute), withRand(func(int64) int64 { return 0 })),
			newRequest(t, t.Context(), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatalf("RoundTrip error = %v", err)
		}
		if got := readBody(t, resp); got != "second" || s.numCalls() != 2 {
			t.Fatalf("Retry-After %q: got %q after %d attempts, want a retry", v, got, s.numCalls())
		}
		if w := s.call(1).at.Sub(s.call(0).at); w != base {
			t.Errorf("Retry-After %q: waited %v, want the backoff's %v", v, w, base)
		}
	})
}
