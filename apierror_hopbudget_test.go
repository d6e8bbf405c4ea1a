package resilient

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestAPIErrorEchoesOverHopsBounded: an error envelope's code and message,
// read whole up to the 64 KiB peek, were searched for each credential of
// the request answered and of the hops before it: after ten redirects to
// paths of sixteen bot tokens that the server wrote, a message that
// repeats them was copied once per token found, some 350 scans and
// megabytes on each error response, again on each retry. The credentials
// of the URLs the server wrote are now looked for within a budget; the
// caller's own, those of the first request, are all REDACTED. The work is
// counted in bytes allocated, not in time.
func TestAPIErrorEchoesOverHopsBounded(t *testing.T) {
	req, toks := redirectedBotChain(10, 16)
	var msg strings.Builder
	for msg.Len() < 60<<10 {
		msg.WriteString(strings.Join(toks, " ") + " ")
	}
	own := toks[:16] // the first request's, the caller's
	m := msg.String() + strings.Join(own, " ")
	body, _ := json.Marshal(map[string]any{"error": map[string]string{"code": "bad_path", "message": m}})
	tr := New(&rtScript{steps: []rtStep{{status: http.StatusBadRequest, body: string(body)}}}, WithMaxRetries(0))
	var resp *http.Response
	var err error
	if got := allocatedBy(func() { resp, err = tr.RoundTrip(req) }); got > uint64(60*len(m)) {
		t.Errorf("RoundTrip of a message of %d bytes over 10 hops allocated %d bytes, want %d at most", len(m), got, 60*len(m))
	}
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	defer resp.Body.Close()
	resp.Request = req
	e := ParseError(resp)
	if e == nil {
		t.Fatal("ParseError = nil")
	}
	for _, tok := range own {
		if strings.Contains(e.Message, tok) {
			t.Fatalf("APIError.Message keeps %q, a credential of the caller's request", tok)
		}
	}
}
