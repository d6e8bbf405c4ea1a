package resilient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRedirectDroppedHopCopyTakesNoLaterCallsKey: one request sent
// maxHopsPerRequest+1 times, each answered a 307, the first one's hop
// dropped for the cap; the others are followed as they are, and the
// request is sent once more. The hop of a copy of the first response,
// followed then, does not take the later call's key for its own (it is
// the only hop its request holds, but not its own), and the later call's
// hop, followed as it is, still carries it.
func TestRedirectDroppedHopCopyTakesNoLaterCallsKey(t *testing.T) {
	srv, keys := hopKeysServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := New(nil, WithKeyHonoringHosts(host))
	defer tr.CloseIdleConnections()
	req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/a", nil)
	var resps []*http.Response
	for range maxHopsPerRequest + 2 {
		if len(resps) == maxHopsPerRequest+1 {
			for _, r := range resps[1:] {
				sendHop(t, tr, srv, r)
			}
		}
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, resp)
	}
	cp := *resps[0]
	sendHop(t, tr, srv, &cp)
	sendHop(t, tr, srv, resps[len(resps)-1])
	a, b := keys("/a"), keys("/b")
	if len(a) != maxHopsPerRequest+2 || len(b) != maxHopsPerRequest+2 {
		t.Fatalf("keys to /a %q, to /b %q", a, b)
	}
	if got := b[len(b)-2]; slices.Contains(a[1:], got) {
		t.Errorf("the copy of the first call's hop carried key %q, another call's of /a %q", got, a)
	}
	if got, want := b[len(b)-1], a[len(a)-1]; got != want {
		t.Errorf("the last call's hop carried key %q, want its own %q", got, want)
	}
	runtime.KeepAlive(resps)
}

// TestRedirectUnsureCopyGetsNoMoreBudget: a copy of a redirect that
// cannot be told from those of other sends of its request (its body
// wrapped, its header cloned; or its hop dropped for the cap) gets no more
// of the budget than its own call left: the least any of them left.
func TestRedirectUnsureCopyGetsNoMoreBudget(t *testing.T) {
	req := newRequest(t, context.Background(), http.MethodGet, "https://api.example.com/a", nil)
	redirect := func() *http.Response {
		return &http.Response{StatusCode: http.StatusFound, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{"Location": {"/b"}}, Request: req}
	}
	wrapped := func(r *http.Response) *http.Response {
		cp := *r
		cp.Body = struct{ io.ReadCloser }{r.Body}
		cp.Header = r.Header.Clone()
		return &cp
	}
	follow := func(r *redirectKeys, prev *http.Response) redirectHop {
		next := newRequest(t, context.Background(), http.MethodGet, "https://api.example.com/b", nil)
		next.Response = prev
		return r.take(next)
	}
	t.Run("concurrent", func(t *testing.T) {
		var r redirectKeys
		first, second := redirect(), redirect()
		r.keep(first, redirectHop{left: 5 * time.Second, budgeted: true})
		r.keep(second, redirectHop{left: 59 * time.Second, budgeted: true})
		if h := follow(&r, wrapped(first)); !h.budgeted || h.left > 5*time.Second {
			t.Errorf("the first call's copied hop has %v (budgeted %v), want at most the 5s its call left", h.left, h.budgeted)
		}
		if h := follow(&r, wrapped(second)); !h.budgeted || h.left > 59*time.Second {
			t.Errorf("the second call's copied hop has %v (budgeted %v), want at most the 59s its call left", h.left, h.budgeted)
		}
		runtime.KeepAlive(first)
		runtime.KeepAlive(second)
	})
	t.Run("dropped", func(t *testing.T) {
		var r redirectKeys
		var resps []*http.Response
		for i := range maxHopsPerRequest + 1 {
			resp := redirect()
			left := 59 * time.Second
			if i == 0 {
				left = time.Second
			}
			r.keep(resp, redirectHop{left: left, budgeted: true})
			resps = append(resps, resp)
		}
		for _, resp := range resps[1:] {
			follow(&r, resp)
		}
		if h := follow(&r, wrapped(resps[0])); !h.budgeted || h.left > time.Second {
			t.Errorf("the dropped hop's copy has %v (budgeted %v), want at most the 1s its call left", h.left, h.budgeted)
		}
		runtime.KeepAlive(resps)
	})
}

// TestRedirectCopyOfTakenHopTakesNoOtherCallsKey: one request sent twice,
// each answered a 307; the first redirect is followed as it is, and then a
// request is sent with a shallow copy of it as its Response (a hand-built
// follow-up, or a middleware's copy sent again). The copy's own hop was
// taken: it must not take the second call's key, the only hop its request
// still holds, and the second call's hop, followed as it is, keeps it.
func TestRedirectCopyOfTakenHopTakesNoOtherCallsKey(t *testing.T) {
	srv, keys := hopKeysServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := New(nil, WithKeyHonoringHosts(host))
	defer tr.CloseIdleConnections()
	req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/a", nil)
	var resps []*http.Response
	for range 2 {
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, resp)
	}
	followCopyOfTakenHop(t, tr, srv, keys, resps)
}

// followCopyOfTakenHop follows resps, two 307s answered to two sends of
// one POST to srv, as the copy-of-a-taken-hop tests do: the first as it
// is, then a shallow copy of it, then the second as it is. The copy must
// not carry the second call's key (its own hop was taken), and the second
// call's hop must keep it.
func followCopyOfTakenHop(t *testing.T, tr http.RoundTripper, srv *httptest.Server, keys func(string) []string, resps []*http.Response) {
	t.Helper()
	sendHop(t, tr, srv, resps[0])
	cp := *resps[0]
	sendHop(t, tr, srv, &cp)
	sendHop(t, tr, srv, resps[1])
	a, b := keys("/a"), keys("/b")
	if len(a) != 2 || len(b) != 3 {
		t.Fatalf("keys to /a %q, to /b %q", a, b)
	}
	if got := b[1]; got == a[1] {
		t.Errorf("the copy of the taken hop carried key %q, the second call's", got)
	}
	if got, want := b[2], a[1]; got != want {
		t.Errorf("the second call's hop carried key %q, want its own %q", got, want)
	}
	runtime.KeepAlive(resps)
}
