package resilient

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWriteRuleNetHTTPResendRefusedIsNoProofHedged is
// TestWriteRuleNetHTTPResendRefusedIsNoProof with hedging configured: a
// keyed write that may be hedged is traced too, its attempt's as one that
// may not, whether or not a copy of it is ever sent.
func TestWriteRuleNetHTTPResendRefusedIsNoProofHedged(t *testing.T) {
	testNetHTTPResendRefused(t, WithHedging(Hedging{Delay: time.Hour}))
}

// hedgedResendServer deduplicates writes by key as dedupingServer does, in
// the order of a hedged run whose copies both reach it: the request it
// drops (processed, its connection closed unanswered, and net/http's
// resend of it refused at the dial) is the first POST under a key
// (dropFirst) or the second; the other one gets a 409 for the key held,
// once the dropped one was processed and its resend refused (refused is
// closed then), on a connection it then closes. A third POST under the key gets a 409 too (the write still
// in progress), and the next ones the stored answer, replayed.
type hedgedResendServer struct {
	mu        sync.Mutex
	processed int
	seen      map[string]int
	arrived   map[int]chan struct{} // closed as the n-th POST arrives
	refused   chan struct{}
	dropFirst bool
	t         *testing.T
	// gets counts the warm-up's GETs, which wait until warmN came
	// (warmed is closed then).
	gets, warmN int
	warmed      chan struct{}
}

func newHedgedResendServer(t *testing.T, dropFirst bool) *hedgedResendServer {
	return &hedgedResendServer{
		seen:      map[string]int{},
		arrived:   map[int]chan struct{}{1: make(chan struct{}), 2: make(chan struct{})},
		refused:   make(chan struct{}),
		dropFirst: dropFirst,
		t:         t,
	}
}

func (s *hedgedResendServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.processed
}

func (s *hedgedResendServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if r.Method != http.MethodPost {
		s.mu.Lock()
		if s.gets++; s.gets == s.warmN {
			close(s.warmed)
		}
		s.mu.Unlock()
		s.await(r, s.warmed)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	s.seen[key]++
	n := s.seen[key]
	if ch := s.arrived[n]; ch != nil {
		close(ch)
	}
	s.mu.Unlock()
	drop := n == 1 && s.dropFirst || n == 2 && !s.dropFirst
	switch {
	case drop:
		if n == 1 {
			// Processed while the copy is sent: it arrives first.
			if !s.await(r, s.arrived[2]) {
				return
			}
		}
		s.mu.Lock()
		s.processed++
		s.mu.Unlock()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			s.t.Error(err)
			return
		}
		conn.Close()
	case n <= 3:
		if n < 3 {
			// The key is held by the copy dropped, and this one is
			// answered once that copy's resend was refused, on a
			// connection then closed: idle, it could take the resend
			// before the refused dial's error.
			if !s.await(r, s.refused) {
				return
			}
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusConflict)
	default:
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(http.StatusCreated)
	}
}

// TestWriteRuleNetHTTPResendRefusedHedgedCopy: a hedged keyed write whose
// copy is sent. The copy that lands on a reused HTTP/1 connection is
// processed, its connection dropped, and net/http's own resend of it
// refused at the dial: its error reads as never sent, yet the write was
// processed. Whether that copy is the attempt itself (the copy sent then
// gets a 409 for the key it holds) or the copy sent after the hedging
// delay (the attempt itself gets the 409), the attempt was lost: the retry's
// 409 to the key held is retried until the stored answer comes, as
// without hedging.
func TestWriteRuleNetHTTPResendRefusedHedgedCopy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dropFirst bool // the attempt itself is dropped, not its copy
		warm      int  // idle connections made before the write
		// callerTrace has the caller's own ClientTrace on the request:
		// the copies' write traces are composed with it, and it sees
		// the connections of every copy.
		callerTrace bool
	}{
		// The attempt itself takes the one idle connection; the copy
		// dials a new one.
		{"attempt on the reused connection", true, 1, false},
		// Two idle connections: the attempt takes one, the copy the
		// other.
		{"copy on the reused connection", false, 2, false},
		{"copy on the reused connection, caller's trace", false, 2, true},
	} {
		for _, key := range []string{"post-1", ""} {
			name := tc.name + "/named host"
			opts := []Option{WithBackoff(0, 0), WithHedging(Hedging{Delay: 50 * time.Millisecond})}
			if key != "" {
				name = tc.name + "/caller's key"
			} else {
				opts = append(opts, WithKeyHonoringHosts("127.0.0.1"))
			}
			t.Run(name, func(t *testing.T) {
				s := newHedgedResendServer(t, tc.dropFirst)
				srv := httptest.NewServer(s)
				defer srv.Close()
				addr := srv.Listener.Addr().String()
				refusedTo := refusedAddr(t)
				var dials atomic.Int32
				base := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					if dials.Add(1) == 3 { // the dropped request's resend
						defer close(s.refused)
						return nil, refusedDial(network, refusedTo)
					}
					var d net.Dialer
					return d.DialContext(ctx, network, addr)
				}}
				defer base.CloseIdleConnections()
				s.warmIdle(base, srv.URL, tc.warm)
				rt := New(base, opts...)
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(`{"text":"hi"}`))
				if key != "" {
					req.Header.Set("Idempotency-Key", key)
				}
				var got atomic.Int32 // connections the caller's trace saw
				if tc.callerTrace {
					trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { got.Add(1) }}
					req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
				}
				resp, err := rt.RoundTrip(req)
				if err != nil {
					t.Fatalf("err %v (processed %d times); want the stored answer", err, s.count())
				}
				resp.Body.Close()
				if tc.callerTrace && got.Load() < 4 {
					// The attempt's, its copy's, and the two retries'.
					t.Errorf("the caller's trace saw %d connections; want 4 or more", got.Load())
				}
				if resp.StatusCode != http.StatusCreated || s.count() != 1 {
					t.Errorf("status %d, processed %d times; want the 409 to the key the lost copy holds retried: 201, processed once", resp.StatusCode, s.count())
				}
			})
		}
	}
}

// warmIdle leaves n idle connections to url in base: n GETs are sent at
// once, and the server answers none before all came, each on a connection
// of its own.
func (s *hedgedResendServer) warmIdle(base *http.Transport, url string, n int) {
	s.t.Helper()
	s.mu.Lock()
	s.warmN, s.warmed = n, make(chan struct{})
	s.mu.Unlock()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, url+"/warm", nil)
			resp, err := base.RoundTrip(req)
			if err != nil {
				s.t.Errorf("warm-up: %v", err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	wg.Wait()
}

// await waits for ch to be closed, as the request of r, for 10 s at most:
// it reports whether it was.
func (s *hedgedResendServer) await(r *http.Request, ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
		s.t.Errorf("%s %s: the other copy never came", r.Method, r.URL)
	}
	return false
}
