package resilient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRedirectHopKeepsLostMark checks that the request http.Client follows
// a 307 or 308 of a keyed write with, the same write sent on under the
// same key on its host, knows what the call before it knew: an earlier
// attempt got no answer after it may have been sent, so the server may
// still hold the key. A 409 to that key on the hop is the key still held
// by the attempt lost, retried with the key as it is on the call's own
// host (see keyHeld), not the caller's answer. Before, the hop started
// without the mark and returned the 409 at once: the write, processed,
// was reported to the caller as a conflict. Through a key the Transport
// drew, the caller's key header and WithIdempotencyKey; a redirect to
// another host, where the key does not follow, carries no mark.
func TestRedirectHopKeepsLostMark(t *testing.T) {
	const host = "api.example"
	tests := []struct {
		name     string
		status   int
		header   string // the caller's key header; "" for none
		ctxKey   string // WithIdempotencyKey; "" for none
		location string
		wantCode int
		wantHits int // requests to the target
	}{
		{"drawn key 307", http.StatusTemporaryRedirect, "", "", "/target", http.StatusCreated, 2},
		{"drawn key 308", http.StatusPermanentRedirect, "", "", "/target", http.StatusCreated, 2},
		{"caller's header", http.StatusTemporaryRedirect, "order-1", "", "/target", http.StatusCreated, 2},
		{"context key", http.StatusTemporaryRedirect, "", "order-1", "/target", http.StatusCreated, 2},
		{"another host", http.StatusTemporaryRedirect, "", "", "http://other.example/target", http.StatusConflict, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				creates, targetHits := 0, 0
				var keys []string
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					io.Copy(io.Discard, r.Body)
					r.Body.Close()
					mu.Lock()
					defer mu.Unlock()
					keys = append(keys, r.Header.Get("Idempotency-Key"))
					resp := &http.Response{StatusCode: http.StatusCreated, Header: http.Header{}, Body: http.NoBody, Request: r}
					switch r.URL.Path {
					case "/create":
						creates++
						if creates == 1 {
							return nil, errReset // processed, its answer lost: the key held
						}
						resp.StatusCode = tc.status
						resp.Header.Set("Location", tc.location)
					case "/target":
						targetHits++
						if targetHits == 1 {
							resp.StatusCode = http.StatusConflict // the key still held
						} else {
							resp.Header.Set("Idempotent-Replayed", "true")
						}
					}
					return resp, nil
				})
				tr := New(base, WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }),
					WithKeyHonoringHosts(host, "other.example"))
				ctx := context.Background()
				if tc.ctxKey != "" {
					ctx = WithIdempotencyKey(ctx, tc.ctxKey)
				}
				var rep Report
				req := newRequest(t, WithReport(ctx, &rep), http.MethodPost, "http://"+host+"/create", strings.NewReader(`{"amount":1}`))
				if tc.header != "" {
					req.Header.Set("Idempotency-Key", tc.header)
				}
				resp, err := (&http.Client{Transport: tr}).Do(req)
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				resp.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				if resp.StatusCode != tc.wantCode || targetHits != tc.wantHits {
					t.Errorf("status = %d after %d requests to the target, want %d after %d (keys sent %q)", resp.StatusCode, targetHits, tc.wantCode, tc.wantHits, keys)
				}
				if tc.location == "/target" {
					for _, k := range keys[1:] {
						if k != keys[0] {
							t.Errorf("keys sent %q, want one key for the write", keys)
						}
					}
				}
				if want := 2 + tc.wantHits; rep.Redirects != 1 || rep.Attempts != want {
					t.Errorf("Report = %+v, want 1 redirect, %d attempts", rep, want)
				}
				synctest.Wait()
			})
		})
	}
}

// TestRedirectHopDeclinedAfterLostAttempt checks that the request
// http.Client follows a 307 of a keyed write with, after an attempt of
// the write that may have been processed (it got no answer once it may
// have been sent, or a 500), is not handed back to the http.Transport
// above when its base declines it with http.ErrSkipAltProtocol (an
// alternate protocol's RoundTripper without a connection): that Transport
// would send it itself, without the key the Transport drew for the write,
// a write the host cannot tell from the first. It fails instead, as the
// call before it would have. Before, the hop, not knowing the attempt
// lost, returned the sentinel bare, and the write reached the host
// keyless.
func TestRedirectHopDeclinedAfterLostAttempt(t *testing.T) {
	for _, first := range []string{"lost", "500"} {
		t.Run(first, func(t *testing.T) {
			var mu sync.Mutex
			var targetKeys []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				mu.Lock()
				targetKeys = append(targetKeys, r.Header.Get("Idempotency-Key"))
				mu.Unlock()
				w.WriteHeader(http.StatusCreated)
			}))
			defer srv.Close()
			creates := 0
			alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.URL.Path != "/create" {
					return nil, http.ErrSkipAltProtocol // no connection: its body untouched
				}
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
				resp := &http.Response{StatusCode: http.StatusTemporaryRedirect, Header: http.Header{"Location": {"/target"}}, Body: http.NoBody, Request: r}
				if creates++; creates == 1 {
					if first == "lost" {
						return nil, errReset // processed, its answer lost: the key held
					}
					resp.StatusCode = http.StatusInternalServerError // processed, or not
				}
				return resp, nil
			})
			outer := &http.Transport{}
			defer outer.CloseIdleConnections()
			outer.RegisterProtocol("http", New(alt, WithBackoff(time.Millisecond, time.Millisecond),
				WithKeyHonoringHosts(strings.TrimPrefix(srv.URL, "http://"))))
			req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/create", strings.NewReader(`{"amount":1}`))
			resp, err := (&http.Client{Transport: outer}).Do(req)
			if err == nil {
				resp.Body.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			for _, k := range targetKeys {
				if k == "" {
					t.Errorf("the write reached the target without its key (err = %v)", err)
				}
			}
		})
	}
}
