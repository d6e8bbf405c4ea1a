package resilient

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// cutAfter returns the body of a scripted response that yields data, then
// fails with err.
func cutAfter(data string, err error) func() io.ReadCloser {
	return func() io.ReadCloser {
		return io.NopCloser(io.MultiReader(strings.NewReader(data), errReader{err}))
	}
}

// TestBufferedResponseRetriesCutBody: with WithBufferedResponse, a GET
// whose success's body breaks partway (an unexpected EOF, a reset, a body
// shorter than its Content-Length) is retried, and the caller reads the
// whole body of the next attempt from memory: that body was read to its
// end and closed before RoundTrip returned. The cut attempt is recorded as
// a Transient failure with the read's error and no status, retried, and
// its body closed.
func TestBufferedResponseRetriesCutBody(t *testing.T) {
	const whole = `{"data":"the whole body"}`
	for _, tc := range []struct {
		name string
		cut  rtStep
		want error
	}{
		{"unexpected EOF", rtStep{rc: cutAfter(whole[:9], io.ErrUnexpectedEOF)}, io.ErrUnexpectedEOF},
		{"reset", rtStep{rc: cutAfter(whole[:9], errReset)}, errReset},
		{"shorter than Content-Length", rtStep{rc: cutAfter(whole[:9], io.EOF), length: int64(len(whole))}, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &rtScript{steps: []rtStep{tc.cut, {body: whole}}}
			var got collector[Attempt]
			var r Report
			tr := New(s, fastRetries, WithBufferedResponse(1<<10), WithObserver(got.add))
			resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/v1/posts", nil))
			if err != nil || s.numCalls() != 2 {
				t.Fatalf("RoundTrip: %v after %d attempts, want the second attempt's 200", err, s.numCalls())
			}
			if n, _, closed := s.body(1).stats(); n != int64(len(whole)) || !closed {
				t.Errorf("second body: %d bytes read, closed %v before the caller read it; want all %d, closed", n, closed, len(whole))
			}
			if body := readBody(t, resp); body != whole || resp.StatusCode != 200 {
				t.Errorf("caller read %d %q, want 200 %q", resp.StatusCode, body, whole)
			}
			if !s.body(0).isClosed() {
				t.Error("the cut body was not closed")
			}
			as := got.all()
			if len(as) != 2 {
				t.Fatalf("%d records, want 2", len(as))
			}
			a := as[0]
			if a.Class != Transient || a.Outcome != OutcomeTransient || !a.Retry || a.StatusCode != 0 || !errors.Is(a.Err, tc.want) {
				t.Errorf("cut attempt: class %v outcome %v retry %v status %d err %v; want a retried Transient failure wrapping %v, no status",
					a.Class, a.Outcome, a.Retry, a.StatusCode, a.Err, tc.want)
			}
			if !strings.Contains(a.Err.Error(), "reading the body of a 200 response") {
				t.Errorf("cut attempt: error %q does not say what failed", a.Err)
			}
			if as[1].Outcome != OutcomeSuccess || as[1].StatusCode != 200 {
				t.Errorf("second attempt: %v %d, want a 200 success", as[1].Outcome, as[1].StatusCode)
			}
			if r.Attempts != 2 || r.Outcome != OutcomeSuccess || r.StatusCode != 200 {
				t.Errorf("Report: %d attempts, %v, %d; want 2, success, 200", r.Attempts, r.Outcome, r.StatusCode)
			}
		})
	}
}

// TestBufferedResponseLoopback: over a real connection, a success whose
// body the server cuts halfway (resilienttest.CutBody) is retried, and the
// caller reads the second answer whole.
func TestBufferedResponseLoopback(t *testing.T) {
	s := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithScript(resilienttest.RouteListPosts, resilienttest.CutBody()))
	defer s.Close()
	client := &http.Client{Transport: New(s.Transport(), fastRetries, WithBufferedResponse(1<<20))}
	resp, err := client.Get(s.URL + "/v1/posts")
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, `{"data":`) || !strings.HasSuffix(body, "}") {
		t.Errorf("%d %q, want 200 and the whole envelope", resp.StatusCode, body)
	}
	if n := s.Stats().Attempts[resilienttest.RouteListPosts]; n != 2 {
		t.Errorf("%d attempts at the server, want 2", n)
	}
}

// TestBufferedResponseOffByDefault: without the option (or with 0, or on
// a call allowed no retry), a cut body is the caller's error: one attempt,
// and the body is not read before RoundTrip returns.
func TestBufferedResponseOffByDefault(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"default", nil},
		{"zero", []Option{WithBufferedResponse(0)}},
		{"no retry", []Option{WithBufferedResponse(1 << 10), WithMaxRetries(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &rtScript{steps: []rtStep{{rc: cutAfter("partial", io.ErrUnexpectedEOF)}, {body: "whole"}}}
			resp, err := roundTrip(t, New(s, append([]Option{fastRetries}, tc.opts...)...), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			if n, _, _ := s.body(0).stats(); n != 0 {
				t.Errorf("RoundTrip read %d bytes of the body, want none", n)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "partial" || !errors.Is(err, io.ErrUnexpectedEOF) || s.numCalls() != 1 {
				t.Errorf("caller read %q, %v after %d attempts; want the cut body, its error, 1 attempt", b, err, s.numCalls())
			}
		})
	}
}

// TestBufferedResponseBodyNotReplayable: a success to a request whose body
// outgrew what can be replayed while it was sent (a stream without
// GetBody, longer than WithMaxBufferedBody) is handed over as it arrives,
// as WithBufferedResponse says of a request whose body cannot be
// replayed: no retry could follow a cut. It was read within the attempt,
// and its cut made the call fail with no response: the caller of a PUT
// the server answered 200 lost the status and the headers a plain client
// gives, for an error.
func TestBufferedResponseBodyNotReplayable(t *testing.T) {
	s := &rtScript{steps: []rtStep{{rc: cutAfter("partial", io.ErrUnexpectedEOF)}, {body: "whole"}}}
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, strings.Repeat("x", 4<<10))
		pw.Close()
	}()
	req := newRequest(t, context.Background(), "PUT", "http://api.test/file", nil)
	req.Body = pr // no GetBody, unknown length
	tr := New(s, fastRetries, WithBufferedResponse(1<<10), WithMaxBufferedBody(1<<10))
	resp, err := roundTrip(t, tr, req)
	if err != nil {
		t.Fatalf("RoundTrip: %v after %d attempts; want the 200, its body handed over as it arrives", err, s.numCalls())
	}
	if n, _, _ := s.body(0).stats(); n != 0 {
		t.Errorf("RoundTrip read %d bytes of the body, want none", n)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "partial" || !errors.Is(err, io.ErrUnexpectedEOF) || s.numCalls() != 1 {
		t.Errorf("caller read %d %q, %v after %d attempts; want 200, the cut body, its error, 1 attempt", resp.StatusCode, b, err, s.numCalls())
	}
}

// TestBufferedResponseLongerThanMax: a body longer than max is not
// protected. Of unknown length, the caller gets the max+1 bytes read
// followed by the rest of the original body, a cut in it included, after
// one attempt; of a Content-Length above max, the body is not read at all
// before it is handed over. A body of exactly max bytes is read whole.
func TestBufferedResponseLongerThanMax(t *testing.T) {
	const max = 8
	whole := "0123456789abcdef"
	check := func(name string, step rtStep, wantRead int64, wantBody string, wantErr error) {
		t.Helper()
		s := &rtScript{steps: []rtStep{step, {body: "second"}}}
		resp, err := roundTrip(t, New(s, fastRetries, WithBufferedResponse(max)), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n, _, _ := s.body(0).stats(); n != wantRead {
			t.Errorf("%s: RoundTrip read %d bytes, want %d", name, n, wantRead)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != wantBody || !errors.Is(err, wantErr) || s.numCalls() != 1 {
			t.Errorf("%s: caller read %q, %v after %d attempts; want %q, %v, 1 attempt", name, b, err, s.numCalls(), wantBody, wantErr)
		}
		if !s.body(0).isClosed() {
			t.Errorf("%s: body not closed", name)
		}
	}
	check("cut past max", rtStep{rc: cutAfter(whole, io.ErrUnexpectedEOF)}, max+1, whole, io.ErrUnexpectedEOF)
	check("whole, unknown length", rtStep{rc: cutAfter(whole, io.EOF)}, max+1, whole, nil)
	check("Content-Length above max", rtStep{rc: cutAfter(whole, io.EOF), length: int64(len(whole))}, 0, whole, nil)
	check("exactly max", rtStep{rc: cutAfter(whole[:max], io.EOF)}, max, whole[:max], nil)
	check("exactly max, known", rtStep{body: whole[:max]}, max, whole[:max], nil)
}

// TestBufferedResponseNothingToRead: the answer to a HEAD, a 204, a 304, a
// body of known length 0 and a 101 are handed over unread; a 101's body
// stays writable.
func TestBufferedResponseNothingToRead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		step   rtStep
	}{
		{"HEAD", "HEAD", rtStep{rc: cutAfter("x", io.ErrUnexpectedEOF), length: 10}},
		{"204", "GET", rtStep{status: 204, rc: cutAfter("x", io.ErrUnexpectedEOF)}},
		{"304", "GET", rtStep{status: 304, rc: cutAfter("x", io.ErrUnexpectedEOF)}},
		{"length 0", "GET", rtStep{body: ""}},
		// A stream's events are the caller's as they come (an LLM's
		// tokens): read within the attempt, the first would wait for the
		// last, and a cut would start the stream again.
		{"event stream", "GET", rtStep{header: http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}}, rc: cutAfter("data: {}\n\n", io.ErrUnexpectedEOF)}},
		{"ndjson stream", "GET", rtStep{header: http.Header{"Content-Type": {"application/x-ndjson"}}, rc: cutAfter("{}\n", io.ErrUnexpectedEOF)}},
	} {
		s := &rtScript{steps: []rtStep{tc.step}}
		resp, err := roundTrip(t, New(s, fastRetries, WithBufferedResponse(1<<10)), newRequest(t, context.Background(), tc.method, "http://api.test/", nil))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n, reads, _ := s.body(0).stats(); reads != 0 {
			t.Errorf("%s: RoundTrip read the body (%d bytes, %d reads), want it unread", tc.name, n, reads)
		}
		resp.Body.Close()
		if s.numCalls() != 1 {
			t.Errorf("%s: %d attempts, want 1", tc.name, s.numCalls())
		}
	}

	// An error's body is not a success's: its cut is the caller's (the
	// envelope's peek stops at it), and the 404 is not retried.
	s := &rtScript{steps: []rtStep{{status: 404, rc: cutAfter("x", io.ErrUnexpectedEOF)}}}
	resp, err := roundTrip(t, New(s, fastRetries, WithBufferedResponse(1<<10)), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if err != nil || resp.StatusCode != 404 || s.numCalls() != 1 {
		t.Fatalf("404: %v, %v after %d attempts; want the 404 after 1", resp, err, s.numCalls())
	}
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("404: the caller read %v, want the cut", err)
	}
	resp.Body.Close()

	conn := &rwBody{}
	rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusSwitchingProtocols, Header: http.Header{}, Body: conn, Request: req}, nil
	})
	resp, err = roundTrip(t, New(rt, WithBufferedResponse(1<<10)), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Body.(io.ReadWriteCloser); !ok || conn.reads != 0 {
		t.Errorf("101: body %T (read %d times), want an unread io.ReadWriteCloser", resp.Body, conn.reads)
	}
	resp.Body.Close()
}

// rwBody is the body of a 101: an upgraded connection.
type rwBody struct{ reads int }

func (b *rwBody) Read([]byte) (int, error)    { b.reads++; return 0, io.EOF }
func (b *rwBody) Write(p []byte) (int, error) { return len(p), nil }
func (b *rwBody) Close() error                { return nil }

// TestBufferedResponseWriteRule: a write's success is read within the
// attempt only when the write may be resent after an ambiguous failure.
// Against resilienttest servers that cut the first answer's body halfway:
// a keyed POST to a host not known to honor keys is handed over unread,
// and its cut is the caller's error after one attempt (the write was
// stored once); the same POST to a host named as honoring keys is resent
// with its key, and the caller reads the replay of the stored answer
// whole, with no duplicate. An unkeyed PATCH is not read either.
func TestBufferedResponseWriteRule(t *testing.T) {
	post := func(tr http.RoundTripper, s *resilienttest.Server) (*http.Response, error) {
		req := newRequest(t, context.Background(), "POST", s.URL+"/v1/posts", strings.NewReader(`{"content":"hello"}`))
		req.Header.Set("Content-Type", "application/json")
		return tr.RoundTrip(req)
	}
	// Not known to honor keys: not read, not resent.
	s := resilienttest.NewServer(resilienttest.Aidelly, resilienttest.WithScript(resilienttest.RouteCreatePost, resilienttest.CutBody()))
	defer s.Close()
	resp, err := post(New(s.Transport(), fastRetries, WithBufferedResponse(1<<20)), s)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if st := s.Stats(); resp.StatusCode != 201 || !errors.Is(err, io.ErrUnexpectedEOF) || st.Attempts[resilienttest.RouteCreatePost] != 1 || st.StoredWrites != 1 {
		t.Errorf("unproven host: %d, read error %v, %d attempts, %d stored; want 201, io.ErrUnexpectedEOF, 1, 1",
			resp.StatusCode, err, st.Attempts[resilienttest.RouteCreatePost], st.StoredWrites)
	}

	// Named as honoring keys: resent with the same key, replayed.
	s = resilienttest.NewServer(resilienttest.Aidelly, resilienttest.WithScript(resilienttest.RouteCreatePost, resilienttest.CutBody()))
	defer s.Close()
	u, _ := url.Parse(s.URL)
	resp, err = post(New(s.Transport(), fastRetries, WithBufferedResponse(1<<20), WithKeyHonoringHosts(u.Host)), s)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	st := s.Stats()
	if resp.StatusCode != 201 || !strings.HasSuffix(body, "}") || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("honoring host: %d %q, replayed %q; want the whole replayed 201", resp.StatusCode, body, resp.Header.Get("Idempotent-Replayed"))
	}
	if st.Attempts[resilienttest.RouteCreatePost] != 2 || st.StoredWrites != 1 || st.Replays != 1 || st.Duplicates != 0 {
		t.Errorf("honoring host: %d attempts, %d stored, %d replays, %d duplicates; want 2, 1, 1, 0",
			st.Attempts[resilienttest.RouteCreatePost], st.StoredWrites, st.Replays, st.Duplicates)
	}

	// An unkeyed write, even to a host that honors keys: not read.
	sc := &rtScript{steps: []rtStep{{rc: cutAfter("partial", io.ErrUnexpectedEOF)}, {body: "whole"}}}
	tr := New(sc, fastRetries, WithBufferedResponse(1<<10), WithoutIdempotencyKeys(), WithKeyHonoringHosts("api.test"))
	resp, err = roundTrip(t, tr, newRequest(t, context.Background(), "PATCH", "http://api.test/", strings.NewReader("x")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if n, _, _ := sc.body(0).stats(); n != int64(len("partial")) || !errors.Is(err, io.ErrUnexpectedEOF) || sc.numCalls() != 1 {
		t.Errorf("unkeyed PATCH: %v after %d attempts; want the caller's read error after 1", err, sc.numCalls())
	}
}

// TestBufferedResponseDeadline proves in fake time that the attempt's
// deadline bounds the read of a body that stalls: the attempt timeout cuts
// it (an attempt timeout, retried: the second answer is read whole), and
// the call's budget cuts it when there is no attempt timeout (no retry
// then: the budget is spent).
func TestBufferedResponseDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{body: "par", stall: true}, {body: "whole"}}}
		var got collector[Attempt]
		tr := New(s, WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }),
			WithAttemptTimeout(3*time.Second), WithBufferedResponse(1<<10), WithObserver(got.add))
		start := time.Now()
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		if body := readBody(t, resp); body != "whole" || s.numCalls() != 2 || time.Since(start) != 4*time.Second {
			t.Errorf("attempt timeout: %q after %d attempts and %v; want the second body after 2 and 4s (3s cut, 1s backoff)", body, s.numCalls(), time.Since(start))
		}
		if as := got.all(); len(as) != 2 || !errors.Is(as[0].Err, ErrAttemptTimeout) || as[0].Duration != 3*time.Second || !as[0].Retry {
			t.Errorf("attempt timeout: first record %+v, want a retried attempt timeout of 3s", as[0])
		}

		s = &rtScript{steps: []rtStep{{body: "par", stall: true}}}
		start = time.Now()
		_, err = roundTrip(t, New(s, WithBackoff(time.Second, time.Second), WithMaxElapsed(10*time.Second), WithBufferedResponse(1<<10)),
			newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if !errors.Is(err, ErrAttemptTimeout) || s.numCalls() != 1 || time.Since(start) != 10*time.Second {
			t.Errorf("budget: %v after %d attempts and %v; want an attempt timeout after 1 and 10s", err, s.numCalls(), time.Since(start))
		}
		if !s.body(0).isClosed() {
			t.Error("budget: the stalled body was not closed")
		}
	})
}

// TestBufferedResponseStallOverHTTP proves, in fake time over net/http's
// own Transport (a pipe server), that the attempt timeout cuts a body that
// stalls after its first bytes: net/http ends the read when the attempt's
// context ends, and the retry's body is read whole.
func TestBufferedResponseStallOverHTTP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		hits := 0
		api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits++
			first := hits == 1
			mu.Unlock()
			w.Header().Set("Content-Length", "10")
			if first {
				io.WriteString(w, "01234")
				http.NewResponseController(w).Flush()
				<-r.Context().Done() // stalls until the client goes away
				return
			}
			io.WriteString(w, "0123456789")
		})
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithHandler(api))
		defer srv.Close()
		base := srv.Transport()
		defer base.CloseIdleConnections()
		tr := New(base, WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }),
			WithAttemptTimeout(5*time.Second), WithBufferedResponse(1<<10))
		start := time.Now()
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", srv.URL+"/v1/report", nil))
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		mu.Lock()
		n := hits
		mu.Unlock()
		if body != "0123456789" || n != 2 || time.Since(start) != 6*time.Second {
			t.Errorf("%q after %d hits and %v; want the whole body after 2 and 6s (5s cut, 1s backoff)", body, n, time.Since(start))
		}
	})
}

// TestBufferedResponseCallOption: WithBufferedResponse applies per call
// through WithCallOptions, on a Transport without it, and a call's 0 turns
// off the Transport's.
func TestBufferedResponseCallOption(t *testing.T) {
	steps := []rtStep{{rc: cutAfter("partial", io.ErrUnexpectedEOF)}, {body: "whole"}}
	call := func(tr *Transport, s *rtScript, ctx context.Context) string {
		t.Helper()
		resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	s := &rtScript{steps: steps}
	if got := call(New(s, fastRetries), s, WithCallOptions(context.Background(), WithBufferedResponse(1<<10))); got != "whole" || s.numCalls() != 2 {
		t.Errorf("per call on: %q after %d attempts, want the second body after 2", got, s.numCalls())
	}
	s = &rtScript{steps: steps}
	if got := call(New(s, fastRetries, WithBufferedResponse(1<<10)), s, WithCallOptions(context.Background(), WithBufferedResponse(0))); got != "partial" || s.numCalls() != 1 {
		t.Errorf("per call off: %q after %d attempts, want the cut body after 1", got, s.numCalls())
	}
}

// TestBufferedResponseNegativePanics: a negative max panics naming the
// option, through New and through WithCallOptions alike.
func TestBufferedResponseNegativePanics(t *testing.T) {
	p := mustPanic(t, "WithBufferedResponse(-1) did not panic", func() { WithBufferedResponse(-1) })
	if msg, _ := p.(string); !strings.Contains(msg, "WithBufferedResponse") || !strings.Contains(msg, "negative") {
		t.Errorf("panic %v, want one naming WithBufferedResponse and the negative value", p)
	}
}

// TestBufferedResponseBreakerAndRateLimit: a cut body is a failure for the
// host's breaker (two in a row trip one that trips after two), and the
// rate limiter still learns the quota the cut response announced.
func TestBufferedResponseBreakerAndRateLimit(t *testing.T) {
	h := http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"42"}}
	s := &rtScript{steps: []rtStep{{header: h, rc: cutAfter("partial", io.ErrUnexpectedEOF)}}}
	var got collector[Attempt]
	tr := New(s, fastRetries, WithMaxRetries(2), WithBufferedResponse(1<<10), WithObserver(got.add),
		WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
	resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if err == nil {
		resp.Body.Close()
	}
	if st := tr.BreakerState("http://api.test/"); st != BreakerOpen {
		t.Errorf("breaker %v after two cut bodies, want open", st)
	}
	as := got.all()
	if len(as) < 2 || as[0].RateLimit.Limit != 100 || as[0].RateLimit.Remaining != 42 {
		t.Errorf("records %+v; want the first with the announced quota 100/42", as)
	}
	if s.numCalls() != 2 {
		t.Errorf("%d attempts, want 2: the open breaker refuses the third", s.numCalls())
	}
}

// TestBufferedResponseTracer: the Tracer's span of an attempt whose body
// is read within it ends once the body was read: with the response, whose
// status code was received, and the read's error when it was cut; with
// the response when it was whole.
func TestBufferedResponseTracer(t *testing.T) {
	s := &rtScript{steps: []rtStep{{rc: cutAfter("partial", io.ErrUnexpectedEOF)}, {body: "whole"}}}
	rec := &recTracer{}
	resp, err := roundTrip(t, New(s, fastRetries, WithBufferedResponse(1<<10), WithTracer(rec)), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := "call GET|attempt 1 resend 0 parent call-span|end 200 error|record 1 transient call-span|attempt 2 resend 1 parent call-span|end 200|record 2 success call-span|end call 2 attempts call-span"
	if got := strings.Join(rec.events, "|"); got != want {
		t.Errorf("events\n%s\nwant\n%s", got, want)
	}
}

// TestBufferedResponseHedged: with hedging, each copy that answers reads
// its body within its attempt and the first to end wins: an attempt whose
// headers came at once but whose body stalls loses to a copy sent 10ms
// later, whose body the caller reads; the loser is canceled and its body
// closed, as any loser's.
func TestBufferedResponseHedged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{body: "slow", stall: true}, {body: "fast"}}}
		var r Report
		tr := New(s, WithBufferedResponse(1<<10), WithHedging(Hedging{Delay: 10 * time.Millisecond}))
		start := time.Now()
		resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		if body := readBody(t, resp); body != "fast" || time.Since(start) != 10*time.Millisecond {
			t.Errorf("%q after %v, want the copy's body after 10ms", body, time.Since(start))
		}
		synctest.Wait()
		if !s.body(0).isClosed() || r.Hedges != 1 || s.numCalls() != 2 {
			t.Errorf("loser closed %v, %d hedges, %d requests; want closed, 1, 2", s.body(0).isClosed(), r.Hedges, s.numCalls())
		}
	})
}

// TestBufferedResponseConcurrent runs calls from several goroutines, every
// other attempt cut (the breaker and the retry budget off, which that
// would trip), under the race detector: each caller reads its whole body.
func TestBufferedResponseConcurrent(t *testing.T) {
	// The first attempt of every call is cut, its retry whole: which
	// attempt a call gets never depends on how the goroutines interleave
	// (a count shared by all of them let one call draw six cut bodies in a
	// row, its last handed over as it came).
	rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		body := io.NopCloser(strings.NewReader("whole body"))
		if strings.HasPrefix(req.Header.Get("X-Attempt"), "1/") {
			body = cutAfter("whole", errReset)()
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: body, ContentLength: -1, Request: req}, nil
	})
	tr := New(rt, fastRetries, WithBufferedResponse(1<<10), WithoutBreaker(), WithoutRetryBudget(), WithAttemptHeader("X-Attempt"))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				if err != nil {
					t.Error(err)
					return
				}
				if b, err := io.ReadAll(resp.Body); string(b) != "whole body" || err != nil {
					t.Errorf("read %q, %v", b, err)
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
}

// TestBufferedResponseReleasedOnClose: the bytes of a body read within the
// attempt are not held by the response once the caller has closed it, read
// or not (an SDK that keeps the *http.Response, for its headers, kept up to
// max bytes alive with it), nor once the caller has read them all; a Read
// after Close fails, as net/http's does, instead of serving them.
func TestBufferedResponseReleasedOnClose(t *testing.T) {
	// held returns the bytes the response's body still holds.
	held := func(resp *http.Response) int {
		body := resp.Body
		if db, ok := body.(*deadlineBody); ok {
			body = db.rc
		}
		pb, ok := body.(*prefixBody)
		if !ok {
			t.Fatalf("body %T, want a prefixBody under a deadline", resp.Body)
		}
		return cap(pb.prefix)
	}
	whole := strings.Repeat("x", 4<<10)
	for _, tc := range []struct {
		name   string
		length int64
		read   bool
	}{
		{"closed unread", 0, false},
		{"closed unread, known length", int64(len(whole)), false},
		{"read whole", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &rtScript{steps: []rtStep{{rc: cutAfter(whole, io.EOF), length: tc.length}}}
			resp, err := roundTrip(t, New(s, fastRetries, WithBufferedResponse(1<<20)), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			if n, _, _ := s.body(0).stats(); n != int64(len(whole)) {
				t.Fatalf("RoundTrip read %d bytes, want the whole body, %d", n, len(whole))
			}
			if tc.read {
				if b := readBody(t, resp); b != whole {
					t.Fatalf("read %d bytes, want %d", len(b), len(whole))
				}
				if n := held(resp); n != 0 {
					t.Errorf("the body read to its end holds %d bytes, want none", n)
				}
			}
			resp.Body.Close()
			if n := held(resp); n != 0 {
				t.Errorf("the body closed holds %d bytes, want none", n)
			}
			if n, err := resp.Body.Read(make([]byte, 8)); n != 0 || err == nil || err == io.EOF {
				t.Errorf("Read after Close: %d, %v; want 0 and an error", n, err)
			}
		})
	}

	// A Close from another goroutine than the reader's (a caller's
	// timeout) is no data race.
	s := &rtScript{steps: []rtStep{{rc: cutAfter(whole, io.EOF)}}}
	resp, err := roundTrip(t, New(s, WithBufferedResponse(1<<20)), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if err != nil {
		t.Fatal(err)
	}
	var reader sync.WaitGroup
	reader.Go(func() {
		p := make([]byte, 1)
		for {
			if _, err := resp.Body.Read(p); err != nil {
				return
			}
		}
	})
	resp.Body.Close()
	reader.Wait()
}

// TestBufferedResponseHugeContentLength: under WithBufferedResponse(math.MaxInt64)
// ("keep any body"), a success whose Content-Length claims 2^50 bytes for a
// 3-byte body is a body cut short, retried; the read made a buffer of the
// claimed length first, which panicked (makeslice) on the caller's
// goroutine, and, for a claim of a few GiB, reserved that much memory
// before a byte arrived. The same holds of an error envelope's peek
// under WithMaxPeek(math.MaxInt64).
func TestBufferedResponseHugeContentLength(t *testing.T) {
	lying := rtStep{rc: cutAfter("abc", io.EOF), length: 1 << 50}
	s := &rtScript{steps: []rtStep{lying, {body: "whole"}}}
	resp, err := roundTrip(t, New(s, fastRetries, WithBufferedResponse(math.MaxInt64)), newRequest(t, context.Background(), "GET", "http://api.test/v1/posts", nil))
	if err != nil || readBody(t, resp) != "whole" || s.numCalls() != 2 {
		t.Errorf("RoundTrip: %v after %d attempts, want the second attempt's body", err, s.numCalls())
	}
	data, eof, err := readPrefix(strings.NewReader("abc"), 1<<30, math.MaxInt64, false)
	if string(data) != "abc" || !eof || err != nil || cap(data) > DefaultMaxBufferedBody+1 {
		t.Errorf("readPrefix of 3 bytes said to be 1 GiB = %q (cap %d), %v, %v", data, cap(data), eof, err)
	}
}

// TestBufferedResponseBufferFitsContentLength: the body of a success read
// within the attempt, whose Content-Length says its length, is read into
// one buffer of that length (and one byte more, to see its end) when it is
// 1 MiB long, and into buffers that grow no further than that length when
// it is longer: a body of exactly 1 MiB took two buffers (2 MiB allocated,
// three allocations where WithBufferedResponse says two), and one of 3 MiB
// was kept in a buffer of 4 MiB. A Content-Length is still not trusted
// before the bytes come: the buffer never grows more than twice the bytes
// read (see TestBufferedResponseHugeContentLength).
func TestBufferedResponseBufferFitsContentLength(t *testing.T) {
	for _, tc := range []struct {
		size, max int64
		allocs    float64
		bytes     uint64 // allocated, at most (a large allocation takes whole pages)
	}{
		{1 << 20, 1<<20 + 1, 1, 1<<20 + 16<<10},
		{3 << 20, 8 << 20, 3, 1<<20 + 2<<20 + 3<<20 + 48<<10},
	} {
		body := strings.Repeat("x", int(tc.size))
		var data []byte
		r := strings.NewReader(body)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const runs = 3
		allocs := testing.AllocsPerRun(runs, func() {
			r.Reset(body)
			data, _, _ = readPrefix(r, tc.size, tc.max, false)
		})
		runtime.ReadMemStats(&after)
		perRun := (after.TotalAlloc - before.TotalAlloc) / (runs + 1) // AllocsPerRun runs once more to warm up
		if len(data) != int(tc.size) || cap(data) != int(tc.size)+1 || allocs != tc.allocs || perRun > tc.bytes {
			t.Errorf("body of %d bytes, its length known: read %d into a buffer of %d, %v allocations, %d bytes allocated; want all into %d, %v allocations, at most %d bytes",
				tc.size, len(data), cap(data), allocs, perRun, tc.size+1, tc.allocs, tc.bytes)
		}
	}
}

// TestBufferedResponseCutIsTheLastAnswer: a call that ends on the cut of
// a success's body (its retry refused: the retry budget is spent) fails
// with that cut, not with the response an earlier attempt got and the call
// held: that answer was no longer the host's last. A keyed POST to a host
// that honors keys got a 503, then a 201 whose body broke: the write was
// stored, and the call returned the 503, which told the caller that it was
// not (a caller resending it draws a new key: a duplicate). A GET so
// returned a 503 the 200 after it had replaced. The same holds without the
// option for a keyed write whose retry got no answer once sent.
func TestBufferedResponseCutIsTheLastAnswer(t *testing.T) {
	oneRetry := WithRetryBudget(RetryBudget{Burst: 1, Ratio: 0.001})
	s := resilienttest.NewServer(resilienttest.Aidelly,
		resilienttest.WithScript(resilienttest.RouteCreatePost, resilienttest.Respond(503), resilienttest.CutBody()))
	defer s.Close()
	u, _ := url.Parse(s.URL)
	tr := New(s.Transport(), fastRetries, oneRetry, WithBufferedResponse(1<<20), WithKeyHonoringHosts(u.Host))
	req := newRequest(t, context.Background(), "POST", s.URL+"/v1/posts", strings.NewReader(`{"content":"hello"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := tr.RoundTrip(req)
	st := s.Stats()
	if err == nil {
		resp.Body.Close()
		t.Errorf("POST: %d after %d attempts, %d stored; want the cut's error: the write was stored", resp.StatusCode, st.Attempts[resilienttest.RouteCreatePost], st.StoredWrites)
	} else if !errors.Is(err, ErrRetryBudgetExhausted) || !errors.Is(err, io.ErrUnexpectedEOF) || st.StoredWrites != 1 {
		t.Errorf("POST: %v, %d stored; want the spent budget and the cut, 1 stored", err, st.StoredWrites)
	}

	sc := &rtScript{steps: []rtStep{{status: 503, body: "busy"}, {rc: cutAfter("partial", io.ErrUnexpectedEOF)}, {body: "whole"}}}
	var r Report
	resp, err = New(sc, fastRetries, oneRetry, WithBufferedResponse(1<<10)).RoundTrip(
		newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/", nil))
	if err == nil {
		resp.Body.Close()
		t.Errorf("GET: %d after %d attempts (Report: %d, %v); want the cut's error", resp.StatusCode, sc.numCalls(), r.StatusCode, r.StopReason)
	} else if !errors.Is(err, ErrRetryBudgetExhausted) || !errors.Is(err, io.ErrUnexpectedEOF) || sc.numCalls() != 2 {
		t.Errorf("GET: %v after %d attempts; want the spent budget and the cut after 2", err, sc.numCalls())
	}
	if !sc.body(0).isClosed() {
		t.Error("GET: the 503 held was not closed")
	}

	// Without the option, a keyed write's retry that may have been
	// processed (its connection reset once it was sent) makes the 503
	// before it no answer to return either.
	sc = &rtScript{steps: []rtStep{{status: 503, body: "busy"}, {err: errReset}, {body: "created"}}}
	resp, err = New(sc, fastRetries, oneRetry, WithKeyHonoringHosts("api.test")).RoundTrip(
		newRequest(t, context.Background(), "POST", "http://api.test/v1/posts", strings.NewReader(`{"content":"hello"}`)))
	if err == nil {
		resp.Body.Close()
		t.Errorf("POST reset: %d after %d attempts; want the reset's error: the write may have been stored", resp.StatusCode, sc.numCalls())
	} else if !errors.Is(err, ErrRetryBudgetExhausted) || !errors.Is(err, errReset) || sc.numCalls() != 2 {
		t.Errorf("POST reset: %v after %d attempts; want the spent budget and the reset after 2", err, sc.numCalls())
	}
}

// TestBufferedResponseWholeBodyNotCutByItsClose: a success whose body was
// read whole within the attempt is the caller's, whatever the time the
// base's body then takes to close (a cache that stores the body, a span
// exported synchronously as it ends): the attempt's deadline, which fires
// during that Close, may not turn it into a timeout, retried (the request
// sent again) or, once the call's budget is spent, failing a call that a
// plain client would have returned.
func TestBufferedResponseWholeBodyNotCutByItsClose(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"attempt timeout", WithAttemptTimeout(time.Second)},
		{"budget", WithMaxElapsed(time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{
					rc:     func() io.ReadCloser { return &slowCloseBody{Reader: strings.NewReader("whole")} },
					length: 5,
				}}}
				tr := New(s, WithBackoff(time.Second, time.Second), tc.opt, WithBufferedResponse(1<<10))
				resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				if err != nil {
					t.Fatalf("RoundTrip error = %v after %d attempts, want the success of the first", err, s.numCalls())
				}
				if body := readBody(t, resp); body != "whole" || s.numCalls() != 1 {
					t.Errorf("RoundTrip = %q after %d attempts, want %q after 1", body, s.numCalls(), "whole")
				}
			})
		})
	}
}

// slowCloseBody is a response body whose Close takes 2s.
type slowCloseBody struct{ io.Reader }

func (b *slowCloseBody) Close() error {
	time.Sleep(2 * time.Second)
	return nil
}
