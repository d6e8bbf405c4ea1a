package resilient_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestKeyRetryNotSentTeachesNothing: a write sent without a key (its
// method not among WithIdempotencyMethods) and refused for want of one,
// whose retry under a new key is not sent after all (the host's retry
// budget is spent, or the body cannot be sent again), teaches nothing of
// the host: the retry that would have shown whether the host reads the key
// (see TestKeyRequiredRetryUnreadKeyTeachesNothing) was never sent. Here
// the host reads none but X-Idempotency-Key, and ignores keys: its other
// writes (POST /v1/posts), stored and then failed with a 500, are returned
// after one attempt, as a plain client returns them. Before, the refusal
// taught the host, and such a write was resent and stored twice.
func TestKeyRetryNotSentTeachesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []resilient.Option
		spend bool // spend the retry budget first
		body  func(string) io.Reader
		stop  resilient.StopReason
	}{
		// A budget of one retry, spent by an outage, refilled by the
		// refusal's answer and a read's.
		{"retry budget spent", []resilient.Option{resilient.WithRetryBudget(resilient.RetryBudget{Burst: 1, Ratio: 0.5})}, true,
			func(s string) io.Reader { return strings.NewReader(s) }, resilient.StopRetryBudget},
		{"body not replayable", []resilient.Option{resilient.WithMaxBufferedBody(4)}, false,
			func(s string) io.Reader { return streamOf{strings.NewReader(s)} }, resilient.StopBodyNotReplayable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkKeyRetryNotSentTeachesNothing(t, tc.opts, tc.spend, tc.body, tc.stop)
		})
	}
}

func checkKeyRetryNotSentTeachesNothing(t *testing.T, opts []resilient.Option, spend bool, body func(string) io.Reader, stop resilient.StopReason) {
	t.Helper()
	front, ignoring := keyRequiredHost(t, resilienttest.NewServer)
	tr := resilient.New(front.Transport(), append([]resilient.Option{resilient.WithBackoff(0, 0), resilient.WithoutBreaker(), resilient.WithoutRateLimit(),
		resilient.WithIdempotencyMethods(http.MethodPost)}, opts...)...)
	ctx := context.Background()
	if spend {
		if got, _, err := call(t, tr, ctx, http.MethodGet, front.URL+"/v1/outage", nil); err != nil || got != http.StatusServiceUnavailable {
			t.Fatalf("outage: %d, %v; want the 503", got, err) // its one retry spent the budget
		}
	}
	var rep resilient.Report
	if got, _, err := call(t, tr, resilient.WithReport(ctx, &rep), http.MethodPatch, front.URL+"/v1/posts/p1", body(`{"content":"edited"}`)); err != nil || got != http.StatusBadRequest || rep.StopReason != stop {
		t.Fatalf("patch: %d, %v, stop reason %q; want the 400, %q", got, err, rep.StopReason, stop)
	}
	if got, _, err := call(t, tr, ctx, http.MethodGet, front.URL+"/v1/ok", nil); err != nil || got != http.StatusOK {
		t.Fatalf("read: %d, %v; want 200", got, err)
	}
	if got, _, err := call(t, tr, ctx, http.MethodPost, front.URL+"/v1/posts", strings.NewReader(`{"content":"hello"}`)); err != nil || got != http.StatusInternalServerError {
		t.Errorf("post: %d, %v; want the 500, as a plain client gets it", got, err)
	}
	if n := ignoring.Stats().StoredWrites; n != 1 {
		t.Errorf("after a key retry not sent, the post was stored %d times by a host that ignores keys, want 1", n)
	}
}

// keyRequiredHost returns a host (front) that refuses a PATCH without
// X-Idempotency-Key as a key required (400), answers GET /v1/outage with
// a 503 and GET /v1/ok with a 200, and passes anything else to a host
// that ignores keys (ignoring), whose POST /v1/posts is stored, then
// fails with a 500: a host that asks for a key it never reads. newServer
// is resilienttest.NewServer, or NewPipeServer within a synctest bubble.
// Both are closed as t ends.
func keyRequiredHost(t *testing.T, newServer func(resilienttest.Dialect, ...resilienttest.Option) *resilienttest.Server) (front, ignoring *resilienttest.Server) {
	t.Helper()
	const required = `{"error":{"code":"idempotency_key_required","message":"X-Idempotency-Key is required"}}`
	ignoring = newServer(resilienttest.Altyaa, resilienttest.WithIgnoreIdempotencyKeys(true))
	front = newServer(resilienttest.Altyaa, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/outage":
			w.WriteHeader(http.StatusServiceUnavailable)
		case r.URL.Path == "/v1/ok":
			w.WriteHeader(http.StatusOK)
		case r.Method == http.MethodPatch && r.Header.Get("X-Idempotency-Key") == "":
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(required))
		default:
			ignoring.ServeHTTP(w, r)
		}
	})), resilienttest.WithScript("POST /v1/posts", resilienttest.FailAfterStoring()))
	t.Cleanup(func() { front.Close(); ignoring.Close() })
	return front, ignoring
}
