package resilient

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/internal/wallclock"
)

// TestRateLimitResetSurvivesWallClockStep: a reset a server gives as a
// time on its clock (Unix seconds or milliseconds, RFC 3339, an HTTP date,
// or a Reset a RateLimitParser builds with time.Unix) is learned as the
// time it is from now, on the monotonic clock, as a Retry-After is: the
// pause or the spent quota it sets ends 30 seconds later, whatever the
// wall clock does meanwhile. (Kept as a wall-clock time, a pause learned
// 30 seconds ahead still had an hour and 30 seconds to go once NTP or a
// resumed virtual machine stepped the wall clock an hour back: every call
// to the host was refused at once with ErrRateLimited for an hour, the
// wait being longer than WithMaxRetryAfter's minute.)
func TestRateLimitResetSurvivesWallClockStep(t *testing.T) {
	const ahead = 30 * time.Second
	unix := func(now time.Time) string { return strconv.FormatInt(now.Add(ahead).Unix()+1, 10) }
	cases := []struct {
		name   string
		status int
		header func(now time.Time) http.Header
		opts   []Option
	}{
		{"429, Unix seconds", 429, func(now time.Time) http.Header {
			return hdr("X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", unix(now))
		}, nil},
		{"quota spent, Unix seconds", 200, func(now time.Time) http.Header {
			return hdr("X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", unix(now))
		}, nil},
		{"429, Unix milliseconds", 429, func(now time.Time) http.Header {
			return hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", strconv.FormatInt(now.Add(ahead).UnixMilli(), 10))
		}, nil},
		{"429, RFC 3339", 429, func(now time.Time) http.Header {
			return hdr("X-Rate-Limit-Remaining", "0", "X-Rate-Limit-Reset", now.Add(ahead+time.Second).UTC().Format(time.RFC3339))
		}, nil},
		{"quota spent, HTTP date", 200, func(now time.Time) http.Header {
			return hdr("X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", now.Add(ahead+time.Second).UTC().Format(http.TimeFormat))
		}, nil},
		{"429, a parser's time.Unix", 429, func(now time.Time) http.Header {
			return hdr("X-Quota-Reset", unix(now))
		}, []Option{WithRateLimitParser(func(h http.Header, now time.Time) (RateLimitInfo, bool) {
			v := h.Get("X-Quota-Reset")
			if v == "" {
				return RateLimitInfo{}, false
			}
			sec, _ := strconv.ParseInt(v, 10, 64)
			return RateLimitInfo{Limit: 10, Remaining: 0, Reset: time.Unix(sec, 0)}, true
		})}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: c.status, Header: c.header(time.Now()), Body: http.NoBody, Request: req}, nil
			})
			tr := New(base, append([]Option{WithMaxRetries(0)}, c.opts...)...)
			req, err := http.NewRequest(http.MethodGet, "https://api.test/v1/items", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			p := rlOf(t, tr).part(partKey{scheme: "https", host: "api.test"})
			if p == nil {
				t.Fatal("no partition learned")
			}
			now := time.Now()
			for _, step := range []time.Duration{0, -time.Hour} {
				at := now
				if step != 0 {
					at = wallclock.Stepped(t, now, step)
				}
				p.mu.Lock()
				until, _, _ := p.gate(at)
				p.mu.Unlock()
				if d := until.Sub(at); d <= 0 || d > ahead+2*time.Second {
					t.Errorf("the wall clock stepped by %v: the partition waits %v more, want at most %v", step, d, ahead+2*time.Second)
				}
			}
		})
	}
}
