package resilient_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/resilienthttp/resilient"
)

// TestDefaultCodesListsIssueSpellings: DefaultCodes lists every code issue
// 3 names, under the spelling the issue gives it, with its class: a caller
// who reads a class from it, or overrides one with WithCodes under that
// spelling, finds the code there (quota-exceeded was listed as
// quota_exceeded, so DefaultCodes()["quota-exceeded"] read Success).
func TestDefaultCodesListsIssueSpellings(t *testing.T) {
	codes := resilient.DefaultCodes()
	for code, want := range map[string]resilient.Class{
		"rate_limited":            resilient.Throttled,
		"rate_limit_exceeded":     resilient.Throttled,
		"too_many_requests":       resilient.Throttled,
		"throttled":               resilient.Throttled,
		"quota-exceeded":          resilient.Throttled,
		"PUBLIC_API_RATE_LIMITED": resilient.Throttled,
		"service_unavailable":     resilient.Transient,
		"VALIDATION_FAILED":       resilient.Permanent,
	} {
		if got, ok := codes[code]; !ok || got != want {
			t.Errorf("DefaultCodes()[%q] = %v, %v; want %v, true", code, got, ok, want)
		}
	}
}

// TestWithCodesOverridesCommonThrottleCode: a common throttling code
// overridden with WithCodes under the spelling DefaultCodes lists takes
// the new class in every spelling the Transport matches (case, '-' or
// '_'), as the codes listed under that spelling do by default.
func TestWithCodesOverridesCommonThrottleCode(t *testing.T) {
	for _, code := range []string{"quota-exceeded", "quota_exceeded", "QUOTA-EXCEEDED"} {
		base := &answers{steps: []answer{{status: 400, header: http.Header{"Content-Type": {"application/json"}}, body: `{"code":"` + code + `","message":"m"}`}, {status: 200}}}
		for _, tc := range []struct {
			opts     []resilient.Option
			attempts int
		}{
			{nil, 2}, // Throttled by default: retried
			{[]resilient.Option{resilient.WithCodes(map[string]resilient.Class{"quota-exceeded": resilient.Permanent})}, 1},
		} {
			base.at, base.bodies, base.header = nil, nil, nil
			tr := resilient.New(base, append([]resilient.Option{resilient.WithBackoff(0, 0)}, tc.opts...)...)
			status, _, err := call(t, tr, context.Background(), http.MethodGet, "http://api.test/v1/posts", nil)
			if at, _, _ := base.sent(); len(at) != tc.attempts || err != nil {
				t.Errorf("code %q, %d options: %d, %v after %d attempts; want %d attempts", code, len(tc.opts), status, err, len(at), tc.attempts)
			}
		}
	}
}
