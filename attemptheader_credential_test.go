package resilient

import (
	"fmt"
	"strings"
	"testing"
)

// TestHeadersCarryingCredentialsRefused: WithAttemptHeader and
// WithIdempotencyHeader panic on a header that carries credentials, as
// their docs say, the common ones beyond Authorization, Cookie and
// X-Api-Key included: "2/6" or a drawn key written over X-Auth-Token
// would lose the caller's credential, and report it as a count or a key.
func TestHeadersCarryingCredentialsRefused(t *testing.T) {
	for _, name := range []string{"X-Auth-Token", "private-token", "api-key", "x-goog-api-key", "X-Access-Token", "x-amz-security-token", "Authorization", "Ocp-Apim-Subscription-Key"} {
		for fn, opt := range map[string]func(string) Option{"WithAttemptHeader": WithAttemptHeader, "WithIdempotencyHeader": WithIdempotencyHeader} {
			p := mustPanic(t, fmt.Sprintf("%s(%q) did not panic", fn, name), func() { opt(name) })
			if msg, _ := p.(string); p != nil && (!strings.HasPrefix(msg, "resilient: "+fn) || !strings.Contains(msg, "carries credentials")) {
				t.Errorf("%s(%q) panicked with %v, want a message naming it and the credentials", fn, name, p)
			}
		}
	}
	for _, name := range []string{"X-Attempt", "X-Retry-Count", "X-Request-Key"} {
		WithAttemptHeader(name) // no panic
	}
}
