package resilient

import (
	"net/http"
	"strings"
	"testing"
)

// TestKeyHeaderConfiguredNameInAnyCase checks that a key the caller set by
// hand under the configured key header, in another capitalisation
// (req.Header["x-request-key"]), is the key the API reads on every attempt,
// and the one reported, even beside an Idempotency-Key an SDK set in its
// canonical form: the configured header outranks the usual names in any
// capitalisation. The caller's key, derived from its business identifier,
// was replaced on the wire by the SDK's, drawn anew for each call, and a
// write the caller made again after a restart, under its same key, was
// created twice by an API that deduplicates by the configured header.
func TestKeyHeaderConfiguredNameInAnyCase(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		name   string // the Transport's key header
		set    http.Header
		want   string // the key the API reads under name
		report string // Attempt.IdempotencyKey
	}{
		{"custom name in lower case", "X-Request-Key", http.Header{"x-request-key": {"order-42"}, "Idempotency-Key": {"sdk-1"}}, "order-42", "order-42"},
		{"X-Idempotency-Key in lower case", "X-Idempotency-Key", http.Header{"x-idempotency-key": {"order-42"}, "Idempotency-Key": {"sdk-1"}}, "order-42", "order-42"},
		{"default name in lower case", "Idempotency-Key", http.Header{"idempotency-key": {"order-42"}, "X-Idempotency-Key": {"sdk-1"}}, "order-42", "order-42"},
		// Within a name, its canonical entry first, as before.
		{"canonical entry first", "X-Request-Key", http.Header{"x-request-key": {"lower"}, "X-Request-Key": {"order-42"}, "Idempotency-Key": {"sdk-1"}}, "order-42", "order-42"},
		// A blank entry under the configured name is no key: the next name's is.
		{"blank entry", "X-Request-Key", http.Header{"x-request-key": {" "}, "Idempotency-Key": {"sdk-1"}}, "sdk-1", "sdk-1"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{{status: 500}, {status: 201}}}
			var atts []Attempt
			tr := New(rt, WithBackoff(0, 0), WithIdempotencyHeader(tc.name), WithObserver(func(a Attempt) { atts = append(atts, a) }))
			req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader(`{"id":42}`))
			req.Header = tc.set.Clone()
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			for i, k := range rt.headers(tc.name) {
				if k != tc.want {
					t.Errorf("attempt %d: the API read %s: %q, want %q", i+1, tc.name, k, tc.want)
				}
			}
			if n := rt.numCalls(); n != 2 {
				t.Errorf("%d attempts, want 2 (the caller's key resends the write)", n)
			}
			for _, a := range atts {
				if a.IdempotencyKey != tc.report {
					t.Errorf("attempt %d reported the key %q, want %q", a.Number, a.IdempotencyKey, tc.report)
				}
			}
		})
	}
}
