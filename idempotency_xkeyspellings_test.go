package resilient_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/resilienthttp/resilient"
)

// TestWriteRuleCallerXKeyUnderTwoSpellingsIsOneKey: with the default key
// header, a caller's key set under X-Idempotency-Key ("key-A", sent as set
// under that header alone, on the caller's word) beside another spelling
// of it set by hand ("x-idempotency-key: key-B", or empty) was sent as both fields:
// over HTTP/2 in the map's order, a new one at each attempt, so that a
// server reading the first field deduplicated the retry the Transport made
// on the caller's word by another key than the first attempt. Each attempt
// carries the call's key once, still under X-Idempotency-Key alone, and
// the caller's header is left as it was.
func TestWriteRuleCallerXKeyUnderTwoSpellingsIsOneKey(t *testing.T) {
	for _, other := range []string{"key-B", ""} {
		t.Run("other="+other, func(t *testing.T) { testXKeyUnderTwoSpellings(t, other) })
	}
}

func testXKeyUnderTwoSpellings(t *testing.T, other string) {
	url, base, seen := storedThenFailedServer(t)
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/posts", strings.NewReader(`{"text":"hi"}`))
	req.Header.Set("X-Idempotency-Key", "key-A")
	lower := "x-idempotency-key" // not canonical: set by hand, as another layer may
	req.Header[lower] = []string{other}
	before := req.Header.Clone()
	var reported []string // Attempt.IdempotencyKey of each attempt
	observe := resilient.WithObserver(func(a resilient.Attempt) { reported = append(reported, a.IdempotencyKey) })
	resp, err := resilient.New(base, resilient.WithBackoff(0, 0), observe).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusCreated {
		t.Fatalf("got %s %d, want HTTP/2 201 after one retry", resp.Proto, resp.StatusCode)
	}
	var def []string // the Idempotency-Key fields of all requests
	for i, h := range seen() {
		if keys := h.Values("X-Idempotency-Key"); !slices.Equal(keys, []string{"key-A"}) {
			t.Errorf("attempt %d carried the X-Idempotency-Key fields %q, want the call's key once, [key-A]", i+1, keys)
		}
		def = append(def, h.Values("Idempotency-Key")...)
	}
	if !slices.Equal(reported, []string{"key-A", "key-A"}) {
		t.Errorf("the attempts reported the keys %q, want the one sent, key-A, on each", reported)
	}
	if len(def) != 0 {
		t.Errorf("the attempts carried Idempotency-Key %q, want none: the caller's key goes under X-Idempotency-Key alone", def)
	}
	if len(req.Header) != len(before) || req.Header.Get("X-Idempotency-Key") != "key-A" || !slices.Equal(req.Header[lower], []string{other}) {
		t.Errorf("the caller's header is now %v, want it unchanged, %v", req.Header, before)
	}
}
