package resilient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitPerUserinfoCredential: a credential in the URL's user
// information (https://key:secret@api.test/, which net/http sends as Basic
// authentication, Stripe's and Mailgun's documented form) names its
// partition as an Authorization header does: tenant A's 429 does not hold
// tenant B's calls, which a plain client would send and the server answer.
func TestRateLimitPerUserinfoCredential(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hits := map[string]int{}
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			user := req.URL.User.Username()
			hits[user]++
			if user == "tenant-a" {
				return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"900"}}, Body: http.NoBody, Request: req}, nil
			}
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt)
		call := func(user *url.Userinfo) (int, error) {
			req := newRequest(t, context.Background(), http.MethodGet, "https://api.stripe.test/v1/charges", nil)
			req.URL.User = user
			resp, err := tr.RoundTrip(req)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		if code, err := call(url.UserPassword("tenant-a", "")); code != http.StatusTooManyRequests || err != nil {
			t.Fatalf("tenant A: %d, %v; want its 429 back (900 s is past WithMaxRetryAfter)", code, err)
		}
		start := time.Now()
		for _, u := range []*url.Userinfo{url.UserPassword("tenant-b", ""), url.User("tenant-c"), nil} {
			if code, err := call(u); code != http.StatusOK || err != nil {
				t.Errorf("%v after tenant A's 429: %d, %v; want 200", u, code, err)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("the other tenants waited %v, want no wait", d)
		}
		if _, err := call(url.UserPassword("tenant-a", "")); !errors.Is(err, ErrRateLimited) {
			t.Errorf("tenant A again: %v; want ErrRateLimited at once: its own pause holds", err)
		}
		if hits["tenant-a"] != 1 || hits["tenant-b"] != 1 {
			t.Errorf("server hits %v, want tenant A once, tenant B once", hits)
		}
	})
}

// TestCredentialOfUserinfo: the fingerprint of a URL's user information
// tells users and secrets apart, yields to a credential header as net/http
// does (it sends Basic authentication only without an Authorization
// header), and costs no allocation.
func TestCredentialOfUserinfo(t *testing.T) {
	of := func(u *url.Userinfo, h http.Header) uint64 {
		return credentialOf(&http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", User: u}, Header: h})
	}
	a, b := of(url.UserPassword("a", "s1"), nil), of(url.UserPassword("a", "s2"), nil)
	if a == 0 || b == 0 || a == b {
		t.Errorf("a:s1 %x, a:s2 %x: want two credentials", a, b)
	}
	if c, d := of(url.UserPassword("ab", ""), nil), of(url.UserPassword("a", "b"), nil); c == d {
		t.Errorf("ab: and a:b share %x, want two credentials", c)
	}
	h := http.Header{"Authorization": {"Bearer t"}}
	if got, want := of(url.UserPassword("a", "s1"), h), of(nil, h); got != want {
		t.Errorf("userinfo beside Authorization: %x, want the header's %x", got, want)
	}
	req := &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", User: url.UserPassword("key", "secret")}}
	if n := testing.AllocsPerRun(100, func() { _ = credentialOf(req) }); n != 0 {
		t.Errorf("credentialOf(userinfo) allocates %v times, want 0", n)
	}
}
