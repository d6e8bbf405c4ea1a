package resilient

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// dialsRefusedFrom returns a DialContext that dials addr, but refuses
// every dial from the n-th on (the server restarting), when refuseAll, or
// the n-th alone.
func dialsRefusedFrom(addr, refused string, n int32, refuseAll bool) func(context.Context, string, string) (net.Conn, error) {
	var dials atomic.Int32
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		if d := dials.Add(1); d == n || refuseAll && d > n {
			return nil, refusedDial(network, refused)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// dedupingServer is a server that deduplicates writes by key (the IETF
// Idempotency-Key draft's): the first POST under a key is processed, and
// its connection dropped unanswered (the process restarting); a POST
// under a key still being processed gets a 409 without a body, and one
// once it is done the stored answer, replayed.
type dedupingServer struct {
	mu        sync.Mutex
	processed int
	seen      map[string]int // POSTs by key
	t         *testing.T
	// throttleFirst has the first POST under a key refused with a 429
	// (Retry-After-Ms: 1), unprocessed, before the rest.
	throttleFirst bool
}

// count returns how many writes the server processed.
func (s *dedupingServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.processed
}

func (s *dedupingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if r.Method != http.MethodPost {
		return
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	s.seen[key]++
	n := s.seen[key]
	if s.throttleFirst {
		if n == 1 {
			s.mu.Unlock()
			w.Header().Set("Retry-After-Ms", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		n--
	}
	if n == 1 || key == "" {
		s.processed++
	}
	s.mu.Unlock()
	switch {
	case n == 1 || key == "":
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			s.t.Error(err)
			return
		}
		conn.Close()
	case n == 2:
		w.WriteHeader(http.StatusConflict) // the key is held by the first, in progress
	default:
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(http.StatusCreated)
	}
}

// TestWriteRuleNetHTTPResendRefusedIsNoProof: a keyed write to a host that
// deduplicates by key (named, or under the caller's key) carries its key
// where net/http's Transport sees it. Sent on a reused HTTP/1 connection,
// it is processed, and the connection dropped unanswered; net/http resends
// it on its own (a keyed request is replayable to it), and that dial is
// refused. The attempt's error reads as never sent, yet the write was
// processed: the attempt was lost, as one that got no answer is. The retry
// then gets the server's 409 for the key it still holds, which is retried
// with the same key (the README's 409 row) until the stored answer comes;
// and a call that ends on refused dials says that an earlier attempt may
// have been processed.
func TestWriteRuleNetHTTPResendRefusedIsNoProof(t *testing.T) {
	testNetHTTPResendRefused(t)
}

// testNetHTTPResendRefused runs TestWriteRuleNetHTTPResendRefusedIsNoProof's
// cases with extra given to New.
func testNetHTTPResendRefused(t *testing.T, extra ...Option) {
	for _, tc := range []struct {
		name string
		opts []Option
		key  string // the caller's, as a header
	}{
		{"caller's key", nil, "post-1"},
		{"named host", []Option{WithKeyHonoringHosts("127.0.0.1")}, ""},
	} {
		tc.opts = append(tc.opts, extra...)
		t.Run(tc.name, func(t *testing.T) {
			t.Run("409 to the key held", func(t *testing.T) {
				s := &dedupingServer{seen: map[string]int{}, t: t}
				srv := httptest.NewServer(s)
				defer srv.Close()
				base := &http.Transport{DialContext: dialsRefusedFrom(srv.Listener.Addr().String(), refusedAddr(t), 2, false)}
				defer base.CloseIdleConnections()
				rt := New(base, append([]Option{WithBackoff(0, 0)}, tc.opts...)...)
				resp, err := warmThenPostKeyed(t, rt, srv.URL, tc.key)
				if err != nil {
					t.Fatalf("err %v; want the stored answer", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated || s.count() != 1 {
					t.Errorf("status %d, processed %d times; want the 409 to the key the lost attempt holds retried: 201, processed once", resp.StatusCode, s.count())
				}
			})
			t.Run("refused to the end", func(t *testing.T) {
				s := &dedupingServer{seen: map[string]int{}, t: t}
				srv := httptest.NewServer(s)
				defer srv.Close()
				base := &http.Transport{DialContext: dialsRefusedFrom(srv.Listener.Addr().String(), refusedAddr(t), 2, true)}
				defer base.CloseIdleConnections()
				rt := New(base, append([]Option{WithBackoff(0, 0), WithMaxRetries(2)}, tc.opts...)...)
				resp, err := warmThenPostKeyed(t, rt, srv.URL, tc.key)
				if err == nil {
					resp.Body.Close()
					t.Fatalf("status %d; want the refused dial's error", resp.StatusCode)
				}
				if !lostBelow(err) || s.count() != 1 {
					t.Errorf("err %v (processed %d times); want one that says an earlier attempt may have been processed", err, s.count())
				}
			})
			t.Run("429 before it", func(t *testing.T) {
				// The 429 that refused the first attempt is no longer
				// the host's last word once the second may have been
				// processed: a retry the budget then refuses does not
				// return it.
				s := &dedupingServer{seen: map[string]int{}, t: t, throttleFirst: true}
				srv := httptest.NewServer(s)
				defer srv.Close()
				base := &http.Transport{DialContext: dialsRefusedFrom(srv.Listener.Addr().String(), refusedAddr(t), 2, true)}
				defer base.CloseIdleConnections()
				opts := []Option{WithBackoff(0, 0), WithRetryBudget(RetryBudget{Ratio: 0.001, Burst: 1.5, ThrottledCost: 0.6})}
				rt := New(base, append(opts, tc.opts...)...)
				resp, err := warmThenPostKeyed(t, rt, srv.URL, tc.key)
				if err == nil {
					resp.Body.Close()
					t.Fatalf("status %d (processed %d times); want an error that says the write may have been processed, not the 429", resp.StatusCode, s.count())
				}
				if !lostBelow(err) || s.count() != 1 {
					t.Errorf("err %v (processed %d times); want one that says an earlier attempt may have been processed", err, s.count())
				}
			})
		})
	}
}

// warmThenPostKeyed is warmThenPost with the caller's key (none for "")
// and the POST's response.
func warmThenPostKeyed(t *testing.T, rt http.RoundTripper, url, key string) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/warm", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodPost, url+"/v1/posts", strings.NewReader(`{"text":"hi"}`))
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return rt.RoundTrip(req)
}
