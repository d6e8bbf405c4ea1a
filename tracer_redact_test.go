package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// errTracer keeps the errors its attempts' spans end with.
type errTracer struct{ errs []error }

func (e *errTracer) StartCall(ctx context.Context, _ *http.Request) context.Context { return ctx }
func (e *errTracer) StartAttempt(req *http.Request, _ AttemptInfo) (*http.Request, func(*http.Response, error)) {
	return req, func(_ *http.Response, err error) { e.errs = append(e.errs, err) }
}
func (e *errTracer) Attempt(context.Context, Attempt) {}
func (e *errTracer) EndCall(context.Context, *Report) {}

// TestTracerErrorRedacted: the error a Tracer's span of an attempt ends
// with is redacted as every error the Transport records is (its URLs
// without their query and user information, the credentials it echoes
// REDACTED), while errors.Is still finds its cause: a Tracer of the
// user's own that records the error's text (a span's status description,
// a log line) kept the base's words whole, an access token in the URL an
// http.Client-like base quotes included.
func TestTracerErrorRedacted(t *testing.T) {
	const secret = "s3cr3t-t0ken-value"
	cause := &url.Error{Op: "Get", URL: "https://user:" + secret + "@api.test/v1/me?access_token=" + secret, Err: io.ErrUnexpectedEOF}
	rec := &errTracer{}
	tr := New(&rtScript{steps: []rtStep{{err: cause}}}, WithMaxRetries(0), WithTracer(rec))
	req := newRequest(t, context.Background(), http.MethodGet, "https://api.test/v1/me?access_token="+secret, nil)
	req.Header.Set("X-Api-Key", secret)
	if _, err := tr.RoundTrip(req); err == nil {
		t.Fatal("a failed attempt succeeded")
	}
	if len(rec.errs) != 1 || rec.errs[0] == nil {
		t.Fatalf("the Tracer's spans ended with %v, want one error", rec.errs)
	}
	if err := rec.errs[0]; strings.Contains(err.Error(), secret) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("the span ended with %q (errors.Is(io.ErrUnexpectedEOF) %v); want the secret redacted, the cause found", err, errors.Is(err, io.ErrUnexpectedEOF))
	}
}
