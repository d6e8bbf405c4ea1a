package resilienttest_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestPipeServerInSynctest runs a resilient client with default backoff
// against every kind of fault, slow answers longer than the attempt
// timeout and 429s asking for 20 seconds, inside a synctest bubble: minutes
// of fake time pass in an instant, no write is duplicated, and Close leaves
// no goroutine behind (synctest.Test would fail on one).
func TestPipeServerInSynctest(t *testing.T) {
	for _, d := range []resilienttest.Dialect{resilienttest.Aidelly, resilienttest.Altyaa, resilienttest.Postato} {
		t.Run(d.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := resilienttest.NewPipeServer(d, resilienttest.WithFaults(resilienttest.Faults{
					Seed:        11,
					ServerError: 0.1, RateLimit: 0.05, DropBefore: 0.05, DropAfter: 0.05,
					Slow: 0.05, Malformed: 0.02, HTML: 0.02, Huge: 0.01,
					SlowDelay:  time.Minute,
					RetryAfter: 20 * time.Second,
				}), resilienttest.WithLatency(50*time.Millisecond))
				defer srv.Close()
				// A third of the attempts fail on purpose, more than the
				// retry budget pays for: it is off, so every fault is retried.
				client := &http.Client{Transport: resilient.New(srv.Transport(), resilient.WithAttemptTimeout(10*time.Second),
					resilient.WithoutRetryBudget())}

				start := time.Now()
				const calls = 60
				ok := 0
				for i := range calls {
					body := fmt.Sprintf(`{"content":"post %d"}`, i)
					req, _ := http.NewRequest("POST", srv.URL+"/v1/posts", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					// The caller's key: its statement that the API dedupes
					// by it (this server does), so writes may be resent.
					req.Header.Set("Idempotency-Key", fmt.Sprintf("post-%d", i))
					resp, err := client.Do(req)
					if err != nil {
						t.Logf("call %d: %v", i, err)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusCreated {
						ok++
					} else {
						t.Logf("call %d: status %d", i, resp.StatusCode)
					}
				}
				st := srv.Stats()
				if st.Duplicates != 0 || st.Conflicts != 0 {
					t.Errorf("Duplicates, Conflicts = %d, %d; want 0, 0", st.Duplicates, st.Conflicts)
				}
				if ok < calls-2 || st.StoredWrites < ok {
					t.Errorf("%d of %d calls created, %d stored", ok, calls, st.StoredWrites)
				}
				if st.Injected == 0 || st.Dropped == 0 || st.RateLimited == 0 {
					t.Errorf("faults not exercised: %+v", st)
				}
				if elapsed := time.Since(start); elapsed < time.Minute {
					t.Errorf("fake time elapsed %v, want minutes of waits", elapsed)
				}
				t.Logf("fake time %v, stats %+v", time.Since(start), st)
			})
		})
	}
}

// TestPipeServerDialAfterClose proves that the Transport of a closed pipe
// server fails at once.
func TestPipeServerDialAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa)
		srv.Close()
		_, err := srv.Client().Get(srv.URL + "/v1/usage")
		var opErr *net.OpError
		if !errors.As(err, &opErr) || !strings.Contains(err.Error(), "resilienttest: server closed") {
			t.Fatalf("Get after Close: %v, want a dial error", err)
		}
	})
}

// TestQuotaPacedClient proves that a resilient client, pacing itself by the
// headers or waiting out the 429s' Retry-After, gets every call through a
// quota whose clock runs 60 times faster, in scaled time.
func TestQuotaPacedClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Aidelly, resilienttest.WithQuota(resilienttest.Quota{
			Limit: 10, Window: time.Minute, TimeScale: 60,
		}))
		defer srv.Close()
		client := &http.Client{Transport: resilient.New(srv.Transport())}
		start := time.Now()
		for i := range 30 {
			resp, err := client.Get(srv.URL + "/v1/usage")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("call %d: status %d", i, resp.StatusCode)
			}
		}
		// 30 calls at 10 a (scaled) second need at least 2 seconds.
		if elapsed := time.Since(start); elapsed < 2*time.Second || elapsed > 10*time.Second {
			t.Errorf("30 calls took %v of fake time, want 2s to 10s", elapsed)
		}
	})
}

// TestResilientOverHTTP2 runs a resilient client over a TLS pipe server:
// every attempt travels on HTTP/2 streams of one connection, the faults
// (a stream reset for a drop) are retried in fake time, and every read
// succeeds.
func TestResilientOverHTTP2(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Postato, resilienttest.WithTLS(), resilienttest.WithFaults(resilienttest.Faults{
			Seed: 3, ServerError: 0.15, RateLimit: 0.05, DropBefore: 0.05, DropAfter: 0.05, Slow: 0.05,
			SlowDelay: 2 * time.Second, RetryAfter: time.Second,
		}))
		defer srv.Close()
		client := &http.Client{Transport: resilient.New(srv.Transport())}
		for i := range 40 {
			resp, err := client.Get(srv.URL + "/v1/posts")
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
				t.Fatalf("call %d: %s %d, want HTTP/2.0 200", i, resp.Proto, resp.StatusCode)
			}
		}
		st := srv.Stats()
		if st.Injected == 0 || st.Requests <= 40 || st.Connections != 1 {
			t.Errorf("Injected, Requests, Connections = %d, %d, %d; want faults retried on one connection", st.Injected, st.Requests, st.Connections)
		}
	})
}
