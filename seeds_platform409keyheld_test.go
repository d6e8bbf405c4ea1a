package resilient

import (
	"io"
	"testing"
	"testing/synctest"
)

// TestSeedsPlatform409IsNoKeyHeld: a keyed write whose first attempt was
// lost (the connection broke after it may have been sent) is resent with
// its key; a 409 to the resend that carries a Postato platform error
// ("origin":"platform") is the social network's verdict on a post Postato
// took and finished, the key's stored answer, never Postato's "a request
// with this key is still being processed": its code is the platform's
// (decide reads none of them as the host's), and a platform error proves
// the key's request done. It is returned. keyHeld read the platform's
// "CONFLICT" as the host's key in flight and made it Transient: the write
// was resent with backoff until its retries ran out, each resend getting
// the same stored answer, where the answer had come.
func TestSeedsPlatform409IsNoKeyHeld(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want int // attempts
		code int
	}{
		{"platform error", `{"postId":"pst_1","status":"failed","error":{"origin":"platform","code":"CONFLICT","message":"LinkedIn rejected: duplicate share","platformRawCode":"409"}}`, 2, 409},
		{"platform error without a code", `{"postId":"pst_1","status":"failed","error":{"origin":"platform","message":"LinkedIn rejected: duplicate share"}}`, 2, 409},
		{"the host's key in flight", `{"error":"CONFLICT","message":"A request with this key is still being processed"}`, 3, 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &rtScript{steps: []rtStep{{err: io.ErrUnexpectedEOF}, {status: 409, body: tc.body}, {status: 201}, {status: 201}}}
				resp := postKeyed(t, New(rt, fastRetries), "https://api.postato.test/v1/posts", "post-1")
				if resp.StatusCode != tc.code || rt.numCalls() != tc.want {
					t.Errorf("status %d after %d attempts, want %d after %d", resp.StatusCode, rt.numCalls(), tc.code, tc.want)
				}
			})
		})
	}
}
