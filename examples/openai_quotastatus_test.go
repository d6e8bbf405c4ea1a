package examples

import (
	"net/http"
	"testing"

	"github.com/resilienthttp/resilient"
)

// TestOpenAIQuotaSpentOnlyOn429: the recipe's classifier makes Permanent
// only a 429 whose code is insufficient_quota; any other status that
// carries that code (a 503 of a proxy that copied the error object, a
// 500) keeps the default decision, and is retried as any other.
func TestOpenAIQuotaSpentOnlyOn429(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   resilient.Class
	}{
		{http.StatusTooManyRequests, resilient.Permanent},
		{http.StatusServiceUnavailable, resilient.Transient},
		{http.StatusInternalServerError, resilient.Transient},
	} {
		apiErr := &resilient.APIError{StatusCode: tc.status, Code: "insufficient_quota"}
		if got := openaiQuotaSpent(nil, apiErr, nil, resilient.Transient); got != tc.want {
			t.Errorf("%d insufficient_quota, default Transient: class %v, want %v", tc.status, got, tc.want)
		}
	}
}
