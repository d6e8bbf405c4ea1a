package resilient_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// This file checks issue 18's vendor rules from outside the package.

// TestGitHubRateLimited403Write: issue 18 — GitHub's 403 with Retry-After
// (a secondary rate limit, which GitHub applies above all to the requests
// that create content) or with X-RateLimit-Remaining: 0 (the primary quota
// spent) is Throttled, not Permanent: it refused the request over a rate
// limit, as a 429 does, without processing it. So a POST is resent after the
// wait, as after a 429, and with the same body; a 403 that says nothing of a
// rate limit stays Permanent, and a POST that got one is not resent.
func TestGitHubRateLimited403Write(t *testing.T) {
	const url = "https://api.github.com/repos/o/r/issues"
	const body = `{"title":"found a bug"}`
	for _, tc := range []struct {
		name     string
		header   func(now time.Time) http.Header
		attempts int
		wait     time.Duration
	}{
		{"secondary limit, Retry-After", func(time.Time) http.Header {
			return http.Header{"Retry-After": {"2"}}
		}, 2, 2 * time.Second},
		{"primary quota spent", func(now time.Time) http.Header {
			return http.Header{"X-Ratelimit-Limit": {"5000"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Used": {"5000"},
				"X-Ratelimit-Resource": {"core"}, "X-Ratelimit-Reset": {strconv.FormatInt(now.Add(10*time.Second).Unix(), 10)}}
		}, 2, 10 * time.Second},
		{"primary quota spent, reset in Unix milliseconds", func(now time.Time) http.Header {
			return http.Header{"X-Ratelimit-Limit": {"5000"}, "X-Ratelimit-Remaining": {"0"},
				"X-Ratelimit-Reset": {strconv.FormatInt(now.Add(10*time.Second).UnixMilli(), 10)}}
		}, 2, 10 * time.Second},
		{"permission denied", func(time.Time) http.Header { return http.Header{} }, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &answers{steps: []answer{
					{status: 403, header: tc.header(time.Now()), body: `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}`},
					{status: 201, body: `{"number":1}`},
				}}
				var r resilient.Report
				status, _, err := call(t, resilient.New(base), resilient.WithReport(context.Background(), &r), "POST", url, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				at, bodies, _ := base.sent()
				if len(at) != tc.attempts {
					t.Fatalf("%d attempts (status %d, stop reason %q), want %d", len(at), status, r.StopReason, tc.attempts)
				}
				if tc.attempts == 1 {
					if status != 403 || r.Outcome != resilient.OutcomePermanent {
						t.Errorf("status %d, outcome %q; want the 403, permanent", status, r.Outcome)
					}
					return
				}
				if status != 201 || bodies[1] != body {
					t.Errorf("status %d, resent body %q; want 201 and %q", status, bodies[1], body)
				}
				// The wait is the server's, and the limiter's spread of
				// it at most a tenth more.
				if d := at[1].Sub(at[0]); d < tc.wait || d > tc.wait+tc.wait/10+time.Second {
					t.Errorf("resent after %v, want %v", d, tc.wait)
				}
			})
		})
	}
}

// TestCodeRepeatingTheStatus: issue 18 — "Google's numeric code gives
// `429 429: Quota exceeded`". Azure OpenAI's 429 carries the same
// repetition as a string ({"error":{"code":"429",…}}): a code that only
// repeats the status is no code, whether a JSON number or a string, and
// the error reads `429 Too Many Requests: …`. A code of other digits is
// kept.
func TestCodeRepeatingTheStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		code   string
		text   string
	}{
		{429, `{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation have exceeded call rate limit."}}`, "",
			"429 Too Many Requests: Requests to the ChatCompletions_Create Operation have exceeded call rate limit."},
		{429, `{"error":{"code":429,"message":"Quota exceeded"}}`, "", "429 Too Many Requests: Quota exceeded"},
		{400, `{"error":{"code":"1001","message":"Bad thing"}}`, "1001", "400 1001: Bad thing"},
	} {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(tc.body))}
		e := resilient.ParseError(resp)
		if e.Code != tc.code || e.Dialect != "generic" || e.Error() != tc.text {
			t.Errorf("ParseError(%d %s) = code %q, dialect %q, %q; want %q, generic, %q", tc.status, tc.body, e.Code, e.Dialect, e.Error(), tc.code, tc.text)
		}
	}
}
