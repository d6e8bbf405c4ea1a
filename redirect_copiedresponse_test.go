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
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"weak"
)

// copyResponses is a middleware above the Transport that returns a shallow
// copy of each response, as a logging or header-rewriting one does; with
// wrap, the copy's body is wrapped and its header cloned too (it shares
// nothing but its Request with the response), as one that counts the
// bytes read and rewrites headers does; with collect, the response copied is garbage, and collected, before
// http.Client sees the copy.
func copyResponses(wrap, collect bool) Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(req)
			if err != nil {
				return nil, err
			}
			r2 := *resp
			if wrap {
				r2.Body = struct{ io.ReadCloser }{resp.Body}
				r2.Header = resp.Header.Clone()
			}
			if collect {
				resp = nil
				runtime.GC()
			}
			return &r2, nil
		})
	}
}

// TestRedirectCopiedResponseSharesTheBudget: the budget left by a call
// whose redirect a middleware above the Transport copied (Chain) still
// bounds the hop http.Client follows it with: the server of
// TestRedirectHopsShareTheBudget gets 2 requests to /b (the 12 s left of
// 60 s), not 10 (a budget of its own), whatever the copy keeps of the
// response (its body or not) and whether the response copied is collected
// before the hop.
func TestRedirectCopiedResponseSharesTheBudget(t *testing.T) {
	const maxElapsed, attemptTimeout = 60 * time.Second, 10 * time.Second
	for _, tc := range []struct {
		name          string
		method        string
		status        int
		wrap, collect bool
	}{
		{"GET 302", http.MethodGet, http.StatusFound, false, false},
		{"keyed POST 307", http.MethodPost, http.StatusTemporaryRedirect, false, false},
		{"GET 302 wrapped", http.MethodGet, http.StatusFound, true, false},
		{"GET 302 collected", http.MethodGet, http.StatusFound, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hitsA, hitsB atomic.Int32
				var failing atomic.Bool
				failing.Store(true)
				srv := budgetRedirectServer(t, 8, tc.status, &hitsA, &hitsB, &failing)
				defer srv.Close()
				host := strings.TrimPrefix(srv.URL, "http://")
				tr := New(srv.Transport(), WithMaxElapsed(maxElapsed), WithAttemptTimeout(attemptTimeout), WithMaxRetries(100),
					WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }),
					WithoutBreaker(), WithoutRetryBudget(), WithKeyHonoringHosts(host))
				cl := &http.Client{Transport: Chain(tr, copyResponses(tc.wrap, tc.collect))}
				req := newRequest(t, context.Background(), tc.method, srv.URL+"/a", strings.NewReader(`{"n":1}`))
				resp, err := cl.Do(req)
				if err != nil {
					t.Fatalf("err = %v, want the last 503", err)
				}
				resp.Body.Close()
				if got, want := hitsB.Load(), int32(2); got != want {
					t.Errorf("requests to /b = %v, want %v (the 12 s left of the budget)", got, want)
				}
				synctest.Wait()
			})
		})
	}
}

// TestRedirectCopiedResponseKeepsDrawnKey: a write the Transport keyed
// itself keeps its key through a 307 on its host when a middleware above
// the Transport copies the redirect (see TestRedirectKeepsDrawnKey): the
// host that deduplicates by key creates it once, not once more under a
// fresh key.
func TestRedirectCopiedResponseKeepsDrawnKey(t *testing.T) {
	for _, collect := range []bool{false, true} {
		name := "held"
		if collect {
			name = "collected"
		}
		t.Run(name, func(t *testing.T) {
			srv, creates := keyedCreateServer(t)
			host := strings.TrimPrefix(srv.URL, "http://")
			tr := New(nil, WithBackoff(time.Millisecond, time.Millisecond), WithKeyHonoringHosts(host))
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: Chain(tr, copyResponses(false, collect))}
			req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/create", strings.NewReader(`{"amount":1}`))
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := creates(); len(got) != 1 {
				t.Errorf("one write created %d times, under keys %q", len(got), got)
			}
		})
	}
}

// TestRedirectCopiedResponseSentConcurrently: one request sent twice at
// once (a POST with no body, which may be), each answered with a 307 on
// its host that a middleware above the Transport copies once both calls
// returned it: each hop carries the key of the call it follows, one key
// each, not the other call's, nor a fresh one (the 307s have no body: the
// copies are told by their Header). With the copy's body wrapped and its
// header cloned, which leaves nothing to tell the calls apart by, neither
// hop carries a key of /a, which might be the other call's.
func TestRedirectCopiedResponseSentConcurrently(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		name := "copy"
		if wrap {
			name = "wrapped"
		}
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var keysA, keysB []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				mu.Lock()
				defer mu.Unlock()
				switch r.URL.Path {
				case "/a":
					keysA = append(keysA, r.Header.Get("Idempotency-Key"))
					http.Redirect(w, r, "/b", http.StatusTemporaryRedirect)
				case "/b":
					keysB = append(keysB, r.Header.Get("Idempotency-Key"))
					w.WriteHeader(http.StatusCreated)
				}
			}))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			tr := New(nil, WithKeyHonoringHosts(host))
			defer tr.CloseIdleConnections()
			var arrived sync.WaitGroup
			arrived.Add(2)
			barrier := func(next http.RoundTripper) http.RoundTripper {
				return roundTripFunc(func(req *http.Request) (*http.Response, error) {
					resp, err := next.RoundTrip(req)
					if req.Response == nil { // the first hops return together
						arrived.Done()
						arrived.Wait()
					}
					return resp, err
				})
			}
			cl := &http.Client{Transport: Chain(tr, copyResponses(wrap, false), barrier)}
			req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/a", nil)
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					resp, err := cl.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
				})
			}
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			if len(keysA) != 2 || len(keysB) != 2 || keysA[0] == keysA[1] || keysB[0] == keysB[1] {
				t.Fatalf("keys to /a %q, to /b %q; want two of each, apart", keysA, keysB)
			}
			slices.Sort(keysA)
			slices.Sort(keysB)
			carried := 0
			for _, k := range keysB {
				if slices.Contains(keysA, k) {
					carried++
				}
			}
			if !wrap && !slices.Equal(keysA, keysB) {
				t.Errorf("keys to /b %q, want those to /a %q, one each", keysB, keysA)
			}
			if wrap && carried != 0 {
				t.Errorf("keys to /b %q, to /a %q: %d carried, want none (no telling whose)", keysB, keysA, carried)
			}
		})
	}
}

// TestRedirectCopiedResponseHeldPerRequest: a request sent again and again
// (a poller's) whose redirects are not followed holds no more than
// maxHopsPerRequest hops for a copy of its responses, however many it got.
func TestRedirectCopiedResponseHeldPerRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/b", http.StatusFound)
	}))
	defer srv.Close()
	tr := New(nil, WithMaxElapsed(time.Minute))
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req := newRequest(t, context.Background(), http.MethodGet, srv.URL+"/a", nil)
	for range 3 * maxHopsPerRequest {
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	tr.redirects.mu.Lock()
	n, held := len(tr.redirects.byRequest), len(tr.redirects.byRequest[weak.Make(req)].hops)
	tr.redirects.mu.Unlock()
	if n != 1 || held != maxHopsPerRequest {
		t.Errorf("%d requests hold %d hops, want 1 holding %d", n, held, maxHopsPerRequest)
	}
}
