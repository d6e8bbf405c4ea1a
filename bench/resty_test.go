package bench

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// These tests check that the resty peer is configured as README.md says,
// and record what resty v2 does where the peers differ: which answers it
// retries, Retry-After, writes, and bodies that cannot be read twice.

// TestRestyRetries checks the retry condition: 1 + 5 attempts for a 503, a
// 429 and a connection closed without an answer (resty's default, kept by
// restyRetryable's err != nil), one for a 501 and a 200.
func TestRestyRetries(t *testing.T) {
	hangUp := func(w http.ResponseWriter, _ *http.Request) {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, code, unavailableBody) }
	}
	for _, tc := range []struct {
		name     string
		h        http.HandlerFunc
		attempts int64
	}{
		{"503", outageHandler, 1 + maxRetries},
		{"429", status(http.StatusTooManyRequests), 1 + maxRetries},
		{"hang-up", hangUp, 1 + maxRetries},
		{"501", status(http.StatusNotImplemented), 1},
		{"200", okHandler, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(tc.h)
			defer srv.Close()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			call(restyClient(tr, noWaits), http.MethodGet, srv.URL+apiPath, nil, "1")
			if got := srv.attempts.Load(); got != tc.attempts {
				t.Errorf("attempts = %d, want %d", got, tc.attempts)
			}
		})
	}
}

// retryAfterStub answers 503 with Retry-After: 60 to the first attempt and
// 200 to the others, and records when each attempt came.
type retryAfterStub struct {
	mu    sync.Mutex
	times []time.Time
}

func (s *retryAfterStub) RoundTrip(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.times = append(s.times, time.Now())
	first := len(s.times) == 1
	s.mu.Unlock()
	resp := &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: &stubBody{data: okBody}, ContentLength: int64(len(okBody)), Request: req,
	}
	if first {
		resp.StatusCode = http.StatusServiceUnavailable
		resp.Header.Set("Retry-After", "60")
		resp.Body, resp.ContentLength = &stubBody{data: unavailableBody}, int64(len(unavailableBody))
	}
	return resp, nil
}

// TestRestyIgnoresRetryAfter records that resty v2 does not honor
// Retry-After by default: after a 503 asking for 60 seconds it retries after
// its own backoff (at most the cap, 10ms here). resty reads the header only
// through a SetRetryAfter callback of the user's, and even then waits at
// most RetryMaxWaitTime. go-retryablehttp and failsafe-go honor it by
// default, heimdall does not.
func TestRestyIgnoresRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stub := &retryAfterStub{}
		mustOK(t, call(restyClient(stub, scaledWaits), http.MethodGet, "http://api.example.test"+apiPath, nil, "1"))
		if len(stub.times) != 2 {
			t.Fatalf("attempts = %d, want 2", len(stub.times))
		}
		if wait := stub.times[1].Sub(stub.times[0]); wait < scaledWaits.base || wait > scaledWaits.max {
			t.Errorf("resty waited %v after Retry-After: 60, want its own backoff, %v to %v", wait, scaledWaits.base, scaledWaits.max)
		}
	})
}

// TestRestyResendsPosts records that resty v2 retries a POST like a GET: a
// write whose answer was lost after the server stored it is sent again,
// without an idempotency key, and stored twice (workload 6 counts these).
func TestRestyResendsPosts(t *testing.T) {
	store := newWriteStore(1) // drops the answer to every first attempt
	srv := newServer(store.ServeHTTP)
	defer srv.Close()
	tr := newTransport()
	defer tr.CloseIdleConnections()
	mustOK(t, call(restyClient(tr, noWaits), http.MethodPost, srv.URL+"/v1/posts", writeBody, "1"))
	if got := srv.attempts.Load(); got != 2 {
		t.Errorf("attempts = %d, want 2", got)
	}
	if got := store.duplicates(); got != 1 {
		t.Errorf("duplicates = %d, want 1", got)
	}
}

// TestRestyResendsDrainedReader records what resty v2 does when it retries
// a body given as an io.Reader (one without GetBody, as in workload 7): it
// reads the reader all into memory for net/http's GetBody (workload 7's
// 2.2 MB per call), but its own retry builds the request again from the
// reader, drained: the server gets the whole body, then an empty one, and
// answers the empty one 200. (The other peers send their copy whole again;
// ours sends its copy whole again, or does not resend.)
func TestRestyResendsDrainedReader(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	srv := newServer(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		mu.Lock()
		sizes = append(sizes, int(n))
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			outageHandler(w, r)
			return
		}
		okHandler(w, r)
	})
	defer srv.Close()
	tr := newTransport()
	defer tr.CloseIdleConnections()
	data := bytes.Repeat([]byte("x"), 4096)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/files", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Body = io.NopCloser(bytes.NewReader(data))
	req.ContentLength = int64(len(data))
	req.Header.Set(callHeader, "1")
	resp, err := restyClient(tr, noWaits)(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := []int{len(data), 0}
	if resp.StatusCode != http.StatusOK || len(sizes) != len(want) || sizes[0] != want[0] || sizes[1] != want[1] {
		t.Errorf("status %d, bodies of %v bytes; want 200 after %v (resty resends a drained reader)", resp.StatusCode, sizes, want)
	}
}

// TestRestyStreamModeLosesConnections records why the resty peer reads
// answers resty's default way rather than streaming them: with
// SetDoNotParseResponse(true), resty leaves the body of an answer it retries
// past unread and open, so that each retried call costs a connection (as
// failsafe-go and heimdall do in workload 3), where its default mode keeps
// it.
func TestRestyStreamModeLosesConnections(t *testing.T) {
	const calls = 20
	for _, tc := range []struct {
		name     string
		stream   bool
		min, max int64
	}{
		{"default", false, 1, 2},
		{"SetDoNotParseResponse", true, calls, calls + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(oneRetryHandler())
			defer srv.Close()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			c := newResty(tr, noWaits).SetDoNotParseResponse(tc.stream)
			for i := range calls {
				resp, err := c.R().SetHeader(callHeader, strconv.Itoa(i)).Get(srv.URL + apiPath)
				if err != nil {
					t.Fatal(err)
				}
				if tc.stream {
					io.Copy(io.Discard, resp.RawBody())
					resp.RawBody().Close()
				}
				if resp.StatusCode() != http.StatusOK {
					t.Fatalf("status %d, want 200", resp.StatusCode())
				}
			}
			if got := srv.conns.Load(); got < tc.min || got > tc.max {
				t.Errorf("connections = %d, want %d to %d", got, tc.min, tc.max)
			}
		})
	}
}
