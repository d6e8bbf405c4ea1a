package resilienttest

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
)

// secondsOfMaxDuration is the longest Duration in whole seconds, rounded
// up: 9223372036.854775807s.
const secondsOfMaxDuration = "9223372037"

// TestRateLimitedLongestRetryAfter: RateLimited with the longest Duration,
// a server asking for a wait no client should believe (what a test of a
// client's cap on Retry-After sends), answers with that wait in seconds
// rounded up, not a negative number.
func TestRateLimitedLongestRetryAfter(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := NewPipeServer(d, WithScript(RouteListPosts, RateLimited(math.MaxInt64)))
				defer s.Close()
				r := send(t, s, "GET", "/v1/posts", "", "")
				mustStatus(t, r, 429)
				if got := r.header.Get("Retry-After"); got != secondsOfMaxDuration {
					t.Errorf("%v: RateLimited(MaxInt64): Retry-After %q, want %q", d, got, secondsOfMaxDuration)
				}
			})
		})
	}
}

// TestQuotaHugeWindowHeaders: a quota whose window never ends (292 years
// or more, see TestQuotaHugeWindow) announces a reset centuries away in
// the formats that count seconds (DeltaSeconds, IETF's t= and w=), and its
// 429 a Retry-After as long: not a retry in one second, nor a negative
// number of seconds.
func TestQuotaHugeWindowHeaders(t *testing.T) {
	const far int64 = 9_000_000_000 // seconds: 285 years
	tests := []struct {
		format ResetFormat
		names  []string // the headers whose number of seconds must be far
	}{
		{DeltaSeconds, []string{"X-RateLimit-Reset"}},
		{IETF, []string{"RateLimit", "RateLimit-Policy"}},
	}
	for _, tt := range tests {
		t.Run(tt.format.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := NewPipeServer(Altyaa, WithQuota(Quota{Limit: 1, Window: math.MaxInt64, ResetFormat: tt.format}))
				defer s.Close()
				mustStatus(t, send(t, s, "GET", "/v1/usage", "", ""), 200)
				r := send(t, s, "GET", "/v1/usage", "", "")
				mustStatus(t, r, 429)
				if got, _ := strconv.ParseInt(r.header.Get("Retry-After"), 10, 64); got < far {
					t.Errorf("%v: Retry-After %q, want at least %d seconds", tt.format, r.header.Get("Retry-After"), far)
				}
				for _, name := range tt.names {
					v := r.header.Get(name)
					// The number of seconds: the whole value, or IETF's t= or w=.
					n := v
					if i := strings.LastIndexAny(v, "tw"); i >= 0 && i+1 < len(v) && v[i+1] == '=' {
						n = v[i+2:]
					}
					if got, _ := strconv.ParseInt(n, 10, 64); got < far {
						t.Errorf("%v: %s %q, want at least %d seconds", tt.format, name, v, far)
					}
				}
			})
		})
	}
}
