package resilient

import (
	"errors"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
)

// TestWriteProofBareRefusedStreamOnAConnection: HTTP/2's bare refusal of a
// stream ("stream error: stream ID 5; REFUSED_STREAM"), for an attempt
// net/http got a connection for, may end a series of resends net/http made
// on its own (with GetBody), the first of which the server reset with
// PROTOCOL_ERROR after it processed the write: it proves nothing, and a
// write to a host not known to deduplicate by key is not resent after it.
// Only net/http's refusal of a stream it could not resend ("cannot retry
// err [...]") proves the write unsent on a connection (see
// refusedUnresent). The base here reports a connection through the
// attempt's client trace, as net/http does, then fails with the error.
func TestWriteProofBareRefusedStreamOnAConnection(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		attempts int
	}{
		{"bare refusal", errors.New("stream error: stream ID 5; REFUSED_STREAM"), 1},
		{"refusal net/http could not resend", errors.New("http2: Transport: cannot retry err [stream error: stream ID 1; REFUSED_STREAM] after Request.Body was written; define Request.GetBody to avoid this error"), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connected := func(req *http.Request) {
				if tr := httptrace.ContextClientTrace(req.Context()); tr != nil {
					tr.GetConn("api.test:443")
					tr.GotConn(httptrace.GotConnInfo{})
				}
			}
			s := &rtScript{steps: []rtStep{{err: tc.err, before: connected}, {status: 201}}}
			tr := New(s, fastRetries, WithoutRateLimit(), WithoutBreaker())
			resp, err := tr.RoundTrip(newRequest(t, t.Context(), "POST", "https://api.test/v1/posts", strings.NewReader(`{"content":"hello"}`)))
			if err == nil {
				resp.Body.Close()
			}
			if s.numCalls() != tc.attempts {
				t.Errorf("%v after %d attempts, want %d", err, s.numCalls(), tc.attempts)
			}
		})
	}
}
