package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
)

// TestClassifyOriginMemberOfOtherAPIs: Postato's platform errors are
// error objects whose "origin" is "platform" (postato-error-handling.txt);
// their code is the social network's, which the code tables do not read
// (see decide). An error object of another API may carry an "origin" of
// its own (the gateway, the service or the upstream that answered): its
// code is still the host's, and the tables, WithCodes included, still
// apply to it. Before, any string "origin" made an envelope Postato's
// platform error: a gateway's 403 rate limit was Permanent instead of
// Throttled, and a code the caller classed with WithCodes was ignored.
func TestClassifyOriginMemberOfOtherAPIs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		codes  map[string]Class
		want   Class
	}{
		{"a gateway's 403 rate limit", 403, `{"error":{"code":"rate_limit_exceeded","origin":"gateway","message":"API rate limit exceeded"}}`, nil, Throttled},
		{"a 409 code classed by WithCodes", 409, `{"error":{"code":"busy_try_again","origin":"scheduler","message":"m"}}`, map[string]Class{"busy_try_again": Transient}, Transient},
		{"a 503 with a known permanent code", 503, `{"error":{"code":"PUBLIC_API_POST_NOT_FOUND","origin":"upstream","message":"m"}}`, nil, Permanent},
		// Postato's platform errors keep their rule.
		{"Postato's platform throttle", 403, `{"error":{"origin":"platform","code":"RATE_LIMITED","message":"m"}}`, nil, Permanent},
		{"Postato's platform throttle, retryable", 403, `{"error":{"origin":"platform","code":"RATE_LIMITED","message":"m","retryable":true}}`, nil, Transient},
		{"Postato's platform error, code classed by WithCodes", 409, `{"error":{"origin":"platform","code":"busy_try_again","message":"m"}}`, map[string]Class{"busy_try_again": Transient}, Permanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: tc.status, body: tc.body}, {status: 200}}}
				var attempts []Attempt
				opts := []Option{WithBackoff(0, 0), WithObserver(func(a Attempt) { attempts = append(attempts, a) })}
				if tc.codes != nil {
					opts = append(opts, WithCodes(tc.codes))
				}
				resp, _ := roundTrip(t, New(s, opts...), newRequest(t, context.Background(), "GET", "http://api.test/v1/things", nil))
				resp.Body.Close()
				if got := attempts[0].Class; got != tc.want {
					t.Errorf("class = %v, want %v", got, tc.want)
				}
				if tc.codes != nil {
					return // ParseError reads the built-in tables alone
				}
				if e := ParseError(newResponse(rtStep{status: tc.status, header: http.Header{}, body: tc.body})); e.Retryable != tc.want.Retryable() {
					t.Errorf("ParseError(…).Retryable = %v, want %v", e.Retryable, tc.want.Retryable())
				}
			})
		})
	}
}
