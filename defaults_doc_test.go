package resilient

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/internal/redact"
)

// readmeOptionDefaults returns the README's option table as a map from the
// option cell (without its backquotes) to the default cell.
func readmeOptionDefaults(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := make(map[string]string)
	in := false
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "| option | default |") {
			in = true
			continue
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, " | ")
		if len(cells) < 3 || strings.HasPrefix(line, "|---") {
			continue
		}
		opt := strings.Trim(strings.TrimPrefix(cells[0], "| "), "`")
		rows[opt] = cells[1]
	}
	if len(rows) == 0 {
		t.Fatal("README.md: no option table found")
	}
	return rows
}

// TestDocumentedDefaults checks each default the README's option table
// states, as written there, against the value a Transport made with no
// option actually uses, so that the table and the code cannot drift apart.
func TestDocumentedDefaults(t *testing.T) {
	rows := readmeOptionDefaults(t)
	tr := New(nil)
	cfg := tr.cfg
	bs := tr.breakers
	if bs == nil || tr.budgets == nil || tr.rl == nil {
		t.Fatalf("New(nil): breakers %v, budget %v, rate limiter %v; the README says all three are on", bs != nil, tr.budgets != nil, tr.rl != nil)
	}
	req, _ := http.NewRequest(http.MethodGet, "https://API.example.com/v1", nil)
	k, _ := requestKey(bs.keyFn, req)

	for _, tc := range []struct {
		option string // the README's option cell
		readme string // what the README's default cell says (a substring of it)
		got    any    // the value the code uses
		want   any    // the value the README's words mean
	}{
		{"WithMaxRetries(n)", "5", cfg.maxRetries, 5},
		{"WithMaxRetries(n)", "5", DefaultMaxRetries, 5},
		{"WithBackOff(func() backoff.BackOff)", "the schedule above", cfg.newBackOff == nil, true},
		{"WithBackoff(base, max)", "500ms, 30s", [2]time.Duration{cfg.backoffBase, cfg.backoffMax}, [2]time.Duration{500 * time.Millisecond, 30 * time.Second}},
		{"WithBackoff(base, max)", "500ms, 30s", [2]time.Duration{DefaultBackoffBase, DefaultBackoffMax}, [2]time.Duration{500 * time.Millisecond, 30 * time.Second}},
		{"WithMaxElapsed(d)", "5m", cfg.maxElapsed, 5 * time.Minute},
		{"WithMaxElapsed(d)", "5m", tr.MaxElapsed(), 5 * time.Minute},
		{"WithMaxElapsed(d)", "5m", new(Transport).MaxElapsed(), 5 * time.Minute},
		{"WithMaxElapsed(d)", "5m", DefaultMaxElapsed, 5 * time.Minute},
		{"WithMaxRetryAfter(d)", "60s", cfg.maxRetryAfter, 60 * time.Second},
		{"WithMaxRetryAfter(d)", "60s", DefaultMaxRetryAfter, 60 * time.Second},
		{"WithAttemptTimeout(d)", "0 (none)", cfg.attemptTimeout, time.Duration(0)},
		{"WithMaxBufferedBody(n)", "1 MiB", cfg.maxBufferedBody, int64(1 << 20)},
		{"WithMaxBufferedBody(n)", "1 MiB", DefaultMaxBufferedBody, 1 << 20},
		{"WithBufferedResponse(max)", "0 (off)", cfg.maxBufferedResponse, int64(0)},
		{"WithCodes(map[string]Class)", "the three APIs' tables", cfg.codes == nil, true},
		{"WithClassifier(fn)", "none", cfg.classifier == nil, true},
		{"WithMaxPeek(n)", "64 KiB", cfg.maxPeek, int64(64 << 10)},
		{"WithMaxPeek(n)", "64 KiB", tr.cls.maxPeek, int64(64 << 10)},
		{"WithMaxPeek(n)", "64 KiB", DefaultMaxPeek, 64 << 10},
		{"WithoutIdempotencyKeys()", "keys on", cfg.noIdempotencyKeys, false},
		{"WithIdempotencyHeader(name)", "`Idempotency-Key`", cfg.idempotencyHeader, "Idempotency-Key"},
		{"WithIdempotencyHeader(name)", "`Idempotency-Key`", DefaultIdempotencyHeader, "Idempotency-Key"},
		{"WithIdempotencyMethods(m...)", "POST, PATCH", strings.Join(cfg.idempotencyMethods, ", "), "POST, PATCH"},
		{"WithKeyHonoringHosts(hosts...)", "none named", len(cfg.keyHosts), 0},

		// The breaker: "on: ≥20 attempts in 30s with ≥50% failures trip
		// it; open 10s; 1 probe; key `scheme://host:port`", at most 4096.
		{"WithBreaker(BreakerSettings{…})", "≥20 attempts", bs.minRequests, uint64(20)},
		{"WithBreaker(BreakerSettings{…})", "in 30s", bs.settings.Interval, 30 * time.Second},
		{"WithBreaker(BreakerSettings{…})", "≥50% failures", bs.ratio, 0.5},
		{"WithBreaker(BreakerSettings{…})", "open 10s", bs.timeout, 10 * time.Second},
		{"WithBreaker(BreakerSettings{…})", "1 probe", bs.settings.MaxRequests, uint32(1)},
		{"WithBreaker(BreakerSettings{…})", "key `scheme://host:port`", breakerName(breakerKey{k.scheme, canonicalHost(k.scheme, k.host)}, false), "https://api.example.com:443"},
		{"BreakerSettings.ConsecutiveFailures", "0 (off)", bs.consecutive, uint64(0)},
		{"BreakerSettings.ProbeTimeout", "`OpenTimeout`", bs.probeTimeout, bs.timeout},
		{"BreakerSettings.IsFailure", "none", bs.isFailure == nil, true},
		{"WithoutBreaker()", "breaker on", cfg.noBreaker, false},
		{"WithBreakerObserver(fn)", "none", len(cfg.breakerObservers), 0},

		{"WithRateLimit(r, burst)", "none until the server announces its quota", float64(tr.rl.static), 0.0},
		{"WithRateLimitKey(fn)", "scheme + host", cfg.rateLimitKey == nil, true},
		{"WithoutRateLimit()", "limiter on", cfg.noRateLimit, false},
		{"WithQuotaStore(s)", "none", cfg.quotaStore == nil, true},
		{"WithObserver(fn)", "none", len(cfg.observers), 0},
		{"WithLogger(*slog.Logger)", "none", cfg.logger == nil, true},
		{"WithAttemptHeader(name)", "off", cfg.attemptHeader, ""},

		// The retry budget: "on: each answer deposits 0.2 retry …, at
		// most 10 held …; a blind retry costs 1, one the server asked
		// for with a wait … 0.1".
		{"WithRetryBudget(RetryBudget{…})", "deposits 0.2 retry", float64(tr.budgets.ratio) / budgetUnit, 0.2},
		{"WithRetryBudget(RetryBudget{…})", "at most 10 held", float64(tr.budgets.burst) / budgetUnit, 10.0},
		{"WithRetryBudget(RetryBudget{…})", "a blind retry costs 1", retriesHeld(tr.budgets, false), 10},
		{"WithRetryBudget(RetryBudget{…})", "one the server asked for with a wait (429 or 503 + `Retry-After`, a 429's announced reset) 0.1", retriesHeld(tr.budgets, true), 100},
		{"WithRetryBudget(RetryBudget{…})", "0.1", float64(tr.budgets.throttled) / budgetUnit, 0.1},
		{"WithRetryBudget(RetryBudget{…})", "0.2", DefaultRetryBudgetRatio, 0.2},
		{"WithRetryBudget(RetryBudget{…})", "10", DefaultRetryBudgetBurst, 10},
		{"WithRetryBudget(RetryBudget{…})", "0.1", DefaultRetryBudgetThrottledCost, 0.1},
		{"WithoutRetryBudget()", "budget on", cfg.noBudget, false},

		{"WithHedging(Hedging{Delay, MaxHedges, Quantile})", "off", cfg.hedging == nil, true},
		{"WithoutHedging()", "hedging off", cfg.hedging == nil, true},
		{"WithMaxInFlight(n)", "0 (no limit, no layer)", [2]any{cfg.maxInFlight, tr.bulkhead == nil}, [2]any{0, true}},
		{"WithRateLimitParser(fn)", "none", len(cfg.rateParsers), 0},
		{"WithTracer(Tracer)", "none", cfg.tracer == nil, true},
		{"WithContextObserver(fn)", "none", len(cfg.ctxObservers), 0},
	} {
		cell, ok := rows[tc.option]
		switch {
		case !ok:
			t.Errorf("README.md: no row for %s in the option table", tc.option)
		case !strings.Contains(cell, tc.readme):
			t.Errorf("README.md: %s's default is %q, want it to say %q", tc.option, cell, tc.readme)
		}
		if fmt.Sprint(tc.got) != fmt.Sprint(tc.want) || fmt.Sprintf("%T", tc.got) != fmt.Sprintf("%T", tc.want) {
			t.Errorf("%s: the code's default is %v (%T), the README says %q (%v)", tc.option, tc.got, tc.got, tc.readme, tc.want)
		}
	}

	// Every row of the table is an option that exists, and every default
	// it states is checked above or needs none.
	for opt := range rows {
		name, _, _ := strings.Cut(opt, "(")
		if strings.HasPrefix(name, "BreakerSettings.") || name == "Options" {
			continue
		}
		if !slices.Contains(documentedOptions, name) {
			t.Errorf("README.md: the option table has a row for %s, which TestDocumentedDefaults does not know", opt)
		}
	}
}

// documentedOptions are the options of the README's table.
var documentedOptions = []string{
	"WithMaxRetries", "WithBackOff", "WithBackoff", "WithMaxElapsed", "WithMaxElapsedSpent",
	"WithMaxRetryAfter", "WithAttemptTimeout", "WithMaxBufferedBody",
	"WithBufferedResponse", "WithCodes", "WithClassifier", "WithMaxPeek",
	"WithoutIdempotencyKeys", "WithIdempotencyHeader",
	"WithIdempotencyMethods", "WithKeyHonoringHosts", "WithBreaker",
	"WithoutBreaker", "WithBreakerObserver", "WithRateLimit",
	"WithRateLimitKey", "WithoutRateLimit", "WithQuotaStore",
	"WithObserver", "WithLogger", "WithAttemptHeader", "WithRetryBudget",
	"WithoutRetryBudget", "WithHedging", "WithoutHedging", "WithMaxInFlight",
	"WithRateLimitParser", "WithTracer", "WithContextObserver",
}

// TestDocumentedBounds checks the numbers the README and the doc comments
// give for the Transport's fixed bounds against the constants that set
// them.
func TestDocumentedBounds(t *testing.T) {
	for _, tc := range []struct {
		claim string // where it is stated, and what it says
		got   any
		want  any
	}{
		{"Bounds: MaxBelievedReset (1 h 1 min)", MaxBelievedReset, time.Hour + time.Minute},
		{"Bounds: times on the server's clock are read against Date when it differs by 2 s or more", dateTolerance, 2 * time.Second},
		{"WithMaxPeek: a body that stalls for 2 s", maxReadWait, 2 * time.Second},
		{"WithHedging: the host's latency at Quantile, 0.95", DefaultHedgeQuantile, 0.95},
		{"Hedging.MaxHedges (default 1)", WithHedging(Hedging{}).applied().hedging.MaxHedges, 1},
		{"Hedging.Delay: at least 2ms", minHedgeDelay, 2 * time.Millisecond},
		{"Hedging.Delay: no copy before the host has answered 20 times", minHedgeSamples, 20},
		{"hedging: at most one call in twenty of a host gets a copy", hedgeShare, 0.05},
		{"hedging: with ten in reserve for a burst of slow answers", hedgeBurst, 10},
		{"budget: a Transport keeps the budgets of 4,096 hosts", maxBudgets, 4096},
		{"budget: a host neither answered nor retried for a minute starts again full", budgetIdle, time.Minute},
		{"WithBreaker: at most 4096 breakers", [2]int{maxBreakers, New(nil).breakers.max}, [2]int{4096, 4096}},
		{"WithMaxInFlight: at most 4096 hosts", maxBulkheadKeys, 4096},
		{"write rule: remembered per scheme, host and port, at most 4,096 hosts", maxKeyHosts, 4096},
		{"rate limit: after 32 such responses in a row", quietAfter, 32},
		{"rate limit: it reads one success in 8", quietSample, 8},
		{"a host's name is cut past 255 bytes", redact.MaxHost, 255},
		{"a path past 8 KiB", redact.MaxPath, 8 << 10},
		{"the server's message, code and request id are cut (256 and 128 bytes)", [2]int{maxErrorMessage, maxErrorToken}, [2]int{256, 128}},
		{"Error: the cause's text is cut past 1 KiB", maxErrorText, 1 << 10},
		{"WithMaxRetryAfter: a spread of at most 10% and one second", retryAfterSpread(time.Hour, func(n int64) int64 { return n - 1 }), time.Second},
		{"WithMaxRetryAfter: a spread of at most 10% and one second", retryAfterSpread(5*time.Second, func(n int64) int64 { return n - 1 }), 500 * time.Millisecond},
	} {
		if fmt.Sprint(tc.got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: the code has %v, the docs say %v", tc.claim, tc.got, tc.want)
		}
	}
}

// retriesHeld returns how many retries a new host's budget of s pays for,
// throttled (asked for by the server) or not.
func retriesHeld(s *budgetSet, throttled bool) int {
	var b hostBudget
	s.fill(&b)
	n := 0
	for n < 1000 && s.withdraw(&b, throttled) {
		n++
	}
	return n
}

// applied returns the config an option makes of the defaults.
func (o Option) applied() config {
	c := defaultConfig()
	o(&c)
	return c
}

// TestDocumentedBackoffSchedule checks the README's formula: the delay
// before retry n is min(max, base·2^n + jitter), jitter uniform in
// [0, base·2^n), with the default base and cap.
func TestDocumentedBackoffSchedule(t *testing.T) {
	lo := func(int64) int64 { return 0 }
	hi := func(n int64) int64 { return n - 1 }
	for n, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		if got := backoffDelay(DefaultBackoffBase, DefaultBackoffMax, n, lo); got != want {
			t.Errorf("backoffDelay(n=%d), no jitter = %v, want %v", n, got, want)
		}
		wantHi := min(2*want-time.Nanosecond, DefaultBackoffMax)
		if want == DefaultBackoffMax {
			wantHi = DefaultBackoffMax
		}
		if got := backoffDelay(DefaultBackoffBase, DefaultBackoffMax, n, hi); got != wantHi {
			t.Errorf("backoffDelay(n=%d), most jitter = %v, want %v", n, got, wantHi)
		}
	}
}

// TestDocumentedTestsExist checks that every test, benchmark and example
// the README, docs/sdks.md and doc.go name as evidence exists, in this
// module or a submodule, so that a renamed test does not leave a claim
// without its proof.
func TestDocumentedTestsExist(t *testing.T) {
	var docs strings.Builder
	for _, f := range []string{"README.md", "docs/sdks.md", "doc.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs.Write(b)
	}
	var src strings.Builder
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			src.Write(b)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile(`\b(?:Test|Benchmark|Example)[A-Z][A-Za-z0-9_]*\b`).FindAllString(docs.String(), -1)
	slices.Sort(named)
	for _, name := range slices.Compact(named) {
		if name == "TestRetryBudget" { // "TestRetryBudget*", a family
			continue
		}
		if !strings.Contains(src.String(), "func "+name+"(") {
			t.Errorf("the docs name %s, which no _test.go file defines", name)
		}
	}
}
