package resilient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"
)

// hopKeysServer is a host that deduplicates writes by key, whose /a
// answers a 307 to /b and whose /b creates. It returns the server and the
// keys sent to a path, in order.
func hopKeysServer(t *testing.T) (*httptest.Server, func(path string) []string) {
	var mu sync.Mutex
	keys := map[string][]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		keys[r.URL.Path] = append(keys[r.URL.Path], r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		if r.URL.Path == "/a" {
			http.Redirect(w, r, "/b", http.StatusTemporaryRedirect)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	return srv, func(path string) []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(keys[path])
	}
}

// sendHop sends a POST to /b of srv through tr as the hop that follows
// prev, and closes its response.
func sendHop(t *testing.T, tr http.RoundTripper, srv *httptest.Server, prev *http.Response) {
	t.Helper()
	req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/b", nil)
	req.Response = prev
	resp, err := roundTrip(t, tr, req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestRedirectHopResentTakesNoOtherCallsKey: the request of a hop the
// caller sends again (a call of its own, see
// TestRedirectHopReusedHasItsOwnBudget), whose first request has meanwhile
// been answered another 307 not yet followed, draws a key of its own: it
// does not take the other call's key (a write of the other call's, sent
// to another path under its key), and the other call's hop, followed
// later, still carries it; so when the hop followed a middleware's copy
// of the redirect (Chain).
func TestRedirectHopResentTakesNoOtherCallsKey(t *testing.T) {
	for _, copied := range []bool{false, true} {
		name := "response"
		if copied {
			name = "copy"
		}
		t.Run(name, func(t *testing.T) {
			srv, keys := hopKeysServer(t)
			host := strings.TrimPrefix(srv.URL, "http://")
			tr := New(nil, WithKeyHonoringHosts(host))
			defer tr.CloseIdleConnections()
			var rt http.RoundTripper = tr
			if copied {
				rt = Chain(tr, copyResponses(false, false))
			}
			cl := &http.Client{Transport: rt}
			held := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/a", nil)
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			hop := resp.Request
			if hop.Response == nil {
				t.Fatal("the hop's request has no Response")
			}
			other, err := held.Do(req) // the same request sent again: a 307 held
			if err != nil {
				t.Fatal(err)
			}
			other.Body.Close()
			resp, err = roundTrip(t, tr, hop) // the hop sent again
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			sendHop(t, tr, srv, other) // the other call's hop
			a, b := keys("/a"), keys("/b")
			if len(a) != 2 || len(b) != 3 {
				t.Fatalf("keys to /a %q, to /b %q; want 2 and 3", a, b)
			}
			if slices.Contains(a, b[1]) {
				t.Errorf("the hop sent again carried key %q of /a %q, want one of its own", b[1], a)
			}
			if b[2] != a[1] {
				t.Errorf("the other call's hop carried key %q, want its own %q", b[2], a[1])
			}
		})
	}
}

// TestRedirectDirectHopKeepsKeyPastUnsureCopy: one request sent twice,
// each answered a 307; a middleware copies the one answered first (its
// body wrapped, its header cloned: nothing tells whose it is) and not the
// other. The hop that follows the response itself, which is sure, carries
// its call's key, whatever the copy took; the copy carries no key of /a.
func TestRedirectDirectHopKeepsKeyPastUnsureCopy(t *testing.T) {
	srv, keys := hopKeysServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := New(nil, WithKeyHonoringHosts(host))
	defer tr.CloseIdleConnections()
	req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/a", nil)
	first, err := roundTrip(t, tr, req)
	if err != nil {
		t.Fatal(err)
	}
	second, err := roundTrip(t, tr, req)
	if err != nil {
		t.Fatal(err)
	}
	cp := *first
	cp.Body = struct{ io.ReadCloser }{first.Body}
	cp.Header = first.Header.Clone()
	sendHop(t, tr, srv, &cp)
	sendHop(t, tr, srv, second)
	a, b := keys("/a"), keys("/b")
	if len(a) != 2 || len(b) != 2 {
		t.Fatalf("keys to /a %q, to /b %q; want 2 each", a, b)
	}
	if slices.Contains(a, b[0]) {
		t.Errorf("the copy's hop carried key %q of /a %q, want one of its own", b[0], a)
	}
	if b[1] != a[1] {
		t.Errorf("the response's own hop carried key %q, want its call's %q", b[1], a[1])
	}
	runtime.KeepAlive(first)
}

// TestRedirectEvictedHopCopyTakesNoOtherCallsKey: one request sent
// maxHopsPerRequest+1 times at once, each answered a 307 that a middleware
// copies (sharing its Header); the hop of the copy of the first, dropped
// from those its request holds, does not take the key of the one left
// after the others were followed.
func TestRedirectEvictedHopCopyTakesNoOtherCallsKey(t *testing.T) {
	srv, keys := hopKeysServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := New(nil, WithKeyHonoringHosts(host))
	defer tr.CloseIdleConnections()
	req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/a", nil)
	var copies []*http.Response
	for range maxHopsPerRequest + 1 {
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatal(err)
		}
		cp := *resp
		copies = append(copies, &cp)
	}
	for _, cp := range copies[1:maxHopsPerRequest] {
		sendHop(t, tr, srv, cp)
	}
	sendHop(t, tr, srv, copies[0])
	a, b := keys("/a"), keys("/b")
	if last := b[len(b)-1]; slices.Contains(a, last) && last != a[0] {
		t.Errorf("the first call's hop carried key %q, another call's of /a %q", last, a)
	}
}

// redirectBase answers a 302 to everything; a weak pointer to it tells
// whether the Transport it is the base of is alive.
type redirectBase struct{ calls int }

func (b *redirectBase) RoundTrip(r *http.Request) (*http.Response, error) {
	b.calls++
	h := http.Header{"Location": {"/b"}}
	return &http.Response{StatusCode: http.StatusFound, Body: http.NoBody, Request: r, Header: h}, nil
}

// TestRedirectRequestHoldsNoTransport: a request the caller keeps (a
// poller's) sent through Transports made for one call each, and answered
// with a redirect, does not keep those Transports alive.
func TestRedirectRequestHoldsNoTransport(t *testing.T) {
	const n = 20
	req := newRequest(t, context.Background(), http.MethodGet, "https://api.example.com/a", nil)
	var bases [n]weak.Pointer[redirectBase]
	for i := range bases {
		b := new(redirectBase)
		bases[i] = weak.Make(b)
		resp, err := roundTrip(t, New(b, WithMaxElapsed(time.Minute)), req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	alive := n
	for range 10 {
		runtime.GC()
		alive = 0
		for _, p := range bases {
			if p.Value() != nil {
				alive++
			}
		}
		if alive <= 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if alive > 1 {
		t.Errorf("%d of %d Transports are alive after GC while the request is, want at most 1", alive, n)
	}
	runtime.KeepAlive(req)
}

// emptyBody is a response body of no size.
type emptyBody struct{}

func (*emptyBody) Read([]byte) (int, error) { return 0, io.EOF }
func (*emptyBody) Close() error             { return nil }

// TestRedirectCopyNotToldByEmptyBody: two bodies of a type of no size,
// which Go may allocate at one address, do not tell one response from
// another (see takeCopy): the copy of one would take the other's hop, and
// its key, for its own.
func TestRedirectCopyNotToldByEmptyBody(t *testing.T) {
	a, b := io.ReadCloser(new(emptyBody)), io.ReadCloser(new(emptyBody))
	if sameBody(a, b) {
		t.Errorf("sameBody of two bodies of no size = true, want false")
	}
	if sameBody(http.NoBody, http.NoBody) {
		t.Errorf("sameBody(http.NoBody, http.NoBody) = true, want false")
	}
	if h := (http.Header{}); sameHeader(h, nil) || sameHeader(nil, nil) || !sameHeader(h, h) {
		t.Errorf("sameHeader: a nil Header told a response, or a Header not itself")
	}
}
