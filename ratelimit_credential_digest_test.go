package resilient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// digestAuth returns an HTTP Digest Authorization value (RFC 7616) of user
// in realm for a request of uri, its nc-th with the nonce: a client
// computes one anew for each request, its uri, counter, client nonce and
// response changing each time.
func digestAuth(user, realm, uri string, nc int) string {
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="%s", `+
		`algorithm=MD5, qop=auth, nc=%08x, cnonce="0a4f113b%d", response="6629fae49393a05397450978507c4e%02x", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
		user, realm, uri, nc, nc, nc)
}

// TestCredentialOfDigest: an HTTP Digest Authorization value (MongoDB
// Atlas's Admin API, many devices' APIs) is made anew for each request
// (its uri, nc, cnonce and response change), so that, fingerprinted whole,
// one user's requests got a partition each, and a 429's pause held none
// of them; two users whose names were as long shared one. Its username
// names the credential.
func TestCredentialOfDigest(t *testing.T) {
	fp := func(v string) uint64 {
		return credentialOf(&http.Request{URL: &url.URL{Scheme: "https", Host: "cloud.mongodb.test", Path: "/api/atlas/v2/groups"}, Header: http.Header{"Authorization": {v}}})
	}
	a := fp(digestAuth("pubkey1", "MMS Public API", "/api/atlas/v2/groups", 1))
	for _, v := range []string{
		digestAuth("pubkey1", "MMS Public API", "/api/atlas/v2/groups/1/clusters", 2),
		digestAuth("pubkey1", "MMS Public API", "/api/atlas/v2/groups?itemsPerPage=5", 3),
		"digest " + digestAuth("pubkey1", "MMS Public API", "/x", 4)[len("Digest "):], // the scheme in any case
	} {
		if got := fp(v); got != a {
			t.Errorf("credentialOf(%q) = %x, want %x: one user, one credential", v, got, a)
		}
	}
	if got := fp(digestAuth("pubkey2", "MMS Public API", "/api/atlas/v2/groups", 1)); got == a || got == 0 {
		t.Errorf("another user: %x, want a credential of its own (not %x)", got, a)
	}
	// Read on every attempt once the host announced a quota: nothing
	// allocated.
	req := &http.Request{URL: &url.URL{Scheme: "https", Host: "cloud.mongodb.test"}, Header: http.Header{"Authorization": {digestAuth("pubkey1", "MMS Public API", "/", 1)}}}
	if n := testing.AllocsPerRun(100, func() { _ = credentialOf(req) }); n != 0 {
		t.Errorf("credentialOf(Digest …) allocates %v times, want 0", n)
	}
	// A Digest value without a username is taken whole.
	for _, v := range []string{`Digest realm="x", nonce="n"`, `Digest username=""`} {
		if got := fp(v); got != fingerprint(v) {
			t.Errorf("credentialOf(%q) = %x, want the whole value's fingerprint %x", v, got, fingerprint(v))
		}
	}
}

// TestDigestUsersPauseHoldsTheirCalls: a 429 answered to a Digest user
// pauses that user's next calls, whose Authorization values all differ,
// as it does those of a user with a bearer token. Each call had a
// partition of its own, which no pause held: every call of the user went
// to the server during the pause it had been told of.
func TestDigestUsersPauseHoldsTheirCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			calls.Add(1)
			return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"120"}}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt, WithMaxRetries(0))
		for i := range 3 {
			req := newRequest(t, context.Background(), http.MethodGet, "https://cloud.mongodb.test/api/atlas/v2/groups", nil)
			req.Header.Set("Authorization", digestAuth("pubkey1", "MMS Public API", req.URL.RequestURI(), i+1))
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			if i > 0 && !errors.Is(err, ErrRateLimited) {
				t.Errorf("call %d, during the 2-minute pause of the user's 429: %v, want ErrRateLimited", i+1, err)
			}
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("the server got %d calls, want 1: the user's calls after its 429 wait for the pause", n)
		}
	})
}
