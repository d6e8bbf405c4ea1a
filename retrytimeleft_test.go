package resilient_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// throttleOnceLatency is how long the host of throttleOnceServer takes to answer
// each attempt.
const throttleOnceLatency = 20 * time.Millisecond

// throttleOnceServer answers its first request with a 429 and Retry-After: 2,
// and every later one as processed: a write is stored as it arrives, and
// its answer comes throttleOnceLatency later, whether or not the client still
// waits for it. Each answer takes throttleOnceLatency.
type throttleOnceServer struct {
	mu       sync.Mutex
	requests int
	stored   int
}

func (s *throttleOnceServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.requests++
	first := s.requests == 1
	if !first && r.Method == http.MethodPost {
		s.stored++
	}
	s.mu.Unlock()
	time.Sleep(throttleOnceLatency)
	if first {
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if r.Method == http.MethodPost {
		w.WriteHeader(http.StatusCreated)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *throttleOnceServer) counts() (requests, stored int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.stored
}

// check sends req through tr, reads and closes its answer, waits settle
// (fake time) for the host's handlers to end, and reports an error unless
// the call returned wantStatus (0: an error) after wantReqs requests and
// wantStored stored writes. It returns the call's error.
func (s *throttleOnceServer) check(t *testing.T, tr http.RoundTripper, req *http.Request, settle time.Duration, name string, wantStatus, wantReqs, wantStored int) error {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	status := 0
	if err == nil {
		status = resp.StatusCode
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	time.Sleep(settle)
	reqs, stored := s.counts()
	if status != wantStatus || reqs != wantReqs || stored != wantStored {
		t.Errorf("%s: %d, %v after %d requests, %d stored; want %d after %d, %d stored",
			name, status, err, reqs, stored, wantStatus, wantReqs, wantStored)
	}
	return err
}

// TestWriteRetryNeedsTimeToBeAnswered: a write to a host not known to
// deduplicate by key, answered with a 429 and Retry-After: 2 when the
// call's deadline (its context's, or WithMaxElapsed) is 2.001s away, is not
// retried with the 1ms left after the wait: the host needed 20ms to answer
// the attempt, so the retry would be processed and its answer lost, and
// the call would end in a timeout after a stored write, which a caller
// retrying on timeouts stores twice. The call returns the 429, as a plain
// client would have, with StopDeadline. With enough time left, it is
// retried; a GET, and a write to a host named by WithKeyHonoringHosts,
// need only what any retry needs (a tenth of the 20ms, at least 1ms: see
// TestRetryNotStartedWithAlmostNoTimeLeft), and are retried with 5ms left,
// but no longer with 1ms (until 2026-12-07 they were, and were cut at
// once).
func TestWriteRetryNeedsTimeToBeAnswered(t *testing.T) {
	short := throttleOnceLatency + 2*time.Second + time.Millisecond // 1ms left after the wait
	mid := throttleOnceLatency + 2*time.Second + 5*time.Millisecond // 5ms left after the wait
	long := throttleOnceLatency + 2*time.Second + time.Second       // more than the spread of the wait and an attempt
	for _, tc := range []struct {
		name       string
		method     string
		ctxTimeout time.Duration
		opts       []resilient.Option
		keyHonored bool
		wantStatus int // 0: an error
		wantReqs   int
		wantStored int
		wantStop   resilient.StopReason // of the first attempt
	}{
		{name: "POST, context deadline", method: http.MethodPost, ctxTimeout: short, wantStatus: 429, wantReqs: 1, wantStored: 0, wantStop: resilient.StopDeadline},
		{name: "POST, WithMaxElapsed", method: http.MethodPost, opts: []resilient.Option{resilient.WithMaxElapsed(short)}, wantStatus: 429, wantReqs: 1, wantStored: 0, wantStop: resilient.StopDeadline},
		{name: "POST, enough time", method: http.MethodPost, ctxTimeout: long, wantStatus: 201, wantReqs: 2, wantStored: 1},
		{name: "POST, enough budget", method: http.MethodPost, opts: []resilient.Option{resilient.WithMaxElapsed(long)}, wantStatus: 201, wantReqs: 2, wantStored: 1},
		{name: "GET", method: http.MethodGet, ctxTimeout: mid, wantReqs: 2},
		{name: "POST to a key-honoring host", method: http.MethodPost, ctxTimeout: mid, keyHonored: true, wantReqs: 2, wantStored: 1},
		{name: "GET, 1ms left", method: http.MethodGet, ctxTimeout: short, wantStatus: 429, wantReqs: 1, wantStop: resilient.StopDeadline},
		{name: "POST to a key-honoring host, 1ms left", method: http.MethodPost, ctxTimeout: short, keyHonored: true, wantStatus: 429, wantReqs: 1, wantStop: resilient.StopDeadline},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &throttleOnceServer{}
				ps := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithHandler(srv))
				defer ps.Close()
				opts := tc.opts
				if tc.keyHonored {
					u, _ := url.Parse(ps.URL)
					opts = append(opts, resilient.WithKeyHonoringHosts(u.Host))
				}
				var atts []resilient.Attempt
				opts = append(opts, resilient.WithObserver(func(a resilient.Attempt) { atts = append(atts, a) }))
				tr := resilient.New(ps.Transport(), opts...)
				defer tr.CloseIdleConnections()
				ctx := context.Background()
				if tc.ctxTimeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
					defer cancel()
				}
				var body io.Reader
				if tc.method == http.MethodPost {
					body = strings.NewReader(`{"content":"hello"}`)
				}
				req, err := http.NewRequestWithContext(ctx, tc.method, ps.URL+"/v1/posts", body)
				if err != nil {
					t.Fatal(err)
				}
				err = srv.check(t, tr, req, time.Second, tc.name, tc.wantStatus, tc.wantReqs, tc.wantStored)
				if tc.wantStatus == 0 && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, resilient.ErrAttemptTimeout) {
					t.Errorf("%s: %v; want the deadline's error", tc.name, err)
				}
				if len(atts) == 0 || atts[0].StopReason != tc.wantStop {
					t.Errorf("%s: attempts observed %+v; want the first's stop reason %q", tc.name, atts, tc.wantStop)
				}
			})
		})
	}
}

// TestWriteRetryNeedsTimeAfterLocalWaits: the time a write retried as
// TestWriteRetryNeedsTimeToBeAnswered says needs is left to it after the
// waits below the retry loop too. Its retry, held past the loop's wait by
// the caller's pace (WithRateLimit) or for a slot another call holds
// (WithMaxInFlight) until 10ms before the deadline, is refused then rather
// than sent with less time than the host took to answer (20ms): processed
// and its answer lost, the call ended in a timeout after a stored write.
// The call returns the 429. With 40ms left, the retry goes.
func TestWriteRetryNeedsTimeAfterLocalWaits(t *testing.T) {
	for _, tc := range []struct {
		name       string
		slot       bool // else the pace
		timeout    time.Duration
		wantStatus int
		wantReqs   int
		wantStored int
	}{
		{name: "pace, 10ms left", timeout: 3*time.Second + 10*time.Millisecond, wantStatus: 429, wantReqs: 1},
		{name: "pace, 40ms left", timeout: 3*time.Second + 40*time.Millisecond, wantStatus: 201, wantReqs: 2, wantStored: 1},
		{name: "slot, 10ms left", slot: true, timeout: 3*time.Second + 10*time.Millisecond, wantStatus: 429, wantReqs: 1},
		{name: "slot, 40ms left", slot: true, timeout: 3*time.Second + 40*time.Millisecond, wantStatus: 201, wantReqs: 2, wantStored: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &throttleOnceServer{}
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/slow" {
						time.Sleep(2 * time.Second) // holds the host's one slot until 3s
						return
					}
					srv.ServeHTTP(w, r)
				})
				ps := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithHandler(h))
				defer ps.Close()
				opt := resilient.WithRateLimit(rate.Every(3*time.Second), 1) // the retry's turn at 3s
				if tc.slot {
					opt = resilient.WithMaxInFlight(1)
				}
				tr := resilient.New(ps.Transport(), opt)
				defer tr.CloseIdleConnections()
				var wg sync.WaitGroup
				defer wg.Wait()
				if tc.slot {
					wg.Go(func() {
						time.Sleep(time.Second) // while the write waits for its retry
						req, _ := http.NewRequest(http.MethodGet, ps.URL+"/slow", nil)
						if resp, err := tr.RoundTrip(req); err == nil {
							resp.Body.Close()
						}
					})
				}
				ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, ps.URL+"/v1/posts", strings.NewReader(`{"content":"hello"}`))
				if err != nil {
					t.Fatal(err)
				}
				srv.check(t, tr, req, 5*time.Second, tc.name, tc.wantStatus, tc.wantReqs, tc.wantStored)
			})
		})
	}
}
