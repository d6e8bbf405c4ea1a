package resilient

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestWriteRuleKeylessPutReplayTeachesNothing checks that an
// Idempotent-Replayed header answered to a PUT or a DELETE that carried no
// key teaches nothing of the host: neither is a read (the README has the
// header teach only when answered to a read that failed, or to a write
// under a key the Transport drew), and the header answers no key of the
// request, as it answers none of a keyless PATCH
// (TestWriteRuleKeylessReplayTeachesNothing). Before, it taught the host,
// and a later POST under a drawn key was resent after a 502.
func TestWriteRuleKeylessPutReplayTeachesNothing(t *testing.T) {
	replayed := rtStep{status: 404, body: `{"error":{"code":"not_found_here","message":"no"}}`, header: http.Header{"Idempotent-Replayed": {"true"}}}
	for _, method := range []string{http.MethodPut, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{replayed, {status: 502}, {status: 201}}}
			tr := New(rt, fastRetries)
			req, _ := http.NewRequestWithContext(context.Background(), method, "https://api.example.com/v1/posts/1", strings.NewReader("x"))
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if k := wireHeader(rt.call(0).header, "Idempotency-Key"); k != "" {
				t.Fatalf("the %s carried the key %q, want none", method, k)
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
