package resilient

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestWriteRuleKeylessReplayTeachesNothing: an Idempotent-Replayed header
// on the failed answer of a write sent without a key (a method left out of
// WithIdempotencyMethods, a call under WithoutIdempotencyKeys) teaches
// nothing of the host: the header answers no key, and the README has it
// teach only when answered to a write under a key the Transport drew, or to
// a read. Before, it taught the host, and a later write under a drawn key
// was resent after a 502. So does one on a keyless PUT's or DELETE's.
func TestWriteRuleKeylessReplayTeachesNothing(t *testing.T) {
	replayed := rtStep{status: 404, body: `{"error":{"code":"not_found_here","message":"no"}}`, header: http.Header{"Idempotent-Replayed": {"true"}}}
	for _, tc := range []struct {
		name   string
		method string
		opts   []Option
		ctx    func(context.Context) context.Context
	}{
		{name: "PATCH left out of WithIdempotencyMethods", method: http.MethodPatch, opts: []Option{WithIdempotencyMethods(http.MethodPost)}},
		{name: "POST under WithoutIdempotencyKeys per call", method: http.MethodPost, ctx: func(ctx context.Context) context.Context {
			return WithCallOptions(ctx, WithoutIdempotencyKeys())
		}},
		// Neither is a read, though the write rule resends them as
		// reads.
		{name: "PUT", method: http.MethodPut},
		{name: "DELETE", method: http.MethodDelete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{replayed, {status: 502}, {status: 201}}}
			tr := New(rt, append([]Option{fastRetries}, tc.opts...)...)
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx(ctx)
			}
			req, _ := http.NewRequestWithContext(ctx, tc.method, "https://api.example.com/v1/posts/1", strings.NewReader("x"))
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if k := rt.calls[0].header.Get("Idempotency-Key"); k != "" {
				t.Fatalf("the first write carried the key %q, want none", k)
			}
			req, _ = http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x"))
			resp, err = tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if rt.numCalls() != 2 || resp.StatusCode != 502 {
				t.Errorf("the keyed write got %d after %d attempts in all, want 502 after 2 (not resent to a host not known to honor keys)", resp.StatusCode, rt.numCalls())
			}
		})
	}
}
