package resilient

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgeLostCopyPanicRedactedWithItsRequest: the record of a losing
// copy's panic (TestHedgeLostCopyPanicLogged) has its text made safe as an
// error's is, with the request it quotes: the README and WithLogger
// promise so. An error of the base with these very words has the
// request's query removed where it runs past a '>' or a space (a filter
// written by hand, "?where=age>30&api_key=…"), the user information put
// in its host by hand REDACTED, and the request's credentials it echoes
// (its X-Api-Key) REDACTED (see redactRequestError); the panic's record
// was only made safe as a text of no request, and kept all three.
func TestHedgeLostCopyPanicRedactedWithItsRequest(t *testing.T) {
	const secret = "sk_live_p4nic-s3cret"
	for _, tc := range []struct {
		name, url string
		panicText func(req *http.Request) string
	}{
		{"query past a '>'", "https://api.test/v1/users?where=age>30&api_key=" + secret,
			func(req *http.Request) string { return "base: GET " + req.URL.String() + " on a canceled request" }},
		{"echoed key header", "https://api.test/v1/users",
			func(req *http.Request) string {
				return fmt.Sprintf("base: no stub for %s %s with key %s", req.Method, req.URL.Path, req.Header.Get("X-Api-Key"))
			}},
		{"user information in the host", "https://api.test/v1/users",
			func(req *http.Request) string {
				return "base: lookup " + req.URL.Host + " on a canceled request"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if calls.Add(1) == 1 {
						time.Sleep(100 * time.Millisecond) // slow, but it wins
						return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
					}
					<-req.Context().Done()
					panic(tc.panicText(req))
				})
				var logs syncBuffer
				tr := New(rt, WithHedging(Hedging{Delay: 20 * time.Millisecond}),
					WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
				req := newRequest(t, context.Background(), http.MethodGet, tc.url, nil)
				req.Header.Set("X-Api-Key", secret)
				if tc.name == "user information in the host" {
					req.URL.Host = "alice:" + secret + "@api.test"
				}
				resp, err := tr.RoundTrip(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("RoundTrip = %v, %v; want the first attempt's 200", resp, err)
				}
				resp.Body.Close()
				synctest.Wait() // the losing copy ends
				if calls.Load() != 2 {
					t.Fatalf("the base got %d requests, want 2 (the attempt and its copy)", calls.Load())
				}
				out := logs.String()
				if !strings.Contains(out, "a hedged copy panicked") {
					t.Fatalf("no record of the losing copy's panic:\n%s", out)
				}
				if strings.Contains(out, secret) {
					t.Errorf("the record of the copy's panic holds the request's secret:\n%s", out)
				}
			})
		})
	}
}
