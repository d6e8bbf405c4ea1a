package resilient

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// sharedHeaderBase returns a base RoundTripper that gives every redirect
// it returns one Header map, as a cache below the Transport that serves a
// redirect as shallow copies of the one it stored does.
func sharedHeaderBase() http.RoundTripper {
	var mu sync.Mutex
	var shared http.Header
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil || !followedRedirect(resp.StatusCode) {
			return resp, err
		}
		mu.Lock()
		defer mu.Unlock()
		if shared == nil {
			shared = resp.Header
		}
		resp.Header = shared
		return resp, nil
	})
}

// TestRedirectSharedHeaderCopyTakesNoOtherCallsKey: one request sent
// twice, answered 307s that share one Header map (a base that caches the
// redirect); the first is followed as it is, then a request is sent with
// a shallow copy of it as its Response. The copy's own hop was taken: its
// Header, which is the second call's too, does not tell it for the second
// call's, whose key it must not carry; the second call's hop, followed as
// it is, keeps it.
func TestRedirectSharedHeaderCopyTakesNoOtherCallsKey(t *testing.T) {
	srv, keys := hopKeysServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := New(sharedHeaderBase(), WithKeyHonoringHosts(host))
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/a", nil)
	var resps []*http.Response
	for range 2 {
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, resp)
	}
	if !sameHeader(resps[0].Header, resps[1].Header) {
		t.Fatal("the redirects do not share their Header")
	}
	followCopyOfTakenHop(t, tr, srv, keys, resps)
}
