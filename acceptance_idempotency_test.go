package resilient_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/resilienthttp/resilient"
)

// keyUUID4 matches a version 4 UUID in its canonical text form.
var keyUUID4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestKeyRequiredAttemptsReportTheirOwnKey: after a key-required answer,
// each Attempt given to the observer holds the key its request carried:
// none for the first, the generated one for the retry, as the server saw
// them. The first attempt's Attempt held the key generated for the retry,
// which it never sent.
func TestKeyRequiredAttemptsReportTheirOwnKey(t *testing.T) {
	const required = `{"success":false,"error":{"code":"PUBLIC_API_IDEMPOTENCY_REQUIRED","message":"Missing Idempotency-Key on write"},"request_id":"r1"}`
	base := &answers{steps: []answer{{status: 400, header: http.Header{"Content-Type": {"application/json"}}, body: required}, {status: 201}}}
	var atts []resilient.Attempt
	// No method gets an automatic key: the POST goes without one until the
	// server asks for it.
	tr := resilient.New(base, resilient.WithIdempotencyMethods(), resilient.WithObserver(func(a resilient.Attempt) { atts = append(atts, a) }))
	status, _, err := call(t, tr, context.Background(), http.MethodPost, "http://api.test/v1/posts", strings.NewReader("{}"))
	_, _, headers := base.sent()
	if status != 201 || err != nil || len(headers) != 2 || len(atts) != 2 {
		t.Fatalf("%d, %v after %d attempts (%d observed); want the 201 after 2", status, err, len(headers), len(atts))
	}
	for i, a := range atts {
		var sent string
		for k, v := range headers[i] {
			if strings.EqualFold(k, "Idempotency-Key") {
				sent = v[0]
			}
		}
		if a.IdempotencyKey != sent {
			t.Errorf("attempt %d: Attempt.IdempotencyKey %q, the request carried %q", i+1, a.IdempotencyKey, sent)
		}
	}
	if atts[0].IdempotencyKey != "" || !keyUUID4.MatchString(atts[1].IdempotencyKey) {
		t.Errorf("keys %q, %q; want none, then a generated one", atts[0].IdempotencyKey, atts[1].IdempotencyKey)
	}
}
