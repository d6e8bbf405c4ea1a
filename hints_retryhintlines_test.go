package resilient

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
)

// TestRetryHintLines: a vendor's retry hint (X-Should-Retry,
// Stripe-Should-Retry) is read as Retry-After is (TestRetryAfterRepeated,
// TestRetryAfterSpelledByHand): from the first well-formed of its first
// lines, so that an empty line a proxy adds before the server's does not
// hide it; as one value when a proxy merged its copies into one line
// ("false, false"); and under a key a response built by hand below the
// Transport did not make canonical ("x-should-retry", as the vendors'
// documents spell it). It was read from the first line of the canonical
// key alone, as written: the server's "do not retry" was ignored, and its
// 503 sent five times more.
func TestRetryHintLines(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want int8
	}{
		{http.Header{"X-Should-Retry": {"false"}}, 0},
		{http.Header{"X-Should-Retry": {"", "false"}}, 0},
		{http.Header{"X-Should-Retry": {"maybe", "true"}}, 1},
		{http.Header{"X-Should-Retry": {"false, false"}}, 0},
		{http.Header{"X-Should-Retry": {"true ,true"}}, 1},
		{http.Header{"X-Should-Retry": {"true, false"}}, -1}, // copies that differ say nothing
		{http.Header{"x-should-retry": {"false"}}, 0},
		{http.Header{"stripe-should-retry": {"true"}}, 1},
		{http.Header{"Stripe-Should-Retry": {"false"}, "x-should-retry": {"true"}}, 0}, // the canonical keys first
		{http.Header{"Stripe-Should-Retry": {"maybe"}, "X-Should-Retry": {"true"}}, 1},
		{http.Header{"X-Should-Retry": {"", "", "", "", "false"}}, -1}, // past maxHintLines
		{http.Header{"x-should-retryy": {"false"}}, -1},
		{http.Header{}, -1},
	} {
		for range 5 { // the map's iteration order is drawn anew each time
			if got := retryHint(tc.h); got != tc.want {
				t.Errorf("retryHint(%v) = %d, want %d", tc.h, got, tc.want)
				break
			}
		}
	}
}

// TestRetryHintLinesHonored checks TestRetryHintLines end to end: a 503
// whose server said not to retry it, in any of those forms, is returned
// after one request.
func TestRetryHintLinesHonored(t *testing.T) {
	for _, h := range []http.Header{
		{"X-Should-Retry": {"", "false"}},
		{"X-Should-Retry": {"false, false"}},
		{"x-should-retry": {"false"}},
		{"stripe-should-retry": {"false"}},
	} {
		t.Run(fmt.Sprint(h), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: http.StatusServiceUnavailable, header: h}, {status: http.StatusOK}}}
				resp, err := roundTrip(t, New(s, WithoutBreaker()), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if n := s.numCalls(); n != 1 || resp.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("%d server hits, status %d; want the 503 after 1: its server said not to retry it (%v)", n, resp.StatusCode, h)
				}
			})
		})
	}
}
