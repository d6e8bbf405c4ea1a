package resilient

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDocumentedCallOptions checks that the options the README and
// WithCallOptions's doc comment list as per call are exactly those
// WithCallOptions accepts, and that it panics, naming it, on every other
// option of the README's table.
func TestDocumentedCallOptions(t *testing.T) {
	rows := readmeOptionDefaults(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("callopts.go")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`With[A-Za-z]+`)
	between := func(s, from, to string) []string {
		_, s, ok := strings.Cut(s, from)
		s, _, ok2 := strings.Cut(s, to)
		if !ok || !ok2 {
			t.Fatalf("no text between %q and %q", from, to)
		}
		list := names.FindAllString(s, -1)
		slices.Sort(list)
		return slices.Compact(list)
	}
	inReadme := between(string(readme), "`WithCallOptions(ctx, opts...)` applies the per-call options to the calls made with `ctx`:", "The others")
	inDoc := between(string(src), "// Options that apply per call:", "The others")
	if !slices.Equal(inReadme, inDoc) {
		t.Errorf("per-call options: README lists %v, WithCallOptions's doc %v", inReadme, inDoc)
	}

	// One value of each option of the README's table.
	opts := map[string]Option{
		"WithMaxRetries":         WithMaxRetries(1),
		"WithBackOff":            WithBackOff(nil),
		"WithBackoff":            WithBackoff(time.Second, time.Minute),
		"WithMaxElapsed":         WithMaxElapsed(time.Minute),
		"WithMaxElapsedSpent":    WithMaxElapsedSpent(time.Minute),
		"WithMaxRetryAfter":      WithMaxRetryAfter(time.Minute),
		"WithAttemptTimeout":     WithAttemptTimeout(time.Second),
		"WithMaxBufferedBody":    WithMaxBufferedBody(1),
		"WithBufferedResponse":   WithBufferedResponse(1),
		"WithCodes":              WithCodes(map[string]Class{"X": Transient}),
		"WithClassifier":         WithClassifier(nil),
		"WithMaxPeek":            WithMaxPeek(1),
		"WithoutIdempotencyKeys": WithoutIdempotencyKeys(),
		"WithIdempotencyHeader":  WithIdempotencyHeader("X-Key"),
		"WithIdempotencyMethods": WithIdempotencyMethods("PUT"),
		"WithKeyHonoringHosts":   WithKeyHonoringHosts("api.example.com"),
		"WithBreaker":            WithBreaker(BreakerSettings{}),
		"WithoutBreaker":         WithoutBreaker(),
		"WithBreakerObserver":    WithBreakerObserver(func(BreakerChange) {}),
		"WithRateLimit":          WithRateLimit(10, 1),
		"WithRateLimitKey":       WithRateLimitKey(nil),
		"WithoutRateLimit":       WithoutRateLimit(),
		"WithQuotaStore":         WithQuotaStore(&memQuota{}),
		"WithObserver":           WithObserver(func(Attempt) {}),
		"WithLogger":             WithLogger(nil),
		"WithAttemptHeader":      WithAttemptHeader("X-Attempt"),
		"WithRetryBudget":        WithRetryBudget(RetryBudget{}),
		"WithoutRetryBudget":     WithoutRetryBudget(),
		"WithHedging":            WithHedging(Hedging{}),
		"WithoutHedging":         WithoutHedging(),
		"WithMaxInFlight":        WithMaxInFlight(1),
		"WithRateLimitParser":    WithRateLimitParser(nil),
		"WithTracer":             WithTracer(&recTracer{}),
		"WithContextObserver":    WithContextObserver(nil),
	}
	for opt := range rows {
		name, _, _ := strings.Cut(opt, "(")
		if strings.HasPrefix(name, "BreakerSettings.") || name == "Options" {
			continue
		}
		o, ok := opts[name]
		if !ok {
			t.Errorf("the README's option table has %s, which this test does not know", name)
			continue
		}
		perCall := slices.Contains(inReadme, name)
		msg := func() (msg string) {
			defer func() {
				if r := recover(); r != nil {
					msg = fmt.Sprint(r)
				}
			}()
			WithCallOptions(t.Context(), o)
			return ""
		}()
		switch {
		case perCall && msg != "":
			t.Errorf("WithCallOptions(%s) panicked (%s); the README lists it as per call", name, msg)
		case !perCall && msg == "":
			t.Errorf("WithCallOptions(%s) accepted it; the README says it panics on what is not listed as per call", name)
		case !perCall && !strings.Contains(msg, name):
			t.Errorf("WithCallOptions(%s) panicked with %q, which does not name it", name, msg)
		}
	}
}
