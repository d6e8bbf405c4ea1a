package resilient

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestBreakerLogRecordSafeHost: the log record of a breaker's state change
// names the breaker by its host, which a redirect may name with any
// character past ASCII that url.Parse lets through: a bidirectional
// override (U+202E), which makes a log viewer show the line in another
// order than it holds, or a C1 control (NEL, U+0085, a line break to
// some). The records of the attempts had them replaced by spaces, as
// Attempt.Host has them; the breaker's record carried them raw in a JSON
// log. The breaker's name, BreakerChange.Key, keeps them for observers.
func TestBreakerLogRecordSafeHost(t *testing.T) {
	var logs bytes.Buffer
	var keys []string
	tr := New(&rtScript{steps: []rtStep{{status: 503}}}, WithMaxRetries(0),
		WithBreaker(BreakerSettings{ConsecutiveFailures: 2}),
		WithBreakerObserver(func(c BreakerChange) { keys = append(keys, c.Key) }),
		WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	for range 3 {
		req := newRequest(t, t.Context(), http.MethodGet, "https://evil\u202egnp.\u0085example.com/x", nil)
		if resp, err := tr.RoundTrip(req); err == nil {
			resp.Body.Close()
		}
	}
	if len(keys) == 0 {
		t.Fatal("no breaker state change observed")
	}
	found := false
	for _, rec := range logRecords(t, &logs) {
		for k, v := range rec {
			s, ok := v.(string)
			if !ok {
				continue
			}
			if k == "breaker" {
				found = true
			}
			if i := strings.IndexFunc(s, isUnsafeRune); i >= 0 {
				t.Errorf("record %q: %s = %q: control character %q", rec["msg"], k, s, s[i:])
			}
		}
	}
	if !found {
		t.Fatalf("no breaker state change logged:\n%s", logs.String())
	}
}
