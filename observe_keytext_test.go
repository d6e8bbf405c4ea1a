package resilient

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestAttemptKeyIsSafeText: the idempotency key a caller forwards (an API
// gateway passes its own client's Idempotency-Key on) reaches the records
// as the method and the path do: without the bidirectional controls and
// line separators that net/http lets through in a header value, which
// would reorder or split a log line as shown, and bounded, so that a key
// of megabytes does not flood every record of the call. The request
// carries the key unchanged.
func TestAttemptKeyIsSafeText(t *testing.T) {
	for name, key := range map[string]string{
		"bidi override":  "order-\u202e1234-evil",
		"line separator": "order-\u2028forged record",
		"tab":            "order-\t1234",
		"huge":           strings.Repeat("k", 1<<20),
	} {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			var got collector[Attempt]
			rt := &rtScript{steps: []rtStep{{status: 201}}}
			tr := New(rt, WithObserver(got.add),
				WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			req := newRequest(t, t.Context(), http.MethodPost, "https://api.test/v1/orders", strings.NewReader("{}"))
			req.Header.Set("Idempotency-Key", key)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if sent := rt.headers("Idempotency-Key"); len(sent) != 1 || sent[0] != key {
				t.Errorf("the request carried the key %.40q, want the caller's unchanged", sent)
			}
			as := got.all()
			if len(as) != 1 || as[0].IdempotencyKey == "" {
				t.Fatalf("records %+v, want one with the key", as)
			}
			k := as[0].IdempotencyKey
			if i := strings.IndexFunc(k, isUnsafeRune); i >= 0 {
				t.Errorf("Attempt.IdempotencyKey = %q: control character %q", k, k[i:])
			}
			if len(k) > maxErrorText+len("…") {
				t.Errorf("Attempt.IdempotencyKey holds %d bytes, want at most %d", len(k), maxErrorText+len("…"))
			}
			if s := logs.String(); strings.ContainsAny(s, "\u202e\u2028") || logs.Len() > 4*maxErrorText {
				t.Errorf("log record of %d bytes holds the key unsafe or unbounded: %.200q", logs.Len(), s)
			}
		})
	}
}
