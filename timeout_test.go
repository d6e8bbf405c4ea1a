package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// stallBody is a response body that yields its prefix, then blocks until
// it is closed or ctx ends, as a server that stops sending would.
type stallBody struct {
	ctx    context.Context
	prefix string
	once   sync.Once
	closed chan struct{}
}

func newStallBody(ctx context.Context, prefix string) *stallBody {
	return &stallBody{ctx: ctx, prefix: prefix, closed: make(chan struct{})}
}

func (b *stallBody) Read(p []byte) (int, error) {
	if b.prefix != "" {
		n := copy(p, b.prefix)
		b.prefix = b.prefix[n:]
		return n, nil
	}
	select {
	case <-b.ctx.Done():
		return 0, context.Cause(b.ctx)
	case <-b.closed:
		return 0, errors.New("read on closed body")
	}
}

func (b *stallBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// TestMaxElapsedBoundsAnAttempt: the call's budget cuts an attempt against
// a server that never answers, not only the waits between attempts.
func TestMaxElapsedBoundsAnAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{hang: true}}}
		start := time.Now()
		_, err := roundTrip(t, New(s, WithMaxElapsed(200*time.Millisecond)), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if !errors.Is(err, ErrAttemptTimeout) {
			t.Errorf("err = %v, want ErrAttemptTimeout", err)
		}
		if d := time.Since(start); d != 200*time.Millisecond {
			t.Errorf("returned after %v of fake time, want 200ms", d)
		}
		if s.numCalls() != 1 {
			t.Errorf("%d attempts, want 1: no time is left for another", s.numCalls())
		}
	})
}

// TestDeadlineMinOfThree: each attempt runs under the earliest of the
// attempt timeout, the rest of the budget and the context's deadline.
func TestDeadlineMinOfThree(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		attempt, budget, ctx time.Duration
		want                 time.Duration // when the first attempt ends
	}{
		{"attempt timeout", time.Second, 10 * time.Second, 20 * time.Second, time.Second},
		{"budget", 5 * time.Second, 2 * time.Second, 20 * time.Second, 2 * time.Second},
		{"context", 5 * time.Second, 10 * time.Second, 3 * time.Second, 3 * time.Second},
		{"budget alone", 0, 4 * time.Second, 0, 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{hang: true}}}
				ctx := timeoutCtx(t, tc.ctx)
				start := time.Now()
				var first time.Duration
				opts := []Option{WithMaxElapsed(tc.budget), WithMaxRetries(0), WithObserver(func(Attempt) { first = time.Since(start) })}
				if tc.attempt > 0 {
					opts = append(opts, WithAttemptTimeout(tc.attempt))
				}
				roundTrip(t, New(s, opts...), newRequest(t, ctx, "GET", "http://api.test/", nil))
				if first != tc.want {
					t.Errorf("attempt ended after %v, want %v", first, tc.want)
				}
			})
		})
	}
}

// TestStalledErrorBodyIsBounded: a response retried past whose body stalls
// is drained no longer than the attempt's deadline, or maxReadWait without
// one; the retry follows.
func TestStalledErrorBodyIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want time.Duration // from the first attempt to the second
	}{
		{"attempt timeout", []Option{WithAttemptTimeout(time.Second)}, time.Second + 100*time.Millisecond},
		{"no deadline", []Option{WithMaxElapsed(0)}, maxReadWait + 100*time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{
					{status: 200, body: "ok"}, // the second attempt
				}}
				var mu sync.Mutex
				var times []time.Time
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					times = append(times, time.Now())
					n := len(times)
					mu.Unlock()
					if n == 1 {
						return &http.Response{StatusCode: 503, Header: http.Header{"Content-Type": {"text/html"}},
							Body: newStallBody(req.Context(), "<html>"), ContentLength: -1, Request: req}, nil
					}
					return s.RoundTrip(req)
				})
				opts := append([]Option{WithBackoff(100*time.Millisecond, time.Second), withRand(func(int64) int64 { return 0 })}, tc.opts...)
				resp, err := roundTrip(t, New(rt, opts...), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				if err != nil || readBody(t, resp) != "ok" {
					t.Fatalf("RoundTrip = %v, %v; want the retry's 200", resp, err)
				}
				if d := times[1].Sub(times[0]); d != tc.want {
					t.Errorf("retry after %v, want %v", d, tc.want)
				}
			})
		})
	}
}

// TestStalledEnvelopePeekIsBounded: an error body that stalls while its
// envelope is peeked does not hold the call past maxReadWait.
func TestStalledEnvelopePeekIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 400, Header: http.Header{"Content-Type": {"application/json"}},
				Body: newStallBody(req.Context(), `{"error":{"code":"bad`), ContentLength: -1, Request: req}, nil
		})
		start := time.Now()
		resp, err := roundTrip(t, New(rt, WithMaxElapsed(0)), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if err != nil || resp.StatusCode != 400 {
			t.Fatalf("RoundTrip = %v, %v; want the 400", resp, err)
		}
		resp.Body.Close()
		if d := time.Since(start); d != maxReadWait {
			t.Errorf("returned after %v, want %v", d, maxReadWait)
		}
	})
}

// TestSlowErrorBodyReachesTheCallerWhole: an error body that arrives
// slowly but steadily (a 400 whose 70 bytes come one every 100 ms, over
// the wire) is read by the caller byte for byte, as through a plain
// client, without an error: the envelope peek stops at half of
// maxReadWait and hands the body over as it is, rather than cutting it at
// maxReadWait. RoundTrip still returns within maxReadWait.
func TestSlowErrorBodyReachesTheCallerWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const body = `{"error":{"code":"invalid_request","message":"the field x is wrong"}}`
		srv := resilienttest.NewPipeServer(resilienttest.Aidelly, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			for i := range len(body) {
				w.Write([]byte{body[i]})
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
		})))
		defer srv.Close()
		for _, tc := range []struct {
			name string
			rt   http.RoundTripper
		}{{"plain client", srv.Transport()}, {"Transport", New(srv.Transport())}} {
			start := time.Now()
			resp, err := (&http.Client{Transport: tc.rt}).Get(srv.URL + "/v1/posts")
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if d := time.Since(start); d > maxReadWait {
				t.Errorf("%s: returned after %v, want %v at most", tc.name, d, maxReadWait)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != body || err != nil {
				t.Errorf("%s: the caller read %q, %v; want %q, <nil>", tc.name, got, err, body)
			}
		}
	})
}

// lockedBody is a response body whose Close waits for a Read in progress
// to return, as net/http's body of a gzip-encoded response does (its Close
// takes the lock its Read holds while reading the gzip header): closing it
// does not cut a stalled read, only the end of the request's context does.
// It yields its prefix, then stalls.
type lockedBody struct {
	ctx    context.Context
	prefix string
	lock   chan struct{} // holds a token while a Read or a Close runs
}

func newLockedBody(ctx context.Context, prefix string) *lockedBody {
	return &lockedBody{ctx: ctx, prefix: prefix, lock: make(chan struct{}, 1)}
}

func (b *lockedBody) Read(p []byte) (int, error) {
	b.lock <- struct{}{}
	defer func() { <-b.lock }()
	if b.prefix != "" {
		n := copy(p, b.prefix)
		b.prefix = b.prefix[n:]
		return n, nil
	}
	<-b.ctx.Done()
	return 0, context.Cause(b.ctx)
}

func (b *lockedBody) Close() error {
	b.lock <- struct{}{}
	<-b.lock
	return nil
}

// TestStalledLockedBodyIsBounded: an error body whose Close waits for its
// stalled Read (net/http's gzip-decoded body, stalled in its gzip header)
// is cut after maxReadWait all the same, through the attempt's context,
// whether the Transport peeks at its envelope or drains it before a retry;
// the call does not wait for the attempt's deadline.
func TestStalledLockedBodyIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name        string
		contentType string // JSON: the envelope is peeked; HTML: the body is drained
		status      int
		opts        []Option
	}{
		{"peek, budget", "application/json", 400, nil},
		{"peek, attempt timeout", "application/json", 400, []Option{WithAttemptTimeout(time.Minute)}},
		{"drain, budget", "text/html", 503, []Option{WithMaxRetries(1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					calls++
					if calls > 1 {
						return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
					}
					return &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {tc.contentType}},
						Body: newLockedBody(req.Context(), "\x1f"), ContentLength: -1, Request: req}, nil
				})
				opts := append([]Option{WithBackoff(0, 0)}, tc.opts...)
				start := time.Now()
				var first time.Duration
				opts = append(opts, WithObserver(func(a Attempt) {
					if a.Number == 1 {
						first = time.Since(start)
					}
				}))
				resp, err := roundTrip(t, New(rt, opts...), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if d := time.Since(start); d != maxReadWait {
					t.Errorf("returned after %v (first attempt classified after %v), want %v", d, first, maxReadWait)
				}
			})
		})
	}
}

// TestPeekCutSuccessIsHandedOver: an error body whose envelope peek stalls
// is cut after maxReadWait, which ends the attempt's context; when the
// caller's Classifier takes that answer for a success (a 404 to a DELETE
// that is fine), the caller gets it, its body yielding the bytes read and
// then the cut, as it would any other class: the cut is the peek's, not the
// attempt's deadline. It was taken for the deadline firing as the headers
// arrived: the answer was dropped and the attempt retried as "the call's
// budget (WithMaxElapsed) is spent", 2 s into a budget of 5 minutes.
func TestPeekCutSuccessIsHandedOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			calls++
			return &http.Response{StatusCode: 404, Header: http.Header{"Content-Type": {"application/json"}},
				Body: newStallBody(req.Context(), `{"error":{"code":"not_found`), ContentLength: -1, Request: req}, nil
		})
		notFoundIsFine := func(resp *http.Response, _ *APIError, _ error, def Class) Class {
			if resp != nil && resp.StatusCode == 404 {
				return Success
			}
			return def
		}
		start := time.Now()
		resp, err := roundTrip(t, New(rt, WithClassifier(notFoundIsFine), WithBackoff(0, 0)),
			newRequest(t, context.Background(), "DELETE", "http://api.test/", nil))
		if err != nil {
			t.Fatalf("RoundTrip = %v after %d attempts and %v; want the 404 after 1 and %v", err, calls, time.Since(start), maxReadWait)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 404 || calls != 1 || time.Since(start) != maxReadWait {
			t.Errorf("RoundTrip = %d after %d attempts and %v; want the 404 after 1 and %v", resp.StatusCode, calls, time.Since(start), maxReadWait)
		}
		if b, err := io.ReadAll(resp.Body); string(b) != `{"error":{"code":"not_found` || err == nil {
			t.Errorf("the caller read %q, %v; want the bytes read, then the cut", b, err)
		}
	})
}

// TestSuccessAsTheTimerFires: a 200 whose headers arrive as the attempt's
// timer fires has a cut body; it is an attempt timeout, retried, and the
// body returned to the caller reads whole.
func TestSuccessAsTheTimerFires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			calls++
			if calls == 1 {
				<-req.Context().Done() // the headers arrive just as the timer fires
			}
			return &http.Response{StatusCode: 200, Body: newStallBody(req.Context(), "ok"), ContentLength: -1, Request: req}, nil
		})
		resp, err := roundTrip(t, New(rt, WithAttemptTimeout(time.Second), WithBackoff(0, 0)),
			newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 2)
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "ok" || calls != 2 {
			t.Fatalf("body %q, %v after %d attempts; want the second attempt's body", buf, err, calls)
		}
		time.Sleep(time.Minute) // long past the attempt timeout: the body is the caller's
		if err := context.Cause(resp.Request.Context()); err != nil {
			t.Errorf("the returned response's context ended: %v", err)
		}
	})
}

// TestWriteSuccessAsTheTimerFires: a write that may not be resent (no key
// its host is known to honor) whose 201 arrives as the attempt's timer
// fires is answered: the caller gets the 201, its body cut, as a plain
// client whose context ends then would, not an attempt timeout that hides
// that the server processed the write (and that a caller would retry).
func TestWriteSuccessAsTheTimerFires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			calls++
			<-req.Context().Done() // the headers arrive just as the timer fires
			return &http.Response{StatusCode: 201, Body: newStallBody(req.Context(), ""), ContentLength: -1, Request: req}, nil
		})
		resp, err := roundTrip(t, New(rt, WithAttemptTimeout(time.Second), WithBackoff(0, 0)),
			newRequest(t, context.Background(), "POST", "http://api.test/", nil))
		if err != nil {
			t.Fatalf("err = %v after %d attempts, want the 201", err, calls)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 201 || calls != 1 {
			t.Errorf("status %d after %d attempts, want 201 after 1", resp.StatusCode, calls)
		}
	})
}

// TestSwitchingProtocolsStaysWritable: with an attempt timeout, or with
// hedging (which sends an upgrade no copy: see
// TestHedgingNoCopyOfAnUpgrade), a 101's body is still the
// upgraded connection, readable and writable.
func TestSwitchingProtocolsStaysWritable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"attempt timeout", WithAttemptTimeout(5 * time.Second)},
		{"hedging", WithHedging(Hedging{Delay: time.Minute})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			req, _ := http.NewRequest("GET", srv.URL, nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "echo")
			resp, err := New(base, tc.opt).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			rwc, ok := resp.Body.(io.ReadWriteCloser)
			if resp.StatusCode != 101 || !ok {
				resp.Body.Close()
				t.Fatalf("status %d, body %T: want 101 with an io.ReadWriteCloser", resp.StatusCode, resp.Body)
			}
			defer rwc.Close()
			if _, err := rwc.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(rwc, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo %q, %v", buf, err)
			}
		})
	}
}

// TestAttemptTimeoutAfterASlotWait: an attempt that waited for a slot of
// its host (WithMaxInFlight) gets its whole attempt timeout once it has
// the slot, as after the rate limiter's wait: the server gets 1s to answer,
// and the attempt is cut 1s after it was sent, 900ms of waiting included in
// the call, not in the server's time.
func TestAttemptTimeoutAfterASlotWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &latencyRT{latency: func(i int) time.Duration {
			if i == 0 {
				return 900 * time.Millisecond // holds the slot
			}
			return 1500 * time.Millisecond
		}}
		tr := New(rt, WithMaxInFlight(1), WithAttemptTimeout(time.Second), WithMaxRetries(0))
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() {
			if resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/a", nil)); err == nil {
				resp.Body.Close()
			}
		})
		synctest.Wait() // the first holds the slot
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/b", nil))
		if err == nil {
			resp.Body.Close()
		}
		if d := time.Since(start); !errors.Is(err, ErrAttemptTimeout) || d != 1900*time.Millisecond {
			t.Errorf("after a 900ms wait for a slot: %v after %v; want ErrAttemptTimeout at 1.9s, 1s after it was sent", err, d)
		}
		wg.Wait()
	})
}

// TestSlotWaitsKeepTheBreakerClosed: 20 callers sharing 4 slots of a
// healthy host that answers in 300ms, under an attempt timeout of 1s. The
// waits behind the host's other callers were counted in the attempt's
// timeout, whose timeouts the breaker counted as the host's failures: it
// opened, and refused most calls of a host that answered every request in
// 300ms (38 of 200 calls succeeded). A plain client's calls all succeed.
// Now no attempt times out and the breaker stays closed; a call whose wait
// for a slot passes its deadline is refused with ErrTooManyInFlight, which
// is the limit's purpose, and counts for nothing.
func TestSlotWaitsKeepTheBreakerClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &latencyRT{latency: func(int) time.Duration { return 300 * time.Millisecond }}
		var changes collector[BreakerChange]
		tr := New(rt, WithMaxInFlight(4), WithAttemptTimeout(time.Second), WithBreakerObserver(changes.add))
		var ok, refused atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for range 10 {
					resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
					switch {
					case err == nil:
						resp.Body.Close()
						ok.Add(1)
					case errors.Is(err, ErrTooManyInFlight):
						refused.Add(1)
					default:
						t.Errorf("a call of a healthy host: %v", err)
					}
				}
			})
		}
		wg.Wait()
		if got := changes.all(); len(got) != 0 {
			t.Errorf("the breaker of a healthy host changed: %v", got)
		}
		t.Logf("%d calls succeeded, %d refused for want of a slot", ok.Load(), refused.Load())
		if ok.Load() < 150 {
			t.Errorf("%d calls succeeded, %d refused for want of a slot; want most to succeed", ok.Load(), refused.Load())
		}
	})
}

// TestStalledEnvelopePeekIsBoundedNested: a Transport over another
// (New(New(base))) bounds its peek at an error envelope by maxReadWait too
// when the body it peeks is one the inner Transport ran under a deadline
// of its own (an attempt timeout that ends before the outer's deadline)
// and handed over: an error body that trickles past the inner Transport's
// peek (handed over as it is after half of maxReadWait) and then stalls is
// cut at maxReadWait of the outer's peek, through the outer attempt's
// deadline, or by closing the body when the outer has none. The cut went
// to the inner Transport's deadline, which no longer applies once handed
// over: the call was held until the outer attempt's deadline (the call's
// budget, five minutes by default), or for as long as the server stalled.
func TestStalledEnvelopePeekIsBoundedNested(t *testing.T) {
	for _, tc := range []struct {
		name         string
		inner, outer []Option
	}{
		{"outer budget", []Option{WithAttemptTimeout(time.Minute)}, nil},
		{"outer attempt timeout", []Option{WithAttemptTimeout(time.Minute)}, []Option{WithAttemptTimeout(time.Hour)}},
		{"no outer deadline", nil, []Option{WithMaxElapsed(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					// One byte every 100ms for 1.5s, then nothing.
					body := &trickleBody{stallBody: newStallBody(req.Context(), ""), slow: `{"error":{"code":"bad"}}`[:15]}
					return &http.Response{StatusCode: 400, Header: http.Header{"Content-Type": {"application/json"}},
						Body: body, ContentLength: -1, Request: req}, nil
				})
				inner := New(rt, append([]Option{WithMaxRetries(0)}, tc.inner...)...)
				outer := New(inner, append([]Option{WithMaxRetries(0)}, tc.outer...)...)
				// (A caller's deadline, so that a stall that is not
				// cut ends, with no deadline of the outer's own.)
				ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
				defer cancel()
				start := time.Now()
				resp, err := roundTrip(t, outer, newRequest(t, ctx, "GET", "http://api.test/", nil))
				if err != nil || resp.StatusCode != 400 {
					t.Fatalf("RoundTrip = %v, %v; want the 400", resp, err)
				}
				if d := time.Since(start); d > 2*maxReadWait {
					t.Errorf("returned after %v, want at most %v: the inner peek's half of maxReadWait, then the outer's maxReadWait", d, 2*maxReadWait)
				}
				resp.Body.Close()
			})
		})
	}
}

// trickleBody is a stallBody that yields slow one byte every 100ms first.
type trickleBody struct {
	*stallBody
	slow string
}

func (b *trickleBody) Read(p []byte) (int, error) {
	if b.slow == "" || len(p) == 0 {
		return b.stallBody.Read(p)
	}
	select {
	case <-time.After(100 * time.Millisecond):
	case <-b.ctx.Done():
		return 0, context.Cause(b.ctx)
	case <-b.closed:
		return 0, errors.New("read on closed body")
	}
	p[0], b.slow = b.slow[0], b.slow[1:]
	return 1, nil
}
